package pipeline

import "unicode/utf8"

// ValidUTF8 reports whether s is valid UTF-8, exactly as utf8.ValidString does, in
// fewer instructions for the ASCII text logs mostly are: 32 bytes a step, and the
// last bytes in one step that overlaps the previous one instead of one by one. The
// source checks every line with it, and the Loki exporter every string it sends.
func ValidUTF8(s string) bool {
	n := len(s)
	if n < 8 {
		for i := 0; i < n; i++ {
			if s[i] >= utf8.RuneSelf {
				return utf8.ValidString(s)
			}
		}
		return true
	}
	var acc uint64
	t := s
	for len(t) >= 32 {
		acc |= word(t[0:8]) | word(t[8:16]) | word(t[16:24]) | word(t[24:32])
		t = t[32:]
	}
	for len(t) >= 8 {
		acc |= word(t[0:8])
		t = t[8:]
	}
	acc |= word(s[n-8 : n])
	if acc&0x8080808080808080 == 0 {
		return true
	}
	return utf8.ValidString(s)
}

// word returns the eight bytes of w as a little-endian integer; indexing a string of
// exactly eight bytes compiles to one load.
func word(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}
