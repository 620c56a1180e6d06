package parse

import (
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// scanJSON records in sl where the values of the field names are in the JSON object
// line holds. It returns false when line does not start (after whitespace) with '{'
// followed by '"' or '}': such a line is not JSON, and format auto tries the others.
func (p *parser) scanJSON(line string, sl *slots) bool {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	if j := skipWS(line, i+1); j >= len(line) || (line[j] != '"' && line[j] != '}') {
		return false
	}
	p.scanObject(line, i, sl, p.fields.all, 0, 0, 0)
	return true
}

// scanObject scans the object at line[i] == '{' and returns the index after it.
// mask holds the names still possible at this depth; prefix is how many bytes of
// each of those names the path to this object used up (the same for all of them),
// dots how many of their dots, and variant which of those dots were separators.
// On a syntax error it returns ok == false; the slots of members completed (followed
// by ',' or '}') before the error stay filled.
func (p *parser) scanObject(line string, i int, sl *slots, mask uint64, prefix int, dots uint, variant uint) (int, bool) {
	fs := &p.fields
	i = skipWS(line, i+1)
	if i < len(line) && line[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return i, false
		}
		kEnd, plain, ok := scanString(line, i)
		if !ok {
			return kEnd, false
		}
		key := line[i+1 : kEnd-1]
		i = skipWS(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return i, false
		}
		i = skipWS(line, i+1)
		var exact, child uint64
		if mask != 0 {
			if !plain {
				key, _ = unquoteJSON(line[kEnd-len(key)-2 : kEnd])
			}
			exact, child = fs.matchAt(key, mask, prefix)
		}
		var (
			vEnd   int
			decode bool
		)
		if child != 0 {
			// A key seen again replaces what its earlier occurrence led to, as a
			// later duplicate key replaces the earlier value in encoding/json.
			sep := dots + countDots(key)
			next := variant | 1<<sep
			fs.clearVariants(sl, child, next, sep)
			if i < len(line) && line[i] == '{' {
				vEnd, ok = p.scanObject(line, i, sl, child, prefix+len(key)+1, sep+1, next)
			} else {
				vEnd, decode, ok = skipValue(line, i)
			}
		} else {
			vEnd, decode, ok = skipValue(line, i)
		}
		if !ok {
			return vEnd, false
		}
		vStart := i
		i = skipWS(line, vEnd)
		if i >= len(line) || (line[i] != ',' && line[i] != '}') {
			return i, false
		}
		if exact != 0 {
			fs.set(sl, exact, variant, vStart, vEnd, decode)
		}
		if line[i] == '}' {
			return i + 1, true
		}
		i = skipWS(line, i+1)
	}
}

// matchAt returns, among the names in mask with prefix bytes used up, those whose
// rest equals key (exact) and those whose rest continues key with a dot (child).
func (fs *fieldSet) matchAt(key string, mask uint64, prefix int) (exact, child uint64) {
	if key == "" {
		return 0, 0
	}
	if prefix == 0 {
		// Top-level keys, the common case: only the names with key's first byte and
		// length (or a dot after it) can match.
		if len(key) >= len(fs.byLen) {
			return 0, 0
		}
		mask &= fs.first[key[0]] & fs.byLen[len(key)]
	}
	for mask != 0 {
		c := trailingZeros(mask)
		mask &= mask - 1
		rest := fs.names[c][prefix:]
		switch {
		case len(rest) == len(key):
			if rest == key {
				exact |= 1 << c
			}
		case len(rest) > len(key):
			if rest[len(key)] == '.' && rest[:len(key)] == key {
				child |= 1 << c
			}
		}
	}
	return exact, child
}

// clearVariants empties the slots of the names in m whose variant agrees with
// variant on dots 0..sep.
func (fs *fieldSet) clearVariants(sl *slots, m uint64, variant, sep uint) {
	low := uint(1)<<(sep+1) - 1
	for m != 0 {
		c := trailingZeros(m)
		m &= m - 1
		base := int(fs.base[c])
		for v := uint(0); v < uint(fs.nvar[c]); v++ {
			if v&low == variant {
				sl.v[base+int(v)] = span{}
			}
		}
	}
}

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace. Loggers write none between tokens: that case is inlined.
func skipWS(s string, i int) int {
	if i < len(s) && s[i] > ' ' {
		return i
	}
	return skipWSLoop(s, i)
}

