package redact

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// goJSON returns v as Go's encoding/json writes it inside the quotes.
func goJSON(t *testing.T, v string, escapeHTML bool) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(buf.String(), "\n")
	return s[1 : len(s)-1]
}

func TestEncodingsContain(t *testing.T) {
	const v = `p@ss "wörd"/<x>&y+z`
	got := encodings(v)
	want := map[string]string{
		"as is":                 v,
		"JSON minimal":          `p@ss \"wörd\"/<x>&y+z`,
		"JSON, Go":              goJSON(t, v, true),
		"JSON, Go without HTML": goJSON(t, v, false),
		"JSON, Python":          `p@ss \"w\u00f6rd\"/<x>&y+z`,
		"JSON, PHP":             `p@ss \"w\u00f6rd\"\/<x>&y+z`,
		"JSON, Jackson":         `p@ss \"w\u00F6rd\"/<x>&y+z`,
		"URL query":             url.QueryEscape(v),
		"URL path":              url.PathEscape(v),
		"base64 unpadded":       base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64 URL unpadded":   base64.RawURLEncoding.EncodeToString([]byte(v)),
		"hex":                   hex.EncodeToString([]byte(v)),
		"hex upper case":        strings.ToUpper(hex.EncodeToString([]byte(v))),
	}
	for name, w := range want {
		if !hasForm(got, w) {
			t.Errorf("%s form %q is not registered; have %q", name, w, texts(got))
		}
	}
	for _, p := range got {
		if len(p.text) < minPatternLen {
			t.Errorf("pattern %q is shorter than %d", p.text, minPatternLen)
		}
	}
	if len(got) != len(slicesCompact(texts(got))) {
		t.Errorf("duplicate patterns: %q", texts(got))
	}
}

func slicesCompact(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func TestEncodingsEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    []string
		notWant []string
	}{
		{"too short", "abcde", nil, []string{"abcde"}},
		{"surrounding white space", "  secret-value\n", []string{"  secret-value\n", "secret-value", `  secret-value\n`}, nil},
		{"trimmed too short", " abc \n", []string{" abc \n"}, []string{"abc"}},
		{"control characters", "ab\x01cd\tef", []string{`ab\u0001cd\tef`}, nil},
		{"astral plane", "key-😀-end", []string{`key-\ud83d\ude00-end`, `key-\uD83D\uDE00-end`}, nil},
		{"line separator", "a\u2028bcdef", []string{`a\u2028bcdef`, "a\u2028bcdef"}, nil},
		{"invalid UTF-8: encodings only", "bin\xff\xfe\x00ary", []string{hex.EncodeToString([]byte("bin\xff\xfe\x00ary")), base64.RawStdEncoding.EncodeToString([]byte("bin\xff\xfe\x00ary"))}, []string{"bin\xff\xfe\x00ary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodings(tt.value)
			for _, w := range tt.want {
				if !hasForm(got, w) {
					t.Errorf("%q is not registered; have %q", w, texts(got))
				}
			}
			for _, w := range tt.notWant {
				if hasForm(got, w) {
					t.Errorf("%q is registered", w)
				}
			}
		})
	}
}

// TestBase64Embedded checks that a value is found inside a longer base64 string
// (an HTTP basic auth header, a base64 JSON document) whatever its alignment, and
// that nothing of the characters that depend on the value alone survives.
func TestBase64Embedded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		v := randomString(rng, "abcdefghijklmnopqrstuvwxyz0123456789:/+-_~!?", 6+rng.IntN(30))
		prefix := randomString(rng, "ABCDEFGHIJ:", rng.IntN(7))
		suffix := randomString(rng, "KLMNOPQ@", rng.IntN(7))
		r := NewRegistry(nil)
		r.Set("t", []string{v})
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			e := enc.EncodeToString([]byte(prefix + v + suffix))
			got, ok := r.Redact("Authorization: Basic " + e)
			if !ok {
				t.Fatalf("case %d: value %q in base64 %q (prefix %q, suffix %q) not found", i, v, e, prefix, suffix)
			}
			// The characters built from v's bits alone.
			first := (8*len(prefix) + 5) / 6
			last := 8 * (len(prefix) + len(v)) / 6
			if core := e[first:last]; strings.Contains(got, core) {
				t.Fatalf("case %d: %q → %q still holds %q", i, e, got, core)
			}
		}
	}
}

func TestJSONEscapeMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("aZ09\"\\/<>&\n\r\t\b\f\x00\x1f é€😀\u2028\u2029\x7f")
	for range 500 {
		rs := make([]rune, 1+rng.IntN(20))
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		v := string(rs)
		if got, want := jsonEscape(v, jsonHTML), goJSON(t, v, true); got != want {
			// encoding/json writes \b and \f as \u0008 and \u000c before Go 1.22;
			// compare after decoding when the spellings differ.
			var a, b string
			if err := json.Unmarshal([]byte(`"`+got+`"`), &a); err != nil {
				t.Fatalf("jsonEscape(%q) = %q, not a JSON string: %v", v, got, err)
			}
			_ = json.Unmarshal([]byte(`"`+want+`"`), &b)
			if a != b {
				t.Fatalf("jsonEscape(%q) = %q, encoding/json: %q", v, got, want)
			}
		}
		for _, f := range jsonFlavours {
			var back string
			if err := json.Unmarshal([]byte(`"`+jsonEscape(v, f)+`"`), &back); err != nil || back != v {
				t.Fatalf("flavour %d: jsonEscape(%q) = %q decodes to %q, %v", f, v, jsonEscape(v, f), back, err)
			}
		}
	}
}

// wrap breaks s into lines of width characters joined by nl, as MIME and PEM do.
func wrap(s string, width int, nl string) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width])
		b.WriteString(nl)
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

// spelledOut returns v in the encodings the scrubber must see through, each written
// by an independent implementation (the standard library where it has one).
func spelledOut(v string) map[string]string {
	hexs := hex.EncodeToString([]byte(v))
	sep := func(s, sep string) string {
		var parts []string
		for i := 0; i < len(s); i += 2 {
			parts = append(parts, s[i:i+2])
		}
		return strings.Join(parts, sep)
	}
	var dec, hx strings.Builder
	for _, r := range v {
		fmt.Fprintf(&dec, "&#%d;", r)
		fmt.Fprintf(&hx, "&#x%X;", r)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(v, 8))) // long enough to wrap
	out := map[string]string{
		"as is":                   v,
		"upper case":              strings.ToUpper(v),
		"lower case":              strings.ToLower(v),
		"hex upper":               strings.ToUpper(hexs),
		"hex with colons":         sep(hexs, ":"),
		"hex with dashes, upper":  strings.ToUpper(sep(hexs, "-")),
		"hex with spaces":         sep(hexs, " "),
		"HTML, Go":                html.EscapeString(v),
		"HTML, decimal":           dec.String(),
		"HTML, hex":               hx.String(),
		"percent, lower case":     strings.ToLower(url.QueryEscape(v)),
		"percent, path":           url.PathEscape(v),
		"base32":                  base32.StdEncoding.EncodeToString([]byte(v)),
		"base32 lower, unpadded":  strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(v))),
		"base32 hex":              base32.HexEncoding.EncodeToString([]byte(v)),
		"base64 MIME 76 CRLF":     wrap(b64, 76, "\r\n"),
		"base64 PEM 64 LF":        wrap(b64, 64, "\n"),
		"NFC":                     norm.NFC.String(v),
		"NFD":                     norm.NFD.String(v),
		"NFKC":                    norm.NFKC.String(v),
		"split over two lines":    v[:len(v)/2] + "\n" + v[len(v)/2:],
		"split over lines, CRLF":  v[:3] + "\r\n" + v[3:],
		"JSON, upper-case escape": strings.ToUpper(jsonEscape(v, jsonASCII)),
	}
	return out
}

// TestEveryEncodingScrubbed writes values in every covered encoding into lines and
// checks that nothing of the encoded value survives, line breaks or not.
func TestEveryEncodingScrubbed(t *testing.T) {
	values := []string{`db-p@ss/"w0rd"&<x>`, "Pässwörd-Ünïcode-ﬁ", "s3cr3t-token-ABCdef-0123456789"}
	r := NewRegistry(nil)
	r.Set("t", values)
	for _, v := range values {
		for name, enc := range spelledOut(v) {
			t.Run(name+"/"+v, func(t *testing.T) {
				line := "before " + enc + " after"
				got, ok := r.Redact(line)
				if !ok {
					t.Fatalf("%q not scrubbed", line)
				}
				flat := strings.NewReplacer("\r", "", "\n", "").Replace(got)
				flatEnc := strings.NewReplacer("\r", "", "\n", "").Replace(enc)
				if strings.Contains(flat, flatEnc) || !strings.HasPrefix(got, "before ") || !strings.HasSuffix(got, " after") {
					t.Fatalf("%q → %q", line, got)
				}
			})
		}
		// Cut at every length from cutMin on, as max_line_bytes cuts a line.
		for n := cutMin; n < len(v); n++ {
			line := `{"msg":"connect","password":"` + v[:n]
			got, ok := r.Redact(line)
			if !ok || strings.Contains(got, v[:n]) {
				t.Fatalf("line cut after %d bytes of %q: %q → %q", n, v, line, got)
			}
		}
	}
}
