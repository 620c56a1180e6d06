package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

const mib = 1 << 20

// printTable writes one row per system, then outrider's ratio to the collector when
// both completed.
func printTable(w io.Writer, results []result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\tspans_sent\tspans_received\tlost\twall_s\tspans/s\tcpu_s\tspans/cpu_s\tpeak_rss_MB\tbatches_out\tretries\t")
	for _, r := range results {
		rate, perCPU := "-", "-"
		if r.complete && r.wall > 0 {
			rate = strconv.FormatFloat(r.spansPerSecond(), 'f', 0, 64)
		}
		if r.complete && r.cpu > 0 {
			perCPU = strconv.FormatFloat(r.spansPerCPUSecond(), 'f', 0, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%s\t%.2f\t%s\t%.1f\t%d\t%d\t\n",
			r.name, r.sent, r.delivered, r.lost(), r.wall.Seconds(), rate, r.cpu.Seconds(), perCPU,
			float64(r.peakRSS)/mib, r.requests, r.retries)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cpuRatio, rssRatio, ok := ratios(results); ok {
		_, err := fmt.Fprintf(w, "ratio (%s/%s): spans per CPU-second %.2f×, peak RSS %.2f×\n",
			outriderName, otelcolName, cpuRatio, rssRatio)
		if err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "(MB = 2^20 bytes; cpu_s is the measured process's own CPU time from the first send to the last span's arrival; peak_rss_MB its VmHWM then)")
	return err
}

// find returns the result of the named system.
func find(results []result, name string) (result, bool) {
	for _, r := range results {
		if r.name == name {
			return r, true
		}
	}
	return result{}, false
}

// ratios compares outrider with the collector: spans per CPU-second and peak RSS.
// ok is false unless both ran to completion with usable figures.
func ratios(results []result) (cpuRatio, rssRatio float64, ok bool) {
	a, okA := find(results, outriderName)
	b, okB := find(results, otelcolName)
	if !okA || !okB || !a.complete || !b.complete {
		return 0, 0, false
	}
	if a.cpu == 0 || b.spansPerCPUSecond() == 0 || b.peakRSS == 0 {
		return 0, 0, false
	}
	return a.spansPerCPUSecond() / b.spansPerCPUSecond(), float64(a.peakRSS) / float64(b.peakRSS), true
}

// gates are the optional acceptance limits; zero disables one.
type gates struct {
	// minCPURatio is the least spans-per-CPU-second ratio of outrider to the collector.
	minCPURatio float64
	// maxRSSMiB is the most peak RSS outrider may use, in MB of 2^20 bytes.
	maxRSSMiB float64
}

// check returns one message per failed gate.
func (g gates) check(results []result) []string {
	var failed []string
	if g.minCPURatio > 0 {
		cpuRatio, _, ok := ratios(results)
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("spans per CPU-second ratio must be at least %.2f× but could not be measured (both systems must run and complete)", g.minCPURatio))
		case cpuRatio < g.minCPURatio:
			failed = append(failed, fmt.Sprintf("spans per CPU-second ratio %.2f× is below the required %.2f×", cpuRatio, g.minCPURatio))
		}
	}
	if g.maxRSSMiB > 0 {
		r, found := find(results, outriderName)
		switch {
		case !found:
			failed = append(failed, fmt.Sprintf("%s peak RSS must be at most %.0f MB but %s did not run", outriderName, g.maxRSSMiB, outriderName))
		case !r.complete || r.peakRSS == 0:
			failed = append(failed, fmt.Sprintf("%s peak RSS must be at most %.0f MB but could not be measured", r.name, g.maxRSSMiB))
		case float64(r.peakRSS)/mib > g.maxRSSMiB:
			failed = append(failed, fmt.Sprintf("%s peak RSS %.1f MB is above the allowed %.0f MB", r.name, float64(r.peakRSS)/mib, g.maxRSSMiB))
		}
	}
	return failed
}

// losses returns one loud message per system that lost, duplicated or altered spans
// or did not finish.
func losses(results []result) []string {
	var out []string
	for _, r := range results {
		if r.problem != "" {
			out = append(out, fmt.Sprintf("%s: %s", r.name, r.problem))
		}
		if lost := r.lost(); lost > 0 {
			out = append(out, fmt.Sprintf("SPANS LOST: %s delivered %d of the %d spans it accepted (%d lost)", r.name, r.delivered, r.sent, lost))
		}
		if r.rejected > 0 {
			out = append(out, fmt.Sprintf("SPANS REJECTED: %s refused %d of %d spans", r.name, r.rejected, r.want))
		}
		if r.delivered > r.sent && r.complete {
			out = append(out, fmt.Sprintf("DUPLICATES: %s delivered %d spans more than it accepted", r.name, r.delivered-r.sent))
		}
		if r.wrongAttrs > 0 {
			out = append(out, fmt.Sprintf("ALTERED: %s delivered %d spans whose attribute count is not %d", r.name, r.wrongAttrs, spanAttrs))
		}
	}
	return out
}
