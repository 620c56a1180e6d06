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

// inRound returns f as the figures of a run in round.
func inRound(f measure.Figures, round int, cpu time.Duration, rss int64) measure.Figures {
	f.Round, f.CPU, f.PeakRSS = round, cpu, rss
	return f
}

func TestRatiosOverRounds(t *testing.T) {
	results := []measure.Figures{
		inRound(fast, 1, time.Second, 30<<20), inRound(slow, 1, 4*time.Second, 90<<20), // 4×
		inRound(slow, 2, 6*time.Second, 90<<20), inRound(fast, 2, time.Second, 31<<20), // 6×
		inRound(fast, 3, 2*time.Second, 32<<20), inRound(slow, 3, 6*time.Second, 90<<20), // 3×
	}
	cpu, _, ok := Ratios(results)
	if !ok || cpu != 4 {
		t.Errorf("Ratios = %v, %v; want the median, 4", cpu, ok)
	}
	notes := Notes(results, "line", "(a note)")
	if want := "ratio (outrider/otelcol), median of 3 rounds: lines per CPU-second 4.00× (rounds: 4.00×, 6.00×, 3.00×)"; !strings.HasPrefix(notes[0], want) {
		t.Errorf("Notes[0] = %q, want it to begin %q", notes[0], want)
	}
	// A round that did not complete is left out of the ratio; two rounds' median
	// is their mean.
	results[4].Complete = false
	if cpu, _, ok := Ratios(results); !ok || cpu != 5 {
		t.Errorf("Ratios without round 3 = %v, %v; want 5", cpu, ok)
	}

	g := Gates{MinCPURatio: 4.5, MaxRSSMiB: 31.5}
	results[4].Complete = true
	got := g.Check(results, "line")
	want := []string{
		"lines per CPU-second ratio 4.00× (median of the rounds) is below the required 4.50×",
		"outrider peak RSS 32.0 MB in round 3 is above the allowed 32 MB",
	}
	if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], "outrider peak RSS 32.0 MB in round 3 is above") {
		t.Errorf("Check = %q, want %q", got, want)
	}
	if got := (Gates{MinCPURatio: 3.5, MaxRSSMiB: 33}).Check(results, "line"); len(got) != 0 {
		t.Errorf("Check = %q, want none: the median and every peak are within", got)
	}
	// One unmeasured peak fails the RSS gate, whatever the others.
	results[3].PeakRSS = 0
	if got := (Gates{MaxRSSMiB: 33}).Check(results, "line"); len(got) != 1 || !strings.Contains(got[0], "could not be measured") {
		t.Errorf("Check = %q, want the unmeasured peak", got)
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
