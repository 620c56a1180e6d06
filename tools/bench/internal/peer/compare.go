package peer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

// find returns the figures of the named system in the given round.
func find(results []measure.Figures, name string, round int) (measure.Figures, bool) {
	for _, r := range results {
		if r.Name == name && r.Round == round {
			return r, true
		}
	}
	return measure.Figures{}, false
}

// rounds returns the rounds of results, in the order they first appear.
func rounds(results []measure.Figures) []int {
	var out []int
	for _, r := range results {
		if !slices.Contains(out, r.Round) {
			out = append(out, r.Round)
		}
	}
	return out
}

// roundRatios returns outrider's ratios to the collector in each round in which
// both ran to completion with usable figures: its items per CPU-second and its
// peak RSS, each divided by the collector's.
func roundRatios(results []measure.Figures) (cpu, rss []float64) {
	for _, round := range rounds(results) {
		a, okA := find(results, Outrider, round)
		b, okB := find(results, Otelcol, round)
		if !okA || !okB || !a.Complete || !b.Complete {
			continue
		}
		if a.CPU == 0 || b.PerCPUSecond() == 0 || b.PeakRSS == 0 {
			continue
		}
		cpu = append(cpu, a.PerCPUSecond()/b.PerCPUSecond())
		rss = append(rss, float64(a.PeakRSS)/float64(b.PeakRSS))
	}
	return cpu, rss
}

// Ratios compares outrider with the collector: its items per CPU-second and its
// peak RSS, each divided by the collector's in the same round, the median over the
// rounds. ok is false unless both ran to completion with usable figures in at
// least one round.
func Ratios(results []measure.Figures) (cpuRatio, rssRatio float64, ok bool) {
	cpu, rss := roundRatios(results)
	if len(cpu) == 0 {
		return 0, 0, false
	}
	return measure.Median(cpu), measure.Median(rss), true
}

// Notes returns the lines that go below a results table: outrider's ratio to the
// collector when both completed (the median and each round's, over several rounds),
// then note. unit names, in the singular, what the benchmark counts.
func Notes(results []measure.Figures, unit, note string) []string {
	var lines []string
	cpu, rss := roundRatios(results)
	switch {
	case len(cpu) == 1 && len(rounds(results)) == 1:
		lines = append(lines, fmt.Sprintf("ratio (%s/%s): %ss per CPU-second %.2f×, peak RSS %.2f×",
			Outrider, Otelcol, unit, cpu[0], rss[0]))
	case len(cpu) > 0:
		each := make([]string, len(cpu))
		for i, c := range cpu {
			each[i] = fmt.Sprintf("%.2f×", c)
		}
		lines = append(lines, fmt.Sprintf("ratio (%s/%s), median of %d rounds: %ss per CPU-second %.2f× (rounds: %s), peak RSS %.2f×",
			Outrider, Otelcol, len(cpu), unit, measure.Median(cpu), strings.Join(each, ", "), measure.Median(rss)))
	}
	return append(lines, note)
}

// Gates are the optional acceptance limits on outrider; zero disables one.
type Gates struct {
	// MinCPURatio is the least items-per-CPU-second ratio of outrider to the
	// collector: the median over the rounds.
	MinCPURatio float64
	// MaxRSSMiB is the most peak RSS outrider may use in any round, in MB of 2^20
	// bytes.
	MaxRSSMiB float64
}

// Check returns one message per failed gate. unit names, in the singular, what
// the benchmark counts.
func (g Gates) Check(results []measure.Figures, unit string) []string {
	var failed []string
	if g.MinCPURatio > 0 {
		cpuRatio, _, ok := Ratios(results)
		median := ""
		if len(rounds(results)) > 1 {
			median = " (median of the rounds)"
		}
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("%ss per CPU-second ratio must be at least %.2f× but could not be measured (both systems must run and complete)", unit, g.MinCPURatio))
		case cpuRatio < g.MinCPURatio:
			failed = append(failed, fmt.Sprintf("%ss per CPU-second ratio %.2f×%s is below the required %.2f×", unit, cpuRatio, median, g.MinCPURatio))
		}
	}
	if g.MaxRSSMiB > 0 {
		failed = append(failed, g.checkRSS(results)...)
	}
	return failed
}

// checkRSS checks outrider's peak RSS in every round against MaxRSSMiB.
func (g Gates) checkRSS(results []measure.Figures) []string {
	var peak measure.Figures
	runs := 0
	for _, r := range results {
		if r.Name != Outrider {
			continue
		}
		runs++
		if !r.Complete || r.PeakRSS == 0 {
			return []string{fmt.Sprintf("%s peak RSS must be at most %.0f MB but could not be measured", r.Name, g.MaxRSSMiB)}
		}
		if r.PeakRSS > peak.PeakRSS {
			peak = r
		}
	}
	switch {
	case runs == 0:
		return []string{fmt.Sprintf("%s peak RSS must be at most %.0f MB but %s did not run", Outrider, g.MaxRSSMiB, Outrider)}
	case peak.PeakRSSMiB() <= g.MaxRSSMiB:
		return nil
	case runs > 1:
		return []string{fmt.Sprintf("%s peak RSS %.1f MB in round %d is above the allowed %.0f MB", peak.Name, peak.PeakRSSMiB(), peak.Round, g.MaxRSSMiB)}
	}
	return []string{fmt.Sprintf("%s peak RSS %.1f MB is above the allowed %.0f MB", peak.Name, peak.PeakRSSMiB(), g.MaxRSSMiB)}
}
