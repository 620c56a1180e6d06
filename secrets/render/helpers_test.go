package render

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"
)

// mapFetcher serves secrets from a map keyed by path, or by path and args joined with
// spaces for writes ("pki/issue/web common_name=a"), and records every call.
type mapFetcher struct {
	mu      sync.Mutex
	secrets map[string]*Secret
	errs    map[string]error
	calls   []Dependency
}

func (m *mapFetcher) Secret(ctx context.Context, path string, args []string) (*Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := strings.Join(append([]string{path}, args...), " ")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, Dependency{Path: path, Args: args})
	if err, ok := m.errs[key]; ok {
		return nil, err
	}
	s, ok := m.secrets[key]
	if !ok {
		return nil, fmt.Errorf("%w (test fetcher has no %q)", ErrNotFound, key)
	}
	return s, nil
}

// mustTemplate builds a template from inline text with defaults.
func mustTemplate(t testing.TB, text string, opts ...func(*FileConfig)) *Template {
	t.Helper()
	cfg := FileConfig{Path: "/vault/secrets/out", Template: text}
	for _, o := range opts {
		o(&cfg)
	}
	tm, err := NewTemplate(cfg)
	if err != nil {
		t.Fatalf("NewTemplate(%q): %v", text, err)
	}
	return tm
}

func missingKeyOff(c *FileConfig) { f := false; c.ErrorOnMissingKey = &f }

// parseEnvFile reads an env file the way POSIX sh reads the assignments this package
// writes: NAME=WORD lines where WORD is a bare word, a '…' string (literal) or a "…"
// string (\ escapes only \ " $ ` and newline). It is written for the tests, from the
// POSIX shell grammar, and refuses anything outside that subset.
func parseEnvFile(s string) (map[string]string, error) {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		nl := strings.IndexByte(s, '\n')
		if eq < 0 || nl >= 0 && nl < eq {
			return nil, fmt.Errorf("line without '=': %q", s)
		}
		name := s[:eq]
		for i := 0; i < len(name); i++ {
			if !isNameByte(name[i]) || i == 0 && name[i] >= '0' && name[i] <= '9' {
				return nil, fmt.Errorf("invalid name %q", name)
			}
		}
		s = s[eq+1:]
		var val strings.Builder
	word:
		for len(s) > 0 {
			switch c := s[0]; c {
			case '\n':
				s = s[1:]
				break word
			case '\'':
				end := strings.IndexByte(s[1:], '\'')
				if end < 0 {
					return nil, fmt.Errorf("unterminated single quote")
				}
				val.WriteString(s[1 : 1+end])
				s = s[end+2:]
			case '"':
				i := 1
				for ; i < len(s) && s[i] != '"'; i++ {
					if s[i] == '\\' && i+1 < len(s) {
						switch s[i+1] {
						case '\\', '"', '$', '`':
							i++
						case '\n':
							i++
							continue
						}
					} else if s[i] == '$' || s[i] == '`' {
						return nil, fmt.Errorf("unescaped %c in double quotes", s[i])
					}
					val.WriteByte(s[i])
				}
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated double quote")
				}
				s = s[i+1:]
			default:
				if !envBare[c] {
					return nil, fmt.Errorf("character %q needs quoting", c)
				}
				val.WriteByte(c)
				s = s[1:]
			}
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("name %s twice", name)
		}
		out[name] = val.String()
	}
	return out, nil
}

// parseProperties reads a .properties file as java.util.Properties.load does
// (logical lines with backslash continuations, # and ! comments, key terminated by
// an unescaped '=', ':' or white space, \t \n \r \f \uXXXX escapes, any other escaped
// character standing for itself). Written for the tests from the load() javadoc.
func parseProperties(s string) (map[string]string, error) {
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], "\r")
		line = strings.TrimLeft(line, " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for trailingBackslashes(line)%2 == 1 && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(strings.TrimRight(lines[i], "\r"), " \t\f")
		}
		// Find the end of the key.
		k := 0
		for k < len(line) {
			c := line[k]
			if c == '\\' {
				k += 2
				continue
			}
			if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
				break
			}
			k++
		}
		if k > len(line) {
			k = len(line)
		}
		rawKey, rest := line[:k], line[k:]
		rest = strings.TrimLeft(rest, " \t\f")
		if rest != "" && (rest[0] == '=' || rest[0] == ':') {
			rest = strings.TrimLeft(rest[1:], " \t\f")
		}
		key, err := unescapeProperty(rawKey)
		if err != nil {
			return nil, err
		}
		val, err := unescapeProperty(rest)
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	return out, nil
}

func trailingBackslashes(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n
}

func unescapeProperty(s string) (string, error) {
	var units []uint16
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if c >= 0x80 {
				return "", fmt.Errorf("non-ASCII byte in a properties file written for ISO-8859-1")
			}
			units = append(units, uint16(c))
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch s[i] {
		case 't':
			units = append(units, '\t')
		case 'n':
			units = append(units, '\n')
		case 'r':
			units = append(units, '\r')
		case 'f':
			units = append(units, '\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uxxxx encoding")
			}
			v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\uxxxx encoding")
			}
			units = append(units, uint16(v))
			i += 4
		default:
			units = append(units, uint16(s[i]))
		}
	}
	return string(utf16.Decode(units)), nil
}
