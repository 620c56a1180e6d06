package parse

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// validRequestIDSlow is the plain definition validRequestID implements.
func validRequestIDSlow(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || 0x7f <= r && r < 0xa0 {
			return false
		}
	}
	return true
}

func TestValidRequestIDEveryByte(t *testing.T) {
	base := strings.Repeat("req-0123456789abcdef", 2)
	for n := 1; n <= len(base); n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				s := base[:pos] + string([]byte{byte(c)}) + base[pos+1:n]
				if got, want := validRequestID(s), validRequestIDSlow(s); got != want {
					t.Fatalf("validRequestID(%q) = %v, want %v", s, got, want)
				}
			}
		}
	}
}

// FuzzValidRequestID checks the word-at-a-time check against the plain definition.
func FuzzValidRequestID(f *testing.F) {
	f.Add("req-0000001")
	f.Add("9f86d081884c7d65\x7f")
	f.Add("caf\xc3\xa9-\xc2\x85-1234567")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validRequestID(s), validRequestIDSlow(s); got != want {
			t.Fatalf("validRequestID(%q) = %v, want %v", s, got, want)
		}
	})
}
