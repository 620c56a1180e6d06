package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/outrider-dev/outrider/tools/bench/internal/report"
)

// Names of the two configurations, as they appear in the table.
const (
	baselineName = "no-secrets"
	redactName   = "redact"
)

// printReport writes the table, then the summary when some round has both runs
// complete.
func printReport(w io.Writer, results []result, secrets int, maxOverhead float64) error {
	if err := printTable(w, results); err != nil {
		return err
	}
	if s, ok := summarize(results); ok {
		return s.print(w, secrets, maxOverhead)
	}
	return nil
}

// printTable writes one row per run.
func printTable(w io.Writer, results []result) error {
	t := report.NewTable(w, "run", "round", "secrets", "patterns", "lines", "wall_s", "lines/s", "cpu_s", "lines/cpu_s",
		"scrub_s", "scrub_pct_cpu", "scrubbed_lines", "checked_lines", "leaked_lines", "requests")
	for _, r := range results {
		rate, perCPU := report.Rates(r.figures())
		t.Rowf("%s\t%d\t%d\t%d\t%d\t%.2f\t%s\t%.2f\t%s\t%.3f\t%.1f\t%d\t%d\t%d\t%d",
			r.name, r.round, len(r.values), r.patterns, r.counts.Entries, r.wall.Seconds(), rate,
			r.cpu.Seconds(), perCPU, r.scrub.Seconds(), r.scrubShare(),
			r.counts.Scrubbed, r.counts.Checked, r.counts.Leaked, r.counts.Requests)
	}
	return t.Flush()
}

// summary compares the two configurations over their complete runs.
type summary struct {
	// pairs is the number of rounds in which both runs completed.
	pairs int
	// paired is the median over those rounds of each round's overhead in lines per
	// CPU-second: the runs of a round are back to back, so they share the state of
	// the machine more than runs of different rounds do.
	paired float64
	// Lines per CPU-second: the median and the best run of each configuration.
	baseMedian, redactMedian float64
	baseBest, redactBest     float64
	// Lines per second, median.
	baseWall, redactWall float64
	// scrubShare is the median share of CPU time spent in the redact sink over the
	// runs with secrets.
	scrubShare float64
}

// summarize returns the figures; ok is false unless some round has both runs
// complete.
func summarize(results []result) (s summary, ok bool) {
	var bc, rc, bw, rw, share, pairs []float64
	base := map[int]result{}
	for _, r := range results {
		if !r.complete || r.cpu <= 0 || r.wall <= 0 {
			continue
		}
		switch r.name {
		case baselineName:
			bc, bw = append(bc, r.linesPerCPUSecond()), append(bw, r.linesPerSecond())
			base[r.round] = r
		case redactName:
			rc, rw = append(rc, r.linesPerCPUSecond()), append(rw, r.linesPerSecond())
			share = append(share, r.scrubShare())
		}
	}
	for _, r := range results {
		if b, found := base[r.round]; found && r.name == redactName && r.complete && r.cpu > 0 {
			pairs = append(pairs, overhead(b.linesPerCPUSecond(), r.linesPerCPUSecond()))
		}
	}
	if len(pairs) == 0 {
		return s, false
	}
	return summary{
		pairs:      len(pairs),
		paired:     median(pairs),
		baseMedian: median(bc), redactMedian: median(rc),
		baseBest: slices.Max(bc), redactBest: slices.Max(rc),
		baseWall: median(bw), redactWall: median(rw),
		scrubShare: median(share),
	}, true
}

// overhead is the throughput lost from base to with, in percent of base.
func overhead(base, with float64) float64 { return 100 * (1 - with/base) }

func (s summary) print(w io.Writer, secrets int, maxOverhead float64) error {
	_, err := fmt.Fprintf(w, "overhead of scrubbing %d secrets in lines per CPU-second, median over %d rounds: %.1f%% (limit %.1f%%)\n"+
		"  lines per CPU-second, median: %s %.0f, %s %.0f (%.1f%%); best: %s %.0f, %s %.0f (%.1f%%)\n"+
		"  lines per second, median:     %s %.0f, %s %.0f (%.1f%%; wall time, noisier)\n"+
		"  time in the redact sink, median: %.1f%% of the CPU time of the runs with secrets\n"+
		"(cpu_s is this process's getrusage time from starting the source to the arrival of the last line; the sink runs in a separate process)\n",
		secrets, s.pairs, s.paired, maxOverhead,
		baselineName, s.baseMedian, redactName, s.redactMedian, overhead(s.baseMedian, s.redactMedian),
		baselineName, s.baseBest, redactName, s.redactBest, overhead(s.baseBest, s.redactBest),
		baselineName, s.baseWall, redactName, s.redactWall, overhead(s.baseWall, s.redactWall),
		s.scrubShare)
	return err
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// check returns one message per failed acceptance condition: incomplete runs,
// secrets reaching the sink with scrubbing on, a leak check that cannot see leaks
// (the baseline must show them), and the overhead gate.
func check(results []result, maxOverhead float64) []string {
	var failed []string
	for _, r := range results {
		label := fmt.Sprintf("%s round %d", r.name, r.round)
		if !r.complete {
			failed = append(failed, fmt.Sprintf("%s: %s (%d of %d lines arrived)", label, r.problem, r.counts.Entries, r.want))
			continue
		}
		if r.counts.Rejected > 0 {
			failed = append(failed, fmt.Sprintf("%s: the sink rejected %d requests: %s", label, r.counts.Rejected, r.counts.LastError))
		}
		switch r.name {
		case redactName:
			if r.counts.Leaked > 0 {
				failed = append(failed, fmt.Sprintf("%s: %d of %d checked lines reached the sink with a secret in them", label, r.counts.Leaked, r.counts.Checked))
			}
			if r.counts.Scrubbed < r.withSecret {
				failed = append(failed, fmt.Sprintf("%s: %d lines were scrubbed, but %d carry a secret", label, r.counts.Scrubbed, r.withSecret))
			}
		case baselineName:
			if r.withSecret > 0 && r.counts.Leaked < r.withSecret {
				failed = append(failed, fmt.Sprintf("%s: the sink found secrets in %d lines without scrubbing, but %d carry one: its leak check is broken", label, r.counts.Leaked, r.withSecret))
			}
		}
	}
	s, ok := summarize(results)
	switch {
	case !ok:
		failed = append(failed, "the overhead could not be measured: each configuration needs a complete run")
	case s.paired > maxOverhead:
		failed = append(failed, fmt.Sprintf("scrubbing costs %.1f%% of lines per CPU-second, more than the allowed %.1f%%", s.paired, maxOverhead))
	}
	return failed
}
