package redact

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// naiveRedact is the reference: every occurrence of every pattern, found with
// strings.Index from every byte, and their union replaced by Marker.
func naiveRedact(s string, patterns []string) (string, bool) {
	covered := make([]bool, len(s))
	any := false
	for _, p := range patterns {
		for from := 0; from < len(s); from++ {
			i := strings.Index(s[from:], p)
			if i < 0 {
				break
			}
			from += i
			for j := from; j < from+len(p); j++ {
				covered[j] = true
			}
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

// patternsOf returns the patterns of r's current matcher.
func patternsOf(r *Registry) []string {
	if m := r.cur.Load(); m != nil {
		return m.patterns
	}
	return nil
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
func leaks(out string, patterns []string) []string {
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
	for _, p := range patterns {
		for from := 0; from < len(out); from++ {
			i := strings.Index(out[from:], p)
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