func skipWSLoop(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// strStop marks the bytes that end the fast loop over a JSON string's contents.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanString scans the JSON string at s[i] == '"' and returns the index after its
// closing quote, and plain == true when its contents need no decoding (no escapes,
// ASCII only). Escapes are checked; raw control characters are errors, as in
// encoding/json.
func scanString(s string, i int) (end int, plain bool, ok bool) {
	plain = true
	j := i + 1
	for {
		// Eight bytes at a time while none is '"', '\\', a control character or
		// outside ASCII.
		for ; j+8 <= len(s); j += 8 {
			// Indexing a slice of exactly eight bytes compiles to one load; s[j+k]
			// would check bounds eight times.
			w := s[j : j+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			q := x ^ (ones * '"')
			b := x ^ (ones * '\\')
			if t := (x | (x-ones*0x20)&^x | (q-ones)&^q | (b-ones)&^b) & highs; t != 0 {
				// The lowest flagged byte is a true one (false positives only
				// follow a true one): step to it.
				j += bits.TrailingZeros64(t) / 8
				break
			}
		}
		if j >= len(s) {
			return len(s), false, false
		}
		c := s[j]
		if c >= 0x80 {
			plain = false
			j++
			continue
		}
		if !strStop[c] {
			j++
			continue
		}
		switch c {
		case '"':
			return j + 1, plain, true
		case '\\':
			plain = false
			if j+1 >= len(s) {
				return len(s), false, false
			}
			switch s[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(s) || hex4(s[j+2:j+6]) < 0 {
					return j, false, false
				}
				j += 6
			default:
				return j, false, false
			}
		default:
			return j, false, false
		}
	}
}

// skipValue skips the JSON value at s[i] and returns the index after it, and
// whether it is a string whose contents need decoding.
func skipValue(s string, i int) (end int, decode bool, ok bool) {
	if i >= len(s) {
		return i, false, false
	}
	switch c := s[i]; {
	case c == '"':
		end, plain, ok := scanString(s, i)
		return end, !plain, ok
	case c == '{' || c == '[':
		end, ok = skipNested(s, i)
	case c == 't':
		end, ok = literal(s, i, "true")
	case c == 'f':
		end, ok = literal(s, i, "false")
	case c == 'n':
		end, ok = literal(s, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		end, ok = scanNumber(s, i)
	default:
		return i, false, false
	}
	return end, false, ok
}

func literal(s string, i int, lit string) (int, bool) {
	if len(s)-i >= len(lit) && s[i:i+len(lit)] == lit {
		return i + len(lit), true
	}
	return i, false
}

// scanNumber scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(s string, i int) (int, bool) {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = skipDigits(s, i+1)
	default:
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipDigits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// skipNested skips the object or array at s[i]. Inside it only strings and the
// nesting of brackets are checked (the first 64 levels for matching pairs).
func skipNested(s string, i int) (int, bool) {
	var stack uint64 // bit set: an object is open at that level
	depth := 0
	for i < len(s) {
		switch c := s[i]; c {
		case '"':
			end, _, ok := scanString(s, i)
			if !ok {
				return end, false
			}
			i = end
			continue
		case '{', '[':
			if depth < 64 {
				stack <<= 1
				if c == '{' {
					stack |= 1
				}
			}
			depth++
		case '}', ']':
			depth--
			if depth < 64 {
				if (stack&1 == 1) != (c == '}') {
					return i, false
				}
				stack >>= 1
			}
			if depth == 0 {
				return i + 1, true
			}
		}
		i++
	}
	return i, false
}

// hex4 decodes 4 hex digits, or returns -1.
func hex4(s string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquoteJSON decodes the JSON string q (quotes included) as encoding/json does:
// escapes and surrogate pairs decoded, lone surrogates and invalid UTF-8 bytes
// replaced by U+FFFD. It returns a substring of q when nothing needs decoding.
func unquoteJSON(q string) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	s := q[1 : len(q)-1]
	simple, ascii := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' || c == '"' || c < 0x20 {
			simple = false
			break
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if simple && (ascii || utf8.ValidString(s)) {
		return s, true
	}
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return "", false
			}
			switch s[i+1] {
			case '"', '\\', '/':
				b = append(b, s[i+1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				if i+6 > len(s) {
					return "", false
				}
				r := hex4(s[i+2 : i+6])
				if r < 0 {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := hex4(s[i+2 : i+6]); r2 >= 0 {
							if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
								b = utf8.AppendRune(b, d)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return "", false
			}
			i += 2
		case c == '"' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return string(b), true
}
