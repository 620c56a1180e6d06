package redact

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// naiveRedact is the reference: with every pattern compared at every byte of s
// (exactly, or without regard to ASCII case for a folded one), the union of every
// occurrence, of every prefix of at least cutMin bytes at the end of s, and — when s
// holds a line break — of those found the same way in s without its line breaks
// ("\n", "\r\n"), mapped back to s; replaced by Marker.
func naiveRedact(s string, patterns []form) (string, bool) {
	covered := make([]bool, len(s))
	any := naiveCover(s, patterns, covered, nil)
	if strings.IndexByte(s, '\n') >= 0 {
		var t []byte
		var pos []int
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' || s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				continue
			}
			t = append(t, s[i])
			pos = append(pos, i)
		}
		if naiveCover(string(t), patterns, covered, pos) {
			any = true
		}
	}
	if !any {
		return s, false
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(Marker)
		for i < len(s) && covered[i] {
			i++
		}
	}
	return b.String(), true
}

// naiveCover marks in covered what the patterns cover in s, whose byte i is byte
// pos[i] of the original text (pos nil: the identity), and reports whether any did.
func naiveCover(s string, patterns []form, covered []bool, pos []int) bool {
	at := func(i int) int {
		if pos == nil {
			return i
		}
		return pos[i]
	}
	any := false
	for _, p := range patterns {
		for i := 0; i < len(s); i++ {
			n := min(len(p.text), len(s)-i)
			if n < len(p.text) && n < cutMin {
				break
			}
			a, b := s[i:i+n], p.text[:n]
			if p.fold {
				if !asciiFoldEqual(a, b) {
					continue
				}
			} else if a != b {
				continue
			}
			for j := at(i); j <= at(i+n-1); j++ {
				covered[j] = true
			}
			any = true
		}
	}
	return any
}

// asciiFoldEqual reports whether a and b differ only in the case of ASCII letters.
func asciiFoldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// exact returns patterns as exact forms.
func exact(patterns ...string) []form {
	out := make([]form, len(patterns))
	for i, p := range patterns {
		out[i] = form{text: p}
	}
	return out
}

// texts returns the texts of forms.
func texts(fs []form) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.text
	}
	return out
}

// hasForm reports whether fs holds w: as is, or a folded form equal to it without
// regard to ASCII case.
func hasForm(fs []form, w string) bool {
	for _, f := range fs {
		if f.text == w || f.fold && asciiFoldEqual(f.text, w) {
			return true
		}
	}
	return false
}

// patternsOf returns the forms of r's current matcher.
func patternsOf(r *Registry) []form { return patternsOfMatcher(r.cur.Load()) }

// patternsOfMatcher returns m's forms (none for a nil m).
func patternsOfMatcher(m *matcher) []form {
	if m == nil {
		return nil
	}
	out := make([]form, len(m.patterns))
	for i, p := range m.patterns {
		out[i] = form{p, m.fold[i]}
	}
	return out
}

// randomString returns n bytes drawn from alphabet.
func randomString(rng *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// leaks returns the registered patterns that occur in out without overlapping a
// Marker: those whose bytes were not all replaced.
func leaks(out string, patterns []form) []string {
	// marked[i] counts the bytes of out before i that belong to a Marker.
	marked := make([]int, len(out)+1)
	inMarker := make([]bool, len(out))
	for from := 0; ; {
		i := strings.Index(out[from:], Marker)
		if i < 0 {
			break
		}
		for j := from + i; j < from+i+len(Marker); j++ {
			inMarker[j] = true
		}
		from += i + 1
	}
	for i, in := range inMarker {
		marked[i+1] = marked[i]
		if in {
			marked[i+1]++
		}
	}
	var found []string
	for _, f := range patterns {
		p, hay := f.text, out
		if f.fold {
			hay = lowerASCII(out)
		}
		for from := 0; from < len(hay); from++ {
			i := strings.Index(hay[from:], p)
			if i < 0 {
				break
			}
			from += i
			if marked[from+len(p)] == marked[from] {
				found = append(found, p)
				break
			}
		}
	}
	return found
}

// metricValue returns the value of a single counter or gauge.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", c.Desc())
	return 0
}
