package redact

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MinValueLen is the shortest value that is registered: shorter values would match
// ordinary text too often (and a 5-byte secret is not worth protecting this way).
const MinValueLen = 6

// minPatternLen is the shortest pattern the matcher accepts. Every encoding of a
// value of MinValueLen bytes or more is at least this long.
const minPatternLen = MinValueLen

// form is one pattern a value is registered as.
type form struct {
	text string
	// fold: matched without regard to ASCII case. Set for every form whose case a
	// writer may change without changing what it says (the value itself, hex,
	// percent and JSON \u escapes, base32, HTML character references); clear for
	// base64, where case carries the data.
	fold bool
}

// encodings returns the distinct forms a value is registered as, each at least
// minPatternLen bytes: every spelling of the value (as given, without surrounding
// white space, its Unicode normalisation forms and, for a value with non-ASCII
// letters, its Unicode upper- and lower-case forms), each as is and in every
// encoding listed in the package documentation. It returns nil for a value too short
// to register.
func encodings(v string) []form {
	var out []form
	add := func(p string, fold bool) {
		if len(p) >= minPatternLen {
			out = append(out, form{p, fold})
		}
	}
	for _, b := range spellings(v) {
		if utf8.ValidString(b) {
			// A value that is not valid UTF-8 cannot appear as is in a record (their
			// text is valid UTF-8), and matching it inside a multi-byte character
			// would cut that character in two.
			add(b, true)
			for _, f := range jsonFlavours {
				add(jsonEscape(b, f), true)
			}
			for _, f := range htmlFlavours {
				add(htmlEscape(b, f), true)
			}
		}
		add(url.QueryEscape(b), true)
		add(url.PathEscape(b), true)
		add(percentAll(b), true)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for _, p := range base64Forms(b, enc) {
				add(p, false)
			}
		}
		for _, enc := range []*base32.Encoding{base32.StdEncoding, base32.HexEncoding} {
			// The unpadded form is a prefix of the padded one: one pattern finds both.
			add(enc.WithPadding(base32.NoPadding).EncodeToString([]byte(b)), true)
		}
		h := hex.EncodeToString([]byte(b))
		add(h, true)
		for _, sep := range []string{":", "-", " "} {
			add(hexSeparated(b, sep), true)
		}
	}
	return dedupe(out)
}

// dedupe returns the distinct forms of fs, sorted by text: a folded form stands for
// every form equal to it without regard to ASCII case, exact or folded.
func dedupe(fs []form) []form {
	folded := make(map[string]bool)
	for _, f := range fs {
		if f.fold {
			folded[lowerASCII(f.text)] = true
		}
	}
	seen := make(map[string]bool, len(fs))
	out := make([]form, 0, len(fs))
	for _, f := range fs {
		key := f.text
		if folded[lowerASCII(f.text)] {
			key, f.fold = lowerASCII(f.text), true
			f.text = key
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b form) int { return strings.Compare(a.text, b.text) })
	return out
}

// spellings returns the distinct spellings of v worth registering, each at least
// MinValueLen bytes: v, v without surrounding white space, and for valid UTF-8 with
// non-ASCII characters its NFC, NFD, NFKC and NFKD forms and Unicode upper and lower
// case (an application may normalise or case-map text before logging it).
func spellings(v string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= MinValueLen && !contains(out, s) {
			out = append(out, s)
		}
	}
	add(v)
	add(strings.TrimSpace(v))
	if !isASCII(v) && utf8.ValidString(v) {
		for _, base := range append([]string(nil), out...) {
			for _, f := range []norm.Form{norm.NFC, norm.NFD, norm.NFKC, norm.NFKD} {
				n := f.String(base)
				add(n)
				add(strings.ToUpper(n))
				add(strings.ToLower(n))
			}
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// lowerInPlace maps the ASCII upper-case letters of b to lower case.
func lowerInPlace(b []byte) {
	for j, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
}

// lowerASCII returns s with ASCII upper-case letters mapped to lower case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			lowerInPlace(b[i:])
			return string(b)
		}
	}
	return s
}

