package main

import (
	"fmt"
	"io"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
	"github.com/outrider-dev/outrider/tools/bench/internal/report"
)

// printTable writes one row per run (a system, or a system in one round), then
// outrider's ratio to the collector when both completed.
func printTable(w io.Writer, _ options, results []result) error {
	t := report.NewTable(w, "system", "spans_sent", "spans_received", "lost", "wall_s", "spans/s", "cpu_s", "spans/cpu_s", "peak_rss_MB", "batches_out", "retries", "load_avg")
	for _, r := range results {
		rate, perCPU := report.Rates(r.Figures)
		t.Rowf("%s\t%d\t%d\t%d\t%.2f\t%s\t%.2f\t%s\t%.1f\t%d\t%d\t%s",
			report.RunName(r.Figures), r.sent, r.Delivered, r.lost(), r.Wall.Seconds(), rate, r.CPU.Seconds(), perCPU,
			r.PeakRSSMiB(), r.requests, r.retries, r.load)
	}
	return t.Flush(peer.Notes(measure.FiguresOf(results), unit,
		"(MB = 2^20 bytes; cpu_s is the measured process's own CPU time from the first send to the last span's arrival; peak_rss_MB its VmHWM then; load_avg the machine's 1-, 5- and 15-minute load averages when the run ended)")...)
}

// losses returns one loud message per system that lost, duplicated or altered spans
// or did not finish.
func losses(results []result) []string {
	var out []string
	for _, r := range results {
		if r.problem != "" {
			out = append(out, fmt.Sprintf("%s: %s", r.Name, r.problem))
		}
		if lost := r.lost(); lost > 0 {
			out = append(out, fmt.Sprintf("SPANS LOST: %s delivered %d of the %d spans it accepted (%d lost)", r.Name, r.Delivered, r.sent, lost))
		}
		if r.rejected > 0 {
			out = append(out, fmt.Sprintf("SPANS REJECTED: %s refused %d of %d spans", r.Name, r.rejected, r.want))
		}
		if r.Delivered > r.sent && r.Complete {
			out = append(out, fmt.Sprintf("DUPLICATES: %s delivered %d spans more than it accepted", r.Name, r.Delivered-r.sent))
		}
		if r.wrongAttrs > 0 {
			out = append(out, fmt.Sprintf("ALTERED: %s delivered %d spans whose attribute count is not %d", r.Name, r.wrongAttrs, spanAttrs))
		}
	}
	return out
}
