package parse

import (
	"strconv"
	"strings"
)

// scanLogfmt records in sl where the values of the field names are in the logfmt
// line; a later pair with the same key replaces an earlier one. With detect set it
// reports whether line looks like logfmt: its first word is a key=value pair, and it
// has at least two pairs, one of them with a level, time, msg or message key.
// Without detect it always returns true. An unterminated quoted value ends the scan.
func (p *parser) scanLogfmt(line string, sl *slots, detect bool) bool {
	fs := &p.fields
	pairs := 0
	levelish := false
	n := len(line)
	i := 0
	for {
		for i < n && line[i] <= ' ' {
			i++
		}
		if i >= n {
			break
		}
		ks := i
		for i < n && line[i] > ' ' && line[i] != '=' && line[i] != '"' {
			i++
		}
		key := line[ks:i]
		if i >= n || line[i] != '=' || key == "" {
			if detect && pairs == 0 {
				return false
			}
			// A bare key, or a stray quoted string or '=' to step over.
			if i < n && line[i] == '"' {
				end, ok := scanQuoted(line, i)
				if !ok {
					break
				}
				i = end
			} else if i < n && line[i] == '=' {
				for i < n && line[i] > ' ' {
					i++
				}
			}
			continue
		}
		i++
		vs := i
		if i < n && line[i] == '"' {
			end, ok := scanQuoted(line, i)
			if !ok {
				break
			}
			i = end
		} else {
			for i < n && line[i] > ' ' {
				i++
			}
		}
		pairs++
		m := fs.match(key, fs.all)
		if m&fs.levelish != 0 || key == "msg" || key == "message" {
			levelish = true
		}
		if m != 0 {
			fs.set(sl, m, 0, vs, i, false)
		}
	}
	return !detect || (pairs >= 2 && levelish)
}

// scanQuoted scans the quoted value at s[i] == '"', skipping backslash escapes, and
// returns the index after the closing quote.
func scanQuoted(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(s), false
}

// unquoteText decodes a quoted logfmt value (quotes included): Go escapes as
// strconv.Quote writes them (slog, logrus), else JSON escapes (go-logfmt).
func unquoteText(q string) (string, bool) {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return "", false
	}
	if strings.IndexByte(q[1:len(q)-1], '\\') < 0 {
		return q[1 : len(q)-1], true
	}
	if s, err := strconv.Unquote(q); err == nil {
		return s, true
	}
	return unquoteJSON(q)
}