// base64Forms returns the forms of v in the base64 alphabet of enc: the unpadded
// encoding (a prefix of the padded one: the padding, which says nothing, stays), and for each of the three alignments v can
// have inside a longer encoded string (such as "user:password" in an HTTP basic auth
// header) the characters that depend on v's bytes alone. Base64 wrapped over lines
// (MIME, PEM bodies) is found by the matcher's line-break pass.
func base64Forms(v string, enc *base64.Encoding) []string {
	raw := enc.WithPadding(base64.NoPadding)
	forms := []string{raw.EncodeToString([]byte(v))}
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

// hexSeparated returns v's bytes as two hex digits each, joined by sep
// ("de:ad:be:ef", as MAC addresses, fingerprints and hex dumps print them).
func hexSeparated(v, sep string) string {
	var b strings.Builder
	b.Grow(len(v) * (2 + len(sep)))
	const digits = "0123456789abcdef"
	for i := 0; i < len(v); i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteByte(digits[v[i]>>4])
		b.WriteByte(digits[v[i]&0xf])
	}
	return b.String()
}

// percentAll returns every byte of v as a percent escape (%70%61...), as some
// encoders and obfuscators write it. Upper- and lower-case hex digits are both found
// (the form is matched without regard to case).
func percentAll(v string) string {
	var b strings.Builder
	b.Grow(3 * len(v))
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		b.WriteByte('%')
		b.WriteByte(digits[v[i]>>4])
		b.WriteByte(digits[v[i]&0xf])
	}
	return b.String()
}

// htmlFlavour selects which characters an HTML escaper replaces, and how.
type htmlFlavour uint8

const (
	htmlNamed      htmlFlavour = iota // &lt; &gt; &amp; &quot; &apos; (html.EscapeString writes &#34; &#39;)
	htmlGo                            // &lt; &gt; &amp; &#34; &#39; (Go's html.EscapeString, html/template)
	htmlDecimal                       // the five special characters and non-ASCII as &#NNN;
	htmlHex                           // the five special characters and non-ASCII as &#xHH;
	htmlAllDecimal                    // every character as &#NNN;
	htmlAllHex                        // every character as &#xHH;
)

var htmlFlavours = []htmlFlavour{htmlNamed, htmlGo, htmlDecimal, htmlHex, htmlAllDecimal, htmlAllHex}

// htmlEscape returns s (valid UTF-8) with characters replaced by HTML character
// references in flavour f.
func htmlEscape(s string, f htmlFlavour) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		special := r == '<' || r == '>' || r == '&' || r == '"' || r == '\''
		switch {
		case f == htmlAllDecimal || (f == htmlDecimal && (special || r >= utf8.RuneSelf)):
			b.WriteString("&#")
			b.WriteString(strconv.Itoa(int(r)))
			b.WriteByte(';')
		case f == htmlAllHex || (f == htmlHex && (special || r >= utf8.RuneSelf)):
			b.WriteString("&#x")
			b.WriteString(strconv.FormatInt(int64(r), 16))
			b.WriteByte(';')
		case special && (f == htmlNamed || f == htmlGo):
			switch r {
			case '<':
				b.WriteString("&lt;")
			case '>':
				b.WriteString("&gt;")
			case '&':
				b.WriteString("&amp;")
			case '"':
				if f == htmlNamed {
					b.WriteString("&quot;")
				} else {
					b.WriteString("&#34;")
				}
			case '\'':
				if f == htmlNamed {
					b.WriteString("&apos;")
				} else {
					b.WriteString("&#39;")
				}
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// jsonFlavour selects how a JSON encoder escapes a string beyond what JSON requires.
// The case of \u escapes' hex digits does not matter: JSON forms are matched
// without regard to case.
type jsonFlavour uint8

const (
	jsonHTML  jsonFlavour = 1 << iota // <, >, & and U+2028/U+2029 as \u escapes (Go's encoding/json)
	jsonASCII                         // non-ASCII as \u escapes (Python's json.dumps, Jackson's ASCII output)
	jsonSlash                         // "/" as "\/" (PHP's json_encode)
)

// jsonFlavours are the escapings registered: minimal, Go, Python (and Jackson), PHP,
// and ASCII output with HTML characters escaped (Gson, Go's encoder followed by an
// ASCII-only step).
var jsonFlavours = []jsonFlavour{0, jsonHTML, jsonASCII, jsonASCII | jsonSlash, jsonASCII | jsonHTML}

// jsonEscape returns s as it appears between the quotes of a JSON string literal
// written by an encoder of flavour f. s must be valid UTF-8.
func jsonEscape(s string, f jsonFlavour) string {
	const digits = "0123456789abcdef"
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
