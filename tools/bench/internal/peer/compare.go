package peer

import (
	"fmt"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

// find returns the figures of the named system.
func find(results []measure.Figures, name string) (measure.Figures, bool) {
	for _, r := range results {
		if r.Name == name {
			return r, true
		}
	}
	return measure.Figures{}, false
}

// Ratios compares outrider with the collector: its items per CPU-second and its
// peak RSS, each divided by the collector's. ok is false unless both ran to
// completion with usable figures.
func Ratios(results []measure.Figures) (cpuRatio, rssRatio float64, ok bool) {
	a, okA := find(results, Outrider)
	b, okB := find(results, Otelcol)
	if !okA || !okB || !a.Complete || !b.Complete {
		return 0, 0, false
	}
	if a.CPU == 0 || b.PerCPUSecond() == 0 || b.PeakRSS == 0 {
		return 0, 0, false
	}
	return a.PerCPUSecond() / b.PerCPUSecond(), float64(a.PeakRSS) / float64(b.PeakRSS), true
}

// Notes returns the lines that go below a results table: outrider's ratio to the
// collector when both completed, then note. unit names, in the singular, what the
// benchmark counts.
func Notes(results []measure.Figures, unit, note string) []string {
	var lines []string
	if cpuRatio, rssRatio, ok := Ratios(results); ok {
		lines = append(lines, fmt.Sprintf("ratio (%s/%s): %ss per CPU-second %.2f×, peak RSS %.2f×",
			Outrider, Otelcol, unit, cpuRatio, rssRatio))
	}
	return append(lines, note)
}

// Gates are the optional acceptance limits on outrider; zero disables one.
type Gates struct {
	// MinCPURatio is the least items-per-CPU-second ratio of outrider to the
	// collector.
	MinCPURatio float64
	// MaxRSSMiB is the most peak RSS outrider may use, in MB of 2^20 bytes.
	MaxRSSMiB float64
}

// Check returns one message per failed gate. unit names, in the singular, what
// the benchmark counts.
func (g Gates) Check(results []measure.Figures, unit string) []string {
	var failed []string
	if g.MinCPURatio > 0 {
		cpuRatio, _, ok := Ratios(results)
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("%ss per CPU-second ratio must be at least %.2f× but could not be measured (both systems must run and complete)", unit, g.MinCPURatio))
		case cpuRatio < g.MinCPURatio:
			failed = append(failed, fmt.Sprintf("%ss per CPU-second ratio %.2f× is below the required %.2f×", unit, cpuRatio, g.MinCPURatio))
		}
	}
	if g.MaxRSSMiB > 0 {
		r, found := find(results, Outrider)
		switch {
		case !found:
			failed = append(failed, fmt.Sprintf("%s peak RSS must be at most %.0f MB but %s did not run", Outrider, g.MaxRSSMiB, Outrider))
		case !r.Complete || r.PeakRSS == 0:
			failed = append(failed, fmt.Sprintf("%s peak RSS must be at most %.0f MB but could not be measured", r.Name, g.MaxRSSMiB))
		case r.PeakRSSMiB() > g.MaxRSSMiB:
			failed = append(failed, fmt.Sprintf("%s peak RSS %.1f MB is above the allowed %.0f MB", r.Name, r.PeakRSSMiB(), g.MaxRSSMiB))
		}
	}
	return failed
}
