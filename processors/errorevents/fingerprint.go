package errorevents

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// fingerprint is a stable key for one kind of error: the exception type and the
// in-app frames nearest the error (function and module, not line numbers, so a
// redeploy that moves code keeps the group), or, without frames, the type and the
// message with its variable parts (numbers, hex, UUIDs, quoted text) masked.
func fingerprint(excType, message string, frames []frameKey) string {
	h := sha256.New()
	h.Write([]byte(excType))
	h.Write([]byte{0})
	n := 0
	for i := len(frames) - 1; i >= 0 && n < 5; i-- { // frames are oldest first
		f := frames[i]
		if !f.inApp && hasInApp(frames) {
			continue
		}
		h.Write([]byte(f.module))
		h.Write([]byte{'.'})
		h.Write([]byte(f.function))
		h.Write([]byte{0})
		n++
	}
	if n == 0 {
		h.Write([]byte(maskVariable(message)))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

type frameKey struct {
	module, function string
	inApp            bool
}

func hasInApp(frames []frameKey) bool {
	for _, f := range frames {
		if f.inApp {
			return true
		}
	}
	return false
}

// maskVariable replaces the parts of a message that vary between occurrences of the
// same error: runs of digits and hex, and quoted strings.
func maskVariable(s string) string {
	if len(s) > 512 {
		s = s[:512]
	}
	var b strings.Builder
	b.Grow(len(s))
	inQuote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote != 0:
			if c == inQuote {
				inQuote = 0
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			inQuote = c
			b.WriteByte(c)
			b.WriteByte('*')
		case isHexDigit(c) && (c >= '0' && c <= '9' || i+1 < len(s) && isHexDigit(s[i+1]) && hasDigitAhead(s[i:])):
			for i+1 < len(s) && (isHexDigit(s[i+1]) || s[i+1] == '-') {
				i++
			}
			b.WriteByte('#')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hasDigitAhead reports whether the hex-looking run at the start of s holds a digit,
// so that words like "deadbeef" count as variable but "face" does not.
func hasDigitAhead(s string) bool {
	for i := 0; i < len(s) && (isHexDigit(s[i]) || s[i] == '-'); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			return true
		}
	}
	return false
}
