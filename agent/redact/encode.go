package redact

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MinValueLen is the shortest value that is registered: shorter values would match
// ordinary text too often (and a 5-byte secret is not worth protecting this way).
const MinValueLen = 6

// minPatternLen is the shortest pattern the matcher accepts. Every encoding of a
// value of MinValueLen bytes or more is at least this long.
const minPatternLen = MinValueLen

// encodings returns the distinct patterns a value is registered as, each at least
// minPatternLen bytes: the value and, when it differs, the value without surrounding
// white space, each as is and in every encoding listed in the package documentation.
// It returns nil for a value too short to register.
func encodings(v string) []string {
	var out []string
	seen := make(map[string]bool)
	add := func(p string) {
		if len(p) >= minPatternLen && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	bases := []string{v}
	if t := strings.TrimSpace(v); t != v {
		bases = append(bases, t)
	}
	for _, b := range bases {
		if len(b) < MinValueLen {
			continue
		}
		if utf8.ValidString(b) {
			// A value that is not valid UTF-8 cannot appear as is in a record (their
			// text is valid UTF-8), and matching it inside a multi-byte character
			// would cut that character in two.
			add(b)
			for _, f := range jsonFlavours {
				add(jsonEscape(b, f))
			}
		}
		add(url.QueryEscape(b))
		add(url.PathEscape(b))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for _, p := range base64Forms(b, enc) {
				add(p)
			}
		}
		h := hex.EncodeToString([]byte(b))
		add(h)
		add(strings.ToUpper(h))
	}
	return out
}

// base64Forms returns the forms of v in the base64 alphabet of enc: the padded and
// the unpadded encoding, and for each of the three alignments v can have inside a
// longer encoded string (such as "user:password" in an HTTP basic auth header) the
// characters that depend on v's bytes alone.
func base64Forms(v string, enc *base64.Encoding) []string {
	forms := []string{enc.EncodeToString([]byte(v)), enc.WithPadding(base64.NoPadding).EncodeToString([]byte(v))}
	raw := enc.WithPadding(base64.NoPadding)
	buf := make([]byte, 2+len(v))
	for lead := range 3 {
		b := buf[:lead+len(v)]
		clear(b[:lead])
		copy(b[lead:], v)
		e := raw.EncodeToString(b)
		// Characters before first mix in bits of the unknown leading bytes; the
		// character at last (if any) mixes in bits of the unknown trailing ones.
		first := (8*lead + 5) / 6
		last := 8 * len(b) / 6
		if last > first {
			forms = append(forms, e[first:last])
		}
	}
	return forms
}

// jsonFlavour selects how a JSON encoder escapes a string beyond what JSON requires.
type jsonFlavour uint8

const (
	jsonHTML     jsonFlavour = 1 << iota // <, >, & and U+2028/U+2029 as \u escapes (Go's encoding/json)
	jsonASCII                            // non-ASCII as \u escapes (Python's json.dumps)
	jsonSlash                            // "/" as "\/" (PHP's json_encode)
	jsonUpperHex                         // \u escapes with upper-case hex digits (Jackson)
)

// jsonFlavours are the escapings registered: minimal, Go, Python, PHP, Jackson with
// ASCII output.
var jsonFlavours = []jsonFlavour{0, jsonHTML, jsonASCII, jsonASCII | jsonSlash, jsonASCII | jsonUpperHex}

// jsonEscape returns s as it appears between the quotes of a JSON string literal
// written by an encoder of flavour f. s must be valid UTF-8.
func jsonEscape(s string, f jsonFlavour) string {
	digits := "0123456789abcdef"
	if f&jsonUpperHex != 0 {
		digits = "0123456789ABCDEF"
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	u := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(digits[(r>>shift)&0xf])
		}
	}
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20:
			u(r)
		case r == '/' && f&jsonSlash != 0:
			b.WriteString(`\/`)
		case (r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029') && f&jsonHTML != 0:
			u(r)
		case r >= utf8.RuneSelf && f&jsonASCII != 0:
			if r > 0xffff {
				r -= 0x10000
				u(0xd800 + (r>>10)&0x3ff)
				u(0xdc00 + r&0x3ff)
			} else {
				u(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
