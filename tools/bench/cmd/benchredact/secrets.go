package main

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	printable = alnum + "!#$%&*+-./:;<=>?@^_~\"\\"
)

// secretKinds are the shapes of the generated secrets, in rotation: what a Vault
// syncer registers in practice.
var secretKinds = []func(r *rand.Rand) string{
	// A database password from Vault's default password policy.
	func(r *rand.Rand) string { return "A1a-" + pick(r, alnum, 16) },
	// An API key of 32 hex digits.
	func(r *rand.Rand) string {
		var b [16]byte
		fill(r, b[:])
		return hex.EncodeToString(b[:])
	},
	// A Vault service token.
	func(r *rand.Rand) string { return "hvs." + pick(r, alnum, 24) },
	// A human password, 8 to 16 characters with symbols.
	func(r *rand.Rand) string { return pick(r, printable, 8+r.IntN(9)) },
	// A 256-bit key in base64.
	func(r *rand.Rand) string {
		var b [32]byte
		fill(r, b[:])
		return base64.StdEncoding.EncodeToString(b[:])
	},
	// A passphrase with non-ASCII letters, a symbol and a slash: it has NFD, upper
	// case, \u-escaped, HTML-escaped and "\/" forms of its own.
	func(r *rand.Rand) string {
		return pickRunes(r, "pässwörtÄÖÜßéèñç€日本", 3) + pick(r, "<>&", 1) + "/" + pick(r, alnum, 8)
	},
	// A signed JWT.
	func(r *rand.Rand) string {
		var b [96]byte
		fill(r, b[:])
		enc := base64.RawURLEncoding
		return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + enc.EncodeToString(b[:64]) + "." + enc.EncodeToString(b[64:])
	},
}

// maxMinSecretLen caps -min-secret-len: the JWTs are always longer, so the values
// can always be drawn.
const maxMinSecretLen = 64

