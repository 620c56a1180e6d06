package redact

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/strarena"
)

// FuzzRedact registers the values found in values (separated by NUL), inserts them
// into text at positions drawn from seed, and checks the result against the naive
// strings.Index reference: the same output, no registered pattern left outside a
// Marker, and text without any pattern returned unchanged.
func FuzzRedact(f *testing.F) {
	f.Add("hunter22\x00s3cr3t-value", "user logged in with password=hunter22 ok", uint64(7))
	f.Add("p@ss:w0rd/x+y\x00\"quoted\\value\"", `{"msg":"login","password":"p@ss:w0rd/x+y"}`, uint64(1))
	f.Add("aaaaaa\x00aaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaa", uint64(3))
	f.Add("abcdefgh\x00efghijkl", "abcdefghijkl", uint64(0))
	f.Add("pässwörd-ü\x00\u2028sep\u2028", "ü<>&\u2028", uint64(99))
	f.Add("short\x00", "no value here at all", uint64(5))
	f.Add("[REDACTED]\x00REDACTED", "[REDACTED]", uint64(2))
	f.Fuzz(func(t *testing.T, values, text string, seed uint64) {
		if len(values) > 512 || len(text) > 2<<10 {
			return
		}
		r := NewRegistry(nil)
		r.Set("fuzz", strings.Split(values, "\x00"))
		pats := patternsOf(r)

		if _, found := naiveRedact(text, pats); !found {
			if got, ok := r.Redact(text); ok || got != text {
				t.Fatalf("text without a value changed: %q → %q", text, got)
			}
		}
		// Insert up to four values, as is or encoded.
		for i := 0; i < 4 && len(pats) > 0; i++ {
			p := pats[seed%uint64(len(pats))].text
			seed /= uint64(len(pats))
			at := int(seed % uint64(len(text)+1))
			seed = seed/uint64(len(text)+1) + 0x9e3779b97f4a7c15
			text = text[:at] + p + text[at:]
		}
		got, ok := r.Redact(text)
		want, wantOK := naiveRedact(text, pats)
		if got != want || ok != wantOK {
			t.Fatalf("text %q\ngot  %q, %v\nwant %q, %v", text, got, ok, want, wantOK)
		}
		if l := leaks(got, pats); len(l) > 0 {
			t.Fatalf("text %q → %q still holds %q", text, got, l)
		}
		if !ok && got != text {
			t.Fatalf("unchanged report, changed text: %q → %q", text, got)
		}
	})
}

// fuzzArena is the arena FuzzMatcher's scrubbed texts share, blocks small enough
// that they often start new ones (texts up to 512 bytes share one); fuzzKept holds
// the last of them with copies, to check that no later text writes over them.
var (
	fuzzArena = strarena.Arena{BlockSize: 4 << 10}
	fuzzKept  [][2]string
)

// FuzzMatcher checks the matcher alone against the naive reference, with the
// patterns taken as given (exact, or folded when fold is set for every other one):
// values of 8 bytes or more give stride 5 and the blocked probe loop, shorter ones
// the single-probe loop. Up to four patterns are inserted into text, some in upper
// case, some with a line break inside, the last possibly cut at the end, so that
// occurrences land in every slot of a block, across blocks and in the tail.
func FuzzMatcher(f *testing.F) {
	f.Add("abcdefgh\x00ABCDEFGHIJKL", strings.Repeat("x", 60), uint64(1), true)
	f.Add("0123456789abcdef\x00456789ab", strings.Repeat("-", 49), uint64(77), false)
	f.Add("k3y-8byt\x00k3y-8byT", "", uint64(5), true)
	f.Add("secret1\x00secret12345", "line one\nline two", uint64(12345), false)
	f.Add("&#x65;&#x79;&#x4a;\x00&#x65;&#x79;&#x4b;", strings.Repeat("a", 25), uint64(3), true)
	f.Fuzz(func(t *testing.T, patterns, text string, seed uint64, fold bool) {
		if len(patterns) > 1<<10 || len(text) > 4<<10 {
			return
		}
		var forms []form
		for i, p := range strings.Split(patterns, "\x00") {
			if len(p) >= minPatternLen {
				forms = append(forms, form{p, fold && i%2 == 0})
			}
		}
		if len(forms) == 0 {
			return
		}
		m := newMatcher(dedupe(forms))
		pats := patternsOfMatcher(m)
		next := func(n int) int { // a number below n from seed
			r := int(seed % uint64(n))
			seed = seed/uint64(n) ^ 0x9e3779b97f4a7c15*(seed+1)
			return r
		}
		for i := range 4 {
			p := pats[next(len(pats))]
			s := p.text
			if p.fold && next(2) == 0 {
				s = strings.ToUpper(s)
			}
			if next(4) == 0 {
				cut := next(len(s))
				s = s[:cut] + "\n" + s[cut:]
			}
			if i == 3 && next(3) == 0 {
				text += s[:next(len(s)+1)] // cut at the end
				break
			}
			at := next(len(text) + 1)
			text = text[:at] + s + text[at:]
		}
		want, wantOK := naiveRedact(text, pats)
		// Each result from its own allocation and from an arena's small blocks,
		// one block shared with the texts before it.
		for _, a := range []*strarena.Arena{nil, &fuzzArena} {
			got, ok := m.redact(text, a)
			if got != want || ok != wantOK {
				t.Fatalf("stride %d, arena %v, patterns %+v\ntext %q\ngot  %q, %v\nwant %q, %v", m.stride, a != nil, pats, text, got, ok, want, wantOK)
			}
			if ok && a != nil {
				fuzzKept = append(fuzzKept[max(len(fuzzKept)-8, 0):], [2]string{got, strings.Clone(got)})
			}
		}
		for _, k := range fuzzKept {
			if k[0] != k[1] {
				t.Fatalf("a text scrubbed earlier into the arena changed: %q, was %q", k[0], k[1])
			}
		}
	})
}
