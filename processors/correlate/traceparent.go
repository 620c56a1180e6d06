package correlate

import "strings"

// traceparentLen is the length of a version 00 traceparent:
// "00-" + 32 hex + "-" + 16 hex + "-" + 2 hex.
const traceparentLen = 55

// ParseTraceparent parses a W3C Trace Context traceparent value
// (https://www.w3.org/TR/trace-context/#traceparent-header), such as
// "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".
//
// It follows the specification: hex digits must be lowercase (a value with an
// uppercase digit is invalid, not lowercased); version ff is invalid; an all-zero
// trace id or span (parent) id is invalid; version 00 must be exactly 55 characters
// long, while a later version may be longer provided the flags are followed by '-'
// (the fields a later version adds are ignored). Spaces and tabs around the value
// (HTTP optional whitespace) are ignored.
//
// On success it returns the 32-digit trace id, the 16-digit span id, whether the
// sampled flag is set, and ok == true; otherwise all zero values.
func ParseTraceparent(s string) (traceID, spanID string, sampled bool, ok bool) {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) < traceparentLen {
		return "", "", false, false
	}
	if !isLowerHex(s[0]) || !isLowerHex(s[1]) || s[2] != '-' {
		return "", "", false, false
	}
	switch {
	case s[0] == '0' && s[1] == '0':
		if len(s) != traceparentLen {
			return "", "", false, false
		}
	case s[0] == 'f' && s[1] == 'f':
		return "", "", false, false
	default:
		if len(s) > traceparentLen && s[traceparentLen] != '-' {
			return "", "", false, false
		}
	}
	traceID, spanID, flags, ok := parseIDs(s[3:traceparentLen])
	if !ok {
		return "", "", false, false
	}
	return traceID, spanID, flags&1 == 1, true
}

// parseIDs parses "<32 hex>-<16 hex>-<2 hex>" (exactly 52 bytes).
func parseIDs(s string) (traceID, spanID string, flags byte, ok bool) {
	if len(s) != 52 || s[32] != '-' || s[49] != '-' {
		return "", "", 0, false
	}
	traceID, spanID = s[:32], s[33:49]
	if !hexID(traceID) || !hexID(spanID) {
		return "", "", 0, false
	}
	hi, lo := s[50], s[51]
	if !isLowerHex(hi) || !isLowerHex(lo) {
		return "", "", 0, false
	}
	return traceID, spanID, unhex(hi)<<4 | unhex(lo), true
}

// FindTraceparent finds the first valid traceparent inside free text, such as a plain
// log line "... traceparent=00-4bf9…-00f0…-01 ...". A candidate must stand on its own:
// the character before it and the one after it (if any) must not be a letter, digit
// or '_' — except that a '-' may follow the flags of a version other than 00, as
// ParseTraceparent allows. The rules of ParseTraceparent apply to the candidate
// (lowercase hex only, version ff invalid, ids not all zero).
func FindTraceparent(line string) (traceID, spanID string, ok bool) {
	// from is where the search for the '-' after the version continues.
	for from := 2; from+traceparentLen-2 <= len(line); {
		k := strings.IndexByte(line[from:], '-')
		if k < 0 {
			return "", "", false
		}
		start := from + k - 2
		from += k + 1
		end := start + traceparentLen
		if end > len(line) {
			return "", "", false
		}
		if line[start+35] != '-' || line[start+52] != '-' {
			continue
		}
		if start > 0 && isWordByte(line[start-1]) {
			continue
		}
		v0, v1 := line[start], line[start+1]
		if !isLowerHex(v0) || !isLowerHex(v1) || (v0 == 'f' && v1 == 'f') {
			continue
		}
		if end < len(line) {
			next := line[end]
			if isWordByte(next) || (next == '-' && v0 == '0' && v1 == '0') {
				continue
			}
		}
		if t, s, _, ok := parseIDs(line[start+3 : end]); ok {
			return t, s, true
		}
	}
	return "", "", false
}

func hexID(s string) bool {
	nonZero := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLowerHex(c) {
			return false
		}
		if c != '0' {
			nonZero = true
		}
	}
	return nonZero
}

func isLowerHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func isWordByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}
