package main

import (
	"io"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
	"github.com/outrider-dev/outrider/tools/bench/internal/report"
)

// printTable writes one row per run (a system, or a system in one round), then
// outrider's ratio to the collector when both completed.
func printTable(w io.Writer, _ options, results []result) error {
	t := report.NewTable(w, "system", "lines", "wall_s", "lines/s", "cpu_s", "lines/cpu_s", "peak_rss_MB", "with_trace_id", "requests", "wire_MB", "load_avg")
	for _, r := range results {
		rate, perCPU := report.Rates(r.Figures)
		load := r.load
		if load == "" {
			load = "unknown"
		}
		t.Rowf("%s\t%d\t%.2f\t%s\t%.2f\t%s\t%.1f\t%d\t%d\t%.1f\t%s",
			report.RunName(r.Figures), r.Delivered, r.Wall.Seconds(), rate, r.CPU.Seconds(), perCPU,
			r.PeakRSSMiB(), r.withTraceID, r.requests, float64(r.wireBytes)/measure.MiB, load)
	}
	return t.Flush(peer.Notes(measure.FiguresOf(results), unit,
		"(MB = 2^20 bytes; cpu_s and peak_rss_MB are the measured process's own, read before it was stopped; "+
			"load_avg is the machine's 1-, 5- and 15-minute load average when its run ended)")...)
}
