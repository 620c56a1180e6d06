package redact

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/strarena"
)

func TestMatcherCases(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		in, want string
	}{
		{"no match", []string{"secret1"}, "nothing to see here", "nothing to see here"},
		{"shorter than every pattern", []string{"secret1"}, "secr", "secr"},
		{"empty text", []string{"secret1"}, "", ""},
		{"whole text", []string{"secret1"}, "secret1", Marker},
		{"at start", []string{"secret1"}, "secret1 tail", Marker + " tail"},
		{"at end", []string{"secret1"}, "head secret1", "head " + Marker},
		{"twice", []string{"secret1"}, "a secret1 b secret1 c", "a " + Marker + " b " + Marker + " c"},
		{"overlapping occurrences of one pattern", []string{"abababab"}, "xabababababx", "x" + Marker + "x"},
		{"overlapping patterns", []string{"abcdefgh", "efghijkl"}, "_abcdefghijkl_", "_" + Marker + "_"},
		{"one inside another", []string{"0123456789", "345678"}, "<0123456789>", "<" + Marker + ">"},
		{"inner alone", []string{"0123456789", "345678"}, "<2345678>", "<2" + Marker + ">"},
		{"touching", []string{"aaaaaa", "bbbbbb"}, "aaaaaabbbbbb", Marker},
		{"separated by one byte", []string{"aaaaaa", "bbbbbb"}, "aaaaaa bbbbbb", Marker + " " + Marker},
		{"long and short patterns", []string{"short1", strings.Repeat("L", 100)}, "short1 " + strings.Repeat("L", 101), Marker + " " + Marker},
		{"multi-byte characters", []string{"pässwörd"}, "ü pässwörd ü", "ü " + Marker + " ü"},
		{"short prefix at the end", []string{"secret1234"}, "cut: secret1", "cut: secret1"},
		{"prefix at the end", []string{"secret1234"}, "cut: secret12", "cut: " + Marker},
		{"prefix not at the end", []string{"secret1234"}, "secret12 x", "secret12 x"},
		{"split over two lines", []string{"secret1234"}, "a secr\net1234 b", "a " + Marker + " b"},
		{"split, CRLF", []string{"secret1234"}, "a secret\r\n1234 b", "a " + Marker + " b"},
		{"wrapped twice", []string{"0123456789abcdef"}, "x 0123\n4567\n89ab\ncdef y", "x " + Marker + " y"},
		{"break at the edge", []string{"secret1234"}, "secret1234\n", Marker + "\n"},
		{"prefix before a final break", []string{"secret1234"}, "cut secret12\n", "cut " + Marker + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMatcher(exact(tt.patterns...))
			got, changed := m.redact(tt.in, nil)
			if got != tt.want || changed != (tt.in != tt.want) {
				t.Errorf("redact(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.in != tt.want)
			}
			if ref, _ := naiveRedact(tt.in, exact(tt.patterns...)); ref != got {
				t.Errorf("naive reference gives %q", ref)
			}
		})
	}
}

// TestMatcherDifferential compares the matcher with strings.Index on random
// patterns and texts, over small alphabets so that occurrences overlap often, and
// over pattern sets large enough to fill the filter.
func TestMatcherDifferential(t *testing.T) {
	for _, tc := range []struct {
		alphabet         string
		patterns, minLen int
		maxLen           int
	}{
		{"ab", 3, 6, 9},
		{"abc", 20, 6, 12},
		{"abcdefgh", 50, 6, 30},
		{"abcdefghijklmnopqrstuvwxyz0123456789", 2000, 8, 40},
		{"ab", 5, 20, 30},
		{"aB\n", 10, 6, 14},
		{"abAB\r\n", 30, 6, 20},
	} {
		t.Run(fmt.Sprintf("%d patterns over %q", tc.patterns, tc.alphabet), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.patterns), uint64(len(tc.alphabet))))
			for range 20 {
				seen := map[string]bool{}
				var pats []string
				for len(pats) < tc.patterns {
					p := randomString(rng, tc.alphabet, tc.minLen+rng.IntN(tc.maxLen-tc.minLen+1))
					if !seen[p] {
						seen[p] = true
						pats = append(pats, p)
					}
				}
				forms := make([]form, len(pats))
				for i, p := range pats {
					forms[i] = form{p, rng.IntN(2) == 0}
				}
				forms = dedupe(forms)
				m := newMatcher(forms)
				for range 50 {
					text := randomString(rng, tc.alphabet, rng.IntN(300))
					for range rng.IntN(4) {
						at := rng.IntN(len(text) + 1)
						p := pats[rng.IntN(len(pats))]
						if cut := rng.IntN(len(p)); rng.IntN(3) == 0 {
							p = p[:cut] + "\n" + p[cut:] // a break inside
						}
						text = text[:at] + p + text[at:]
					}
					if rng.IntN(4) == 0 && len(text) > 0 {
						text = text[:rng.IntN(len(text))] // cut anywhere
					}
					got, gotOK := m.redact(text, nil)
					want, wantOK := naiveRedact(text, patternsOfMatcher(m))
					if got != want || gotOK != wantOK {
						t.Fatalf("patterns %q\ntext %q\ngot  %q, %v\nwant %q, %v", pats, text, got, gotOK, want, wantOK)
					}
				}
			}
		})
	}
}

