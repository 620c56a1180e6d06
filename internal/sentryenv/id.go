package sentryenv

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// ValidEventID reports whether s is an event ID in the form Sentry stores: 32
// lowercase hexadecimal digits.
func ValidEventID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NormalizeEventID accepts an event ID as Sentry does — 32 hexadecimal digits or a
// UUID with dashes, in either case — and returns it as 32 lowercase hex digits.
func NormalizeEventID(s string) (string, bool) {
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(s) != 32 {
		return "", false
	}
	s = strings.ToLower(s)
	if !ValidEventID(s) {
		return "", false
	}
	return s, true
}

// NewEventID returns a random event ID (a version 4 UUID as 32 lowercase hex digits).
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}
