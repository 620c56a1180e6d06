package pipeline

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidUTF8(t *testing.T) {
	base := strings.Repeat("GET /api/orders/12345 200 ", 3)
	for n := 0; n <= len(base); n++ {
		s := base[:n]
		for pos := 0; pos < n; pos++ {
			for _, b := range []string{"\xff", "\xc3\xa9", "\xe2\x82", "\xf0\x9f\x98\x80", "\x80"} {
				v := s[:pos] + b + s[pos:]
				if got, want := ValidUTF8(v), utf8.ValidString(v); got != want {
					t.Fatalf("ValidUTF8(%q) = %v, want %v", v, got, want)
				}
			}
		}
		if !ValidUTF8(s) {
			t.Fatalf("ValidUTF8(%q) = false", s)
		}
	}
}

// FuzzValidUTF8 checks ValidUTF8 against utf8.ValidString.
func FuzzValidUTF8(f *testing.F) {
	f.Add("plain ascii line of some length, longer than sixteen bytes")
	f.Add("caf\xc3\xa9 \xff\xfe")
	f.Add("\xed\xa0\x80 surrogate")
	f.Add("short\x80")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidUTF8(s), utf8.ValidString(s); got != want {
			t.Fatalf("ValidUTF8(%q) = %v, want %v", s, got, want)
		}
	})
}

func BenchmarkValidUTF8(b *testing.B) {
	line := `{"time":"2026-11-21T10:00:00.123456Z","level":"info","msg":"GET /api/orders/1234 200","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","request_id":"req-0000001","latency_ms":12.5}`
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if !ValidUTF8(line) {
			b.Fatal("invalid")
		}
	}
}
