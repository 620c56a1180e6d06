package redact

import (
	"strings"
	"testing"
)

// FuzzRedact registers the values found in values (separated by NUL), inserts them
// into text at positions drawn from seed, and checks the result against the naive
// strings.Index reference: the same output, no registered pattern left outside a
// Marker, and text without any pattern returned unchanged.
func FuzzRedact(f *testing.F) {
	f.Add("hunter22\x00s3cr3t-value", "user logged in with password=hunter22 ok", uint64(7))
	f.Add("p@ss:w0rd/x+y\x00\"quoted\\value\"", `{"msg":"login","password":"p@ss:w0rd/x+y"}`, uint64(1))
	f.Add("aaaaaa\x00aaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaa", uint64(3))
	f.Add("abcdefgh\x00efghijkl", "abcdefghijkl", uint64(0))
	f.Add("pässwörd-ü\x00\u2028sep\u2028", "ü<>&\u2028", uint64(99))
	f.Add("short\x00", "no value here at all", uint64(5))
	f.Add("[REDACTED]\x00REDACTED", "[REDACTED]", uint64(2))
	f.Fuzz(func(t *testing.T, values, text string, seed uint64) {
		if len(values) > 512 || len(text) > 2<<10 {
			return
		}
		r := NewRegistry(nil)
		r.Set("fuzz", strings.Split(values, "\x00"))
		pats := patternsOf(r)

		if _, found := naiveRedact(text, pats); !found {
			if got, ok := r.Redact(text); ok || got != text {
				t.Fatalf("text without a value changed: %q → %q", text, got)
			}
		}
		// Insert up to four values, as is or encoded.
		for i := 0; i < 4 && len(pats) > 0; i++ {
			p := pats[seed%uint64(len(pats))].text
			seed /= uint64(len(pats))
			at := int(seed % uint64(len(text)+1))
			seed = seed/uint64(len(text)+1) + 0x9e3779b97f4a7c15
			text = text[:at] + p + text[at:]
		}
		got, ok := r.Redact(text)
		want, wantOK := naiveRedact(text, pats)
		if got != want || ok != wantOK {
			t.Fatalf("text %q\ngot  %q, %v\nwant %q, %v", text, got, ok, want, wantOK)
		}
		if l := leaks(got, pats); len(l) > 0 {
			t.Fatalf("text %q → %q still holds %q", text, got, l)
		}
		if !ok && got != text {
			t.Fatalf("unchanged report, changed text: %q → %q", text, got)
		}
	})
}