func TestMatcherFilterSizes(t *testing.T) {
	for _, n := range []int{1, 10, 100, 1000, 10000, 50000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			pats := make([]string, n)
			for i := range pats {
				pats[i] = fmt.Sprintf("%08d", i) + randomString(rng, "xyz", 4)
			}
			m := newMatcher(exact(pats...))
			grams := len(pats) * m.stride
			if got := len(m.first) * 64; got < min(grams*firstBitsPerGram, 1<<24) || len(m.first)&(len(m.first)-1) != 0 {
				t.Errorf("first filter has %d bits for %d grams", got, grams)
			}
			if got := len(m.second) * 64; got < min(grams*secondBitsPerGram, 1<<22) || len(m.second) != int(m.secondMask)+1 {
				t.Errorf("second filter has %d bits for %d grams", got, grams)
			}
			if len(m.keys) != len(m.second) {
				t.Errorf("keys filter has %d words, second %d", len(m.keys), len(m.second))
			}
			for _, i := range []int{0, n / 2, n - 1} {
				text := "<" + pats[i] + ">"
				if got, ok := m.redact(text, nil); !ok || got != "<"+Marker+">" {
					t.Errorf("pattern %d: redact(%q) = %q, %v", i, text, got, ok)
				}
			}
		})
	}
}

func TestReplaceSpans(t *testing.T) {
	tests := []struct {
		spans []span
		want  string
	}{
		{nil, "0123456789"},
		{[]span{{0, 10}}, Marker},
		{[]span{{5, 7}, {1, 3}}, "0" + Marker + "34" + Marker + "789"},
		{[]span{{2, 5}, {1, 3}, {4, 6}}, "0" + Marker + "6789"},
		{[]span{{1, 3}, {3, 5}}, "0" + Marker + "56789"},
		{[]span{{1, 9}, {2, 3}}, "0" + Marker + "9"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.spans), func(t *testing.T) {
			a := strarena.Arena{BlockSize: 64}
			for _, arena := range []*strarena.Arena{nil, &a} {
				spans := append([]span(nil), tt.spans...)
				if got := replaceSpans("0123456789", spans, arena); got != tt.want {
					t.Errorf("arena %v: got %q, want %q", arena != nil, got, tt.want)
				}
			}
		})
	}
}

// TestMayHold compares mayHold with a naive search: a whole pattern, or a prefix of
// at least cutMin bytes of one, anywhere; line breaks are not looked through.
// Every other set has only patterns of 13 bytes or more (stride 10).
func TestMayHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		minLen := 6
		if i%2 == 1 {
			minLen = 13
		}
		var forms []form
		for range 1 + rng.IntN(20) {
			forms = append(forms, form{randomString(rng, "abcAB", minLen+rng.IntN(14)), rng.IntN(2) == 0})
		}
		forms = dedupe(forms)
		m := newMatcher(forms)
		pats := patternsOfMatcher(m)
		for range 20 {
			text := randomString(rng, "abcAB\n", rng.IntN(120))
			if rng.IntN(2) == 0 {
				p := pats[rng.IntN(len(pats))].text
				p = p[:max(1, rng.IntN(len(p)+1))]
				at := rng.IntN(len(text) + 1)
				text = text[:at] + p + text[at:]
			}
			want := false
			for _, p := range pats {
				for i := 0; i < len(text) && !want; i++ {
					n := min(len(p.text), len(text)-i)
					if n < len(p.text) && n < cutMin {
						continue
					}
					for k := n; k >= 0; k-- {
						a, b := text[i:i+k], p.text[:k]
						eq := a == b || p.fold && asciiFoldEqual(a, b)
						if eq {
							want = k == len(p.text) || k >= cutMin
							break
						}
					}
				}
			}
			if got := m.mayHold(text); got != want {
				t.Fatalf("patterns %q\ntext %q: mayHold = %v, want %v", texts(pats), text, got, want)
			}
		}
	}
}

