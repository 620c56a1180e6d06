package peer

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

var (
	fast = measure.Figures{Name: Outrider, Delivered: 100, Complete: true, CPU: time.Second, PeakRSS: 30 << 20}
	slow = measure.Figures{Name: Otelcol, Delivered: 100, Complete: true, CPU: 4 * time.Second, PeakRSS: 90 << 20}
)

func TestRatiosAndNotes(t *testing.T) {
	incomplete := slow
	incomplete.Complete = false
	noCPU := fast
	noCPU.CPU = 0
	tests := []struct {
		name     string
		results  []measure.Figures
		cpu, rss float64
		ok       bool
	}{
		{name: "both", results: []measure.Figures{fast, slow}, cpu: 4, rss: 1.0 / 3, ok: true},
		{name: "order does not matter", results: []measure.Figures{slow, fast}, cpu: 4, rss: 1.0 / 3, ok: true},
		{name: "one incomplete", results: []measure.Figures{fast, incomplete}},
		{name: "no CPU time", results: []measure.Figures{noCPU, slow}},
		{name: "only one", results: []measure.Figures{fast}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, rss, ok := Ratios(tt.results)
			if ok != tt.ok || cpu != tt.cpu || rss != tt.rss {
				t.Errorf("Ratios = %v, %v, %v; want %v, %v, %v", cpu, rss, ok, tt.cpu, tt.rss, tt.ok)
			}
			notes := Notes(tt.results, "line", "(a note)")
			want := []string{"(a note)"}
			if tt.ok {
				want = []string{"ratio (outrider/otelcol): lines per CPU-second 4.00×, peak RSS 0.33×", "(a note)"}
			}
			if strings.Join(notes, "\n") != strings.Join(want, "\n") {
				t.Errorf("Notes = %q, want %q", notes, want)
			}
		})
	}
}

func TestGates(t *testing.T) {
	fat := fast
	fat.PeakRSS = 50 << 20
	lazy := slow
	lazy.CPU = 2 * time.Second
	unmeasured := fast
	unmeasured.PeakRSS = 0
	tests := []struct {
		name    string
		g       Gates
		results []measure.Figures
		want    []string
	}{
		{name: "off", g: Gates{}, results: []measure.Figures{fat, lazy}},
		{name: "pass", g: Gates{MinCPURatio: 3, MaxRSSMiB: 40}, results: []measure.Figures{fast, slow}},
		{name: "ratio too low", g: Gates{MinCPURatio: 3}, results: []measure.Figures{fast, lazy}, want: []string{"spans per CPU-second ratio 2.00× is below the required 3.00×"}},
		{name: "rss too high", g: Gates{MaxRSSMiB: 40}, results: []measure.Figures{fat, slow}, want: []string{"outrider peak RSS 50.0 MB is above the allowed 40 MB"}},
		{name: "rss unmeasured", g: Gates{MaxRSSMiB: 40}, results: []measure.Figures{unmeasured}, want: []string{"outrider peak RSS must be at most 40 MB but could not be measured"}},
		{name: "nothing to compare", g: Gates{MinCPURatio: 3, MaxRSSMiB: 40}, results: []measure.Figures{slow},
			want: []string{"spans per CPU-second ratio must be at least 3.00× but could not be measured", "outrider did not run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.g.Check(tt.results, "span")
			if len(got) != len(tt.want) {
				t.Fatalf("failures %q, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("failure %q lacks %q", got[i], w)
				}
			}
		})
	}
}
