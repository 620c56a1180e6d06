package sentrytest

import "testing"

// FuzzCheckEvent checks that CheckEvent never panics on arbitrary payloads.
func FuzzCheckEvent(f *testing.F) {
	for _, s := range []string{goodEvent, `{}`, `[]`, `{"exception":[{"stacktrace":{"frames":[{"lineno":1e3}]}}]}`,
		`{"tags":[["a",1]],"contexts":{"trace":{}}}`, `{"message":{"formatted":3}}`, `{"timestamp":1e999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		_ = CheckEvent(payload)
	})
}