// secrets returns n distinct secret values of at least minLen bytes (at most
// maxMinSecretLen), the same for the same seed and minLen.
func secrets(n int, seed uint64, minLen int) []string {
	r := rand.New(rand.NewPCG(seed, 0x5ec2e7))
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for i := 0; len(out) < n; i++ {
		v := secretKinds[i%len(secretKinds)](r)
		if len(v) >= minLen && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func pick(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func pickRunes(r *rand.Rand, alphabet string, n int) string {
	rs := []rune(alphabet)
	out := make([]rune, n)
	for i := range out {
		out[i] = rs[r.IntN(len(rs))]
	}
	return string(out)
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// leakForm is one way a secret gets into a JSON log line: an encoding the scrubber
// covers (processors/redact's package documentation lists them).
type leakForm struct {
	// name says which encoding; the field's key is "leak_<name>", so the sink can
	// count each encoding's lines.
	name string
	// value returns what the field holds for secret v (a JSON string's contents,
	// escaped as JSON requires) and the strings of v in it that must not reach the
	// backend.
	value func(v string) (field string, forms []string)
	// variant: the form is written only for values where it differs from the
	// plain JSON form (an escape, a normalisation that changes something), so that
	// its lines exercise it.
	variant bool
}

// leakForms are the encodings written into the input, one line in every
// -leak-every, in rotation: every form registered per value (see encodings in
// processors/redact), and the case changes of the forms matched without regard to
// case. Values split over lines and cut at the end of a line are not among them:
// the file source splits lines at '\n' and cuts none of these short lines; the
// matcher's tests cover both.
var leakForms = []leakForm{
	{name: "json", value: func(v string) (string, []string) { return same(jsonMinimal(v)) }},
	{name: "json_go", variant: true, value: func(v string) (string, []string) { return same(jsonInner(jsonString(v))) }},
	{name: "json_ascii", variant: true, value: func(v string) (string, []string) { return same(jsonASCII(jsonMinimal(v), false)) }},
	{name: "json_php", variant: true, value: func(v string) (string, []string) { return same(jsonASCII(jsonMinimal(v), true)) }},
	{name: "json_ascii_html", variant: true, value: func(v string) (string, []string) { return same(jsonASCII(jsonInner(jsonString(v)), false)) }},
	{name: "html", variant: true, value: func(v string) (string, []string) { return jsonOf(html.EscapeString(v)) }},
	{name: "html_named", variant: true, value: func(v string) (string, []string) { return jsonOf(htmlRefs(v, false, 0)) }},
	{name: "html_decimal", variant: true, value: func(v string) (string, []string) { return jsonOf(htmlRefs(v, false, 10)) }},
	{name: "html_hex", variant: true, value: func(v string) (string, []string) { return jsonOf(htmlRefs(v, false, 16)) }},
	{name: "html_all_decimal", value: func(v string) (string, []string) { return jsonOf(htmlRefs(v, true, 10)) }},
	{name: "html_all_hex", value: func(v string) (string, []string) { return jsonOf(htmlRefs(v, true, 16)) }},
	{name: "url_query", value: func(v string) (string, []string) {
		q := url.QueryEscape(v)
		return "https://db.internal/connect?user=app&password=" + q + "&sslmode=require", []string{q}
	}},
	{name: "url_path", value: func(v string) (string, []string) {
		p := url.PathEscape(v)
		return "https://app:" + p + "@db.internal/orders", []string{p}
	}},
	{name: "url_every_byte", value: func(v string) (string, []string) { return same(percentAll(v)) }},
	{name: "url_query_lower", value: func(v string) (string, []string) { return same(strings.ToLower(url.QueryEscape(v))) }},
	{name: "base64", value: func(v string) (string, []string) { return same(base64.StdEncoding.EncodeToString([]byte(v))) }},
	{name: "base64_raw", value: func(v string) (string, []string) { return same(base64.RawStdEncoding.EncodeToString([]byte(v))) }},
	{name: "base64_url", value: func(v string) (string, []string) { return same(base64.URLEncoding.EncodeToString([]byte(v))) }},
	{name: "base64_url_raw", value: func(v string) (string, []string) { return same(base64.RawURLEncoding.EncodeToString([]byte(v))) }},
	// Inside a longer encoding, at each of the three alignments: a basic auth
	// header with a user name of 3, 4 and 5 bytes.
	{name: "basic_auth_0", value: func(v string) (string, []string) { return basicAuth("ab:", v) }},
	{name: "basic_auth_1", value: func(v string) (string, []string) { return basicAuth("app:", v) }},
	{name: "basic_auth_2", value: func(v string) (string, []string) { return basicAuth("user:", v) }},
	{name: "base32", value: func(v string) (string, []string) { return same(base32.StdEncoding.EncodeToString([]byte(v))) }},
	{name: "base32_hex", value: func(v string) (string, []string) { return same(base32.HexEncoding.EncodeToString([]byte(v))) }},
	{name: "base32_lower", value: func(v string) (string, []string) {
		return same(strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(v))))
	}},
	{name: "hex", value: func(v string) (string, []string) { return same(hex.EncodeToString([]byte(v))) }},
	{name: "hex_upper", value: func(v string) (string, []string) { return same(strings.ToUpper(hex.EncodeToString([]byte(v)))) }},
	{name: "hex_colon", value: func(v string) (string, []string) { return same(hexSeparated(v, ":")) }},
	{name: "hex_dash", value: func(v string) (string, []string) { return same(hexSeparated(v, "-")) }},
	{name: "hex_space", value: func(v string) (string, []string) { return same(hexSeparated(v, " ")) }},
	{name: "upper_case", variant: true, value: func(v string) (string, []string) { return jsonOf(strings.ToUpper(v)) }},
	{name: "nfd", variant: true, value: func(v string) (string, []string) { return jsonOf(norm.NFD.String(v)) }},
}

// same is a field that is all secret.
func same(s string) (string, []string) { return s, []string{s} }

// jsonOf returns s escaped for a JSON string, and that as the form to look for.
func jsonOf(s string) (string, []string) { return same(jsonMinimal(s)) }

// jsonMinimal returns v as the contents of a JSON string, with only what JSON
// requires escaped (encoding/json without its HTML escaping).
func jsonMinimal(v string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("encode a string: %v", err))
	}
	return jsonInner(strings.TrimSuffix(b.String(), "\n"))
}