// TestMatcherEveryOffset puts a pattern at every offset of texts up to 80 bytes
// long (120 for stride 10), whole and cut at the end to every length from cutMin
// on, for each stride: the probe loop handles blocks of five probes, single ones
// after them and, at stride 10, the tail's probes for prefixes shorter than 13
// bytes, and each must see every occurrence.
func TestMatcherEveryOffset(t *testing.T) {
	for _, pat := range []string{"k3y-6b", "k3y-7by", "k3y-8byt", "k3y-9byte", "k3y-11-byte", "k3y-12-bytes", "k3y-13-bytes!", "k3y-10-byte-value-long"} {
		m := newMatcher(exact(pat))
		if want := map[int]int{6: 3, 7: 4, 8: 5, 9: 5, 11: 5, 12: 5, 13: 10, 22: 10}[len(pat)]; m.stride != want {
			t.Fatalf("%q: stride %d, want %d", pat, m.stride, want)
		}
		maxN := 80
		if m.stride == maxStride {
			maxN = 120
		}
		for n := 0; n <= maxN; n++ {
			filler := strings.Repeat(".", n)
			for at := 0; at <= n; at++ {
				for end := min(len(pat), cutMin); end <= len(pat); end++ {
					text := filler[:at] + pat[:end] + filler[at:]
					got, ok := m.redact(text, nil)
					want, wantOK := naiveRedact(text, exact(pat))
					if got != want || ok != wantOK {
						t.Fatalf("stride %d, %q: got %q, %v; want %q, %v", m.stride, text, got, ok, want, wantOK)
					}
				}
			}
		}
	}
}

// TestMatcherKeys checks the filter of candidates' keys: a probe whose gram is
// indexed but whose 8 bytes are no candidate's is turned away before the buckets,
// candidates whose pattern ends within 8 bytes of their gram (short keys) are still
// found, and so are prefixes cut at the end of a text shorter than a key.
func TestMatcherKeys(t *testing.T) {
	long := newMatcher(exact("abcdefghijkl"))
	if long.shortKeys {
		t.Error("shortKeys set with every key 8 bytes long")
	}
	if !long.keyMayMatch("abcdefghXXXX", 0, gramAt("abcdefghXXXX", 0)) {
		t.Error("the key of a candidate was turned away")
	}
	if long.keyMayMatch("abcdXXXXXXXX", 0, gramAt("abcdXXXXXXXX", 0)) {
		t.Error("an indexed gram with other bytes after it passed the keys filter")
	}
	if !long.keyMayMatch("xxabcdefgh", 2, gramAt("xxabcdefgh", 2)) {
		t.Error("a probe with fewer than 8 bytes left was turned away")
	}
	short := newMatcher(dedupe([]form{{"k3y-8byt", true}, {"abcdefghijkl", false}}))
	if !short.shortKeys {
		t.Error("shortKeys not set for an 8-byte pattern")
	}
	for _, text := range []string{
		"k3y-8byt", "..K3Y-8BYT..", "xxxxxk3y-8byt", "a k3y-8byt and abcdefghijkl",
		"cut at the end: abcdefgh", "cut: abcdefghij", "..k3y-8byt",
	} {
		want, wantOK := naiveRedact(text, patternsOfMatcher(short))
		if got, ok := short.redact(text, nil); got != want || ok != wantOK {
			t.Errorf("redact(%q) = %q, %v; want %q, %v", text, got, ok, want, wantOK)
		}
	}
}

// TestEqualFoldLower checks lower8 on every byte value in every position of a
// word, next to bytes that border the letters, and equalFoldLower against the
// byte-wise fold on texts of every length up to 40 (the 8-byte steps and the rest).
func TestEqualFoldLower(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			for _, other := range []byte{'@', 'A', 'Z', '[', 'a', 'z', 0x7f, 0x80, 0xc1, 0xff} {
				var w [8]byte
				for i := range w {
					w[i] = other
				}
				w[pos] = byte(c)
				want := lowerASCII(string(w[:]))
				if got := lower8(load64(string(w[:]))); got != load64(want) {
					t.Fatalf("lower8(%q) = %#x, want %#x (%q)", w[:], got, load64(want), want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "aAzZ@[`{09\x80\xc1\xdf"
	for n := range 41 {
		for range 200 {
			s := randomString(rng, alphabet, n)
			lower := lowerASCII(randomString(rng, alphabet, n))
			if rng.IntN(2) == 0 {
				lower = lowerASCII(s) // equal but for case
				if n > 0 && rng.IntN(2) == 0 {
					b := []byte(lower)
					b[rng.IntN(n)] ^= 0x01 // one byte off, anywhere
					lower = lowerASCII(string(b))
				}
			}
			if got, want := equalFoldLower(s, lower), asciiFoldEqual(s, lower); got != want {
				t.Fatalf("equalFoldLower(%q, %q) = %v, want %v", s, lower, got, want)
			}
		}
	}
}
