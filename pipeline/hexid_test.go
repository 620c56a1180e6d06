package pipeline

import "testing"

// validHexIDSlow is the plain definition: n lowercase hex digits, not all zero.
func validHexIDSlow(s string, n int) bool {
	if len(s) != n {
		return false
	}
	nonZero := false
	for i := 0; i < n; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
		if c != '0' {
			nonZero = true
		}
	}
	return nonZero
}

func TestValidHexIDEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, base := range []string{"0000000000000000", "00f067aa0ba902b7", "00000000000000000000000000000000",
			"4bf92f3577b34da6a3ce929d0e0e4736", "000000000000000000000000", "0000000000000000000000000000000000000000"} {
			for pos := 0; pos < len(base); pos++ {
				s := base[:pos] + string([]byte{byte(c)}) + base[pos+1:]
				if got, want := validHexID(s, len(base)), validHexIDSlow(s, len(base)); got != want {
					t.Fatalf("validHexID(%q, %d) = %v, want %v", s, len(base), got, want)
				}
			}
		}
	}
}

// FuzzValidHexID checks the table-driven check against the plain definition.
func FuzzValidHexID(f *testing.F) {
	f.Add("4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add("00000000000000000000000000000000")
	f.Add("4BF92F3577B34DA6A3CE929D0E0E4736")
	f.Add("00f067aa0ba902b7")
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range []int{8, 16, 24, 32, 5} {
			if got, want := validHexID(s, n), validHexIDSlow(s, n); got != want {
				t.Fatalf("validHexID(%q, %d) = %v, want %v", s, n, got, want)
			}
		}
	})
}