// jsonInner returns a JSON string literal without its quotes.
func jsonInner(lit string) string {
	lit = strings.TrimSpace(lit)
	return lit[1 : len(lit)-1]
}

// jsonASCII returns the contents of a JSON string with every non-ASCII character
// as \u escapes (surrogate pairs above U+FFFF), as Python's json.dumps writes them,
// and with slash "/" as "\/" too, as PHP's json_encode does.
func jsonASCII(s string, slash bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= utf8.RuneSelf:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, "\\u%04x", u)
			}
		case r == '/' && slash:
			b.WriteString("\\/")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// htmlRefs returns v with HTML character references: for all, every character;
// otherwise the five special ones (and non-ASCII, for a numeric base). base 0 writes
// the named references &lt; &gt; &amp; &quot; &apos;.
func htmlRefs(v string, all bool, base int) string {
	named := map[rune]string{'<': "&lt;", '>': "&gt;", '&': "&amp;", '"': "&quot;", '\'': "&apos;"}
	var b strings.Builder
	for _, r := range v {
		_, special := named[r]
		switch {
		case base == 0 && special:
			b.WriteString(named[r])
		case base != 0 && (all || special || r >= utf8.RuneSelf):
			if base == 10 {
				fmt.Fprintf(&b, "&#%d;", r)
			} else {
				fmt.Fprintf(&b, "&#x%x;", r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// percentAll returns every byte of v as a percent escape.
func percentAll(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		fmt.Fprintf(&b, "%%%02X", v[i])
	}
	return b.String()
}

// hexSeparated returns v's bytes in hex, joined by sep.
func hexSeparated(v, sep string) string {
	parts := make([]string, len(v))
	for i := 0; i < len(v); i++ {
		parts[i] = hex.EncodeToString([]byte{v[i]})
	}
	return strings.Join(parts, sep)
}

// basicAuth returns an HTTP basic auth header for user and password v, and the
// characters of its base64 that encode v's bits alone.
func basicAuth(user, v string) (string, []string) {
	enc := base64.StdEncoding.EncodeToString([]byte(user + v))
	core := enc[(8*len(user)+5)/6 : 8*(len(user)+len(v))/6]
	return "Basic " + enc, []string{core}
}

// field returns the JSON field that form f of secret v adds to a line, and the
// strings of v in it; ok is false when the form does not apply to v: a variant
// that is the plain JSON form for v, or a form that JSON would have to escape again
// (an HTML-escaped backslash: double encoding, which the scrubber does not undo).
func (f leakForm) field(v string) (field string, forms []string, ok bool) {
	val, forms := f.value(v)
	if f.variant && val == jsonMinimal(v) {
		return "", nil, false
	}
	if strings.HasPrefix(f.name, "html") && jsonMinimal(val) != val {
		return "", nil, false
	}
	return `,"leak_` + f.name + `":"` + val + `"`, forms, true
}

// key is the JSON key of form f's field, as it appears in a line.
func (f leakForm) key() string { return `"leak_` + f.name + `":` }

// jsonString returns v as a JSON string literal, quotes included.
func jsonString(v string) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal a string: %v", err))
	}
	return string(b)
}

// insertField returns line (a JSON object, with or without its final newline) with
// field added before the closing brace.
func insertField(line []byte, field string) []byte {
	end := len(line)
	for end > 0 && (line[end-1] == '\n' || line[end-1] == '\r') {
		end--
	}
	if end == 0 || line[end-1] != '}' {
		return line
	}
	tail := strings.Clone(string(line[end-1:]))
	out := append(line[:end-1], field...)
	return append(out, tail...)
}
