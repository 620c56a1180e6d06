package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/report"
)

// Names of the two configurations, as they appear in the table.
const (
	baselineName = "no-secrets"
	redactName   = "redact"
)

// printReport writes the table of runs, the table of leak forms, the machine's
// load, then the summary when some round has both runs complete.
func printReport(w io.Writer, results []result, secrets int, maxOverhead float64) error {
	if err := printTable(w, results); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	if err := printForms(w, results); err != nil {
		return err
	}
	if len(results) > 0 {
		if _, err := fmt.Fprintf(w, "\nload average (1, 5, 15 min) at the end of the first run: %s; of the last: %s; %d CPUs\n",
			results[0].load, results[len(results)-1].load, runtime.NumCPU()); err != nil {
			return err
		}
	}
	if s, ok := summarize(results); ok {
		return s.print(w, secrets, maxOverhead)
	}
	return nil
}

// formTotals adds up, over the complete runs of configuration name, the lines of
// each leak form.
func formTotals(results []result, name string) map[string]formCounts {
	out := map[string]formCounts{}
	for _, r := range results {
		if r.name != name || !r.complete {
			continue
		}
		for f, c := range r.counts.Forms {
			t := out[f]
			t.Lines += c.Lines
			t.Scrubbed += c.Scrubbed
			t.Leaked += c.Leaked
			out[f] = t
		}
	}
	return out
}

// printForms writes one row per leak form, over all complete runs: the lines that
// carried it, how many of them the leak check found the secret in without
// scrubbing (all, or the check is blind to that form), and with scrubbing how many
// arrived scrubbed and how many still held the secret.
func printForms(w io.Writer, results []result) error {
	base, red := formTotals(results, baselineName), formTotals(results, redactName)
	t := report.NewTable(w, "leak_form", "lines", "found_unscrubbed", "lines_redact", "scrubbed", "leaked")
	for _, f := range leakForms {
		b, r := base[f.name], red[f.name]
		t.Rowf("%s\t%d\t%d\t%d\t%d\t%d", f.name, b.Lines, b.Leaked, r.Lines, r.Scrubbed, r.Leaked)
	}
	return t.Flush()
}

// printTable writes one row per run.
func printTable(w io.Writer, results []result) error {
	t := report.NewTable(w, "run", "round", "secrets", "patterns", "lines", "wall_s", "lines/s", "cpu_s", "lines/cpu_s",
		"scrub_cpu_s", "scrub_ns/line", "scrub_pct_cpu", "scrubbed_lines", "checked_lines", "leaked_lines", "requests", "load1")
	for _, r := range results {
		rate, perCPU := report.Rates(r.figures())
		load1, _, _ := strings.Cut(r.load, " ")
		t.Rowf("%s\t%d\t%d\t%d\t%d\t%.2f\t%s\t%.2f\t%s\t%.3f\t%d\t%.1f\t%d\t%d\t%d\t%d\t%s",
			r.name, r.round, len(r.values), r.patterns, r.counts.Entries, r.wall.Seconds(), rate,
			r.cpu.Seconds(), perCPU, r.scrub.Seconds(), r.scrubPerLine().Nanoseconds(), r.scrubShare(),
			r.counts.Scrubbed, r.counts.Checked, r.counts.Leaked, r.counts.Requests, load1)
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
	// runs with secrets; scrubNs the median CPU time in it per line, and
	// scrubOfBase that in percent of the baseline's median CPU time per line.
	scrubShare, scrubNs, scrubOfBase float64
}

// summarize returns the figures; ok is false unless some round has both runs
// complete.
func summarize(results []result) (s summary, ok bool) {
	var bc, rc, bw, rw, share, scrubNs, pairs []float64
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
			scrubNs = append(scrubNs, float64(r.scrubPerLine().Nanoseconds()))
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
		paired:     measure.Median(pairs),
		baseMedian: measure.Median(bc), redactMedian: measure.Median(rc),
		baseBest: slices.Max(bc), redactBest: slices.Max(rc),
		baseWall: measure.Median(bw), redactWall: measure.Median(rw),
		scrubShare: measure.Median(share),
		scrubNs:    measure.Median(scrubNs),
		// CPU nanoseconds per line of the baseline is 1e9 / lines per CPU-second.
		scrubOfBase: measure.Median(scrubNs) * measure.Median(bc) / 1e7,
	}, true
}

// overhead is the throughput lost from base to with, in percent of base.
func overhead(base, with float64) float64 { return 100 * (1 - with/base) }

func (s summary) print(w io.Writer, secrets int, maxOverhead float64) error {
	_, err := fmt.Fprintf(w, "overhead of scrubbing %d secrets in lines per CPU-second, median over %d rounds: %.1f%% (limit %.1f%%)\n"+
		"  lines per CPU-second, median: %s %.0f, %s %.0f (%.1f%%); best: %s %.0f, %s %.0f (%.1f%%)\n"+
		"  lines per second, median:     %s %.0f, %s %.0f (%.1f%%; wall time, noisier)\n"+
		"  CPU time in the redact sink (its thread's CPU clock), median: %.0f ns per line, %.1f%% of the CPU time of the runs with secrets, %.1f%% of the baseline's CPU per line\n"+
		"(cpu_s is this process's getrusage time from starting the source to the arrival of the last line; the sink runs in a separate process)\n",
		secrets, s.pairs, s.paired, maxOverhead,
		baselineName, s.baseMedian, redactName, s.redactMedian, overhead(s.baseMedian, s.redactMedian),
		baselineName, s.baseBest, redactName, s.redactBest, overhead(s.baseBest, s.redactBest),
		baselineName, s.baseWall, redactName, s.redactWall, overhead(s.baseWall, s.redactWall),
		s.scrubNs, s.scrubShare, s.scrubOfBase)
	return err
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
	failed = append(failed, checkForms(results)...)
	s, ok := summarize(results)
	switch {
	case !ok:
		failed = append(failed, "the overhead could not be measured: each configuration needs a complete run")
	case s.paired > maxOverhead:
		failed = append(failed, fmt.Sprintf("scrubbing costs %.1f%% of lines per CPU-second, more than the allowed %.1f%%", s.paired, maxOverhead))
	}
	return failed
}

// checkForms returns one message per leak form that is missing from the input,
// that the leak check cannot see without scrubbing, or that was not scrubbed on
// every line with scrubbing on.
func checkForms(results []result) []string {
	var failed []string
	base, red := formTotals(results, baselineName), formTotals(results, redactName)
	for _, f := range leakForms {
		b, r := base[f.name], red[f.name]
		switch {
		case b.Lines == 0 && r.Lines == 0:
			if anyComplete(results) && results[0].withSecret > 0 {
				failed = append(failed, fmt.Sprintf("leak form %s: no line of the input carries it", f.name))
			}
		case b.Leaked < b.Lines:
			failed = append(failed, fmt.Sprintf("leak form %s: the leak check found the secret in %d of %d lines without scrubbing", f.name, b.Leaked, b.Lines))
		case r.Scrubbed < r.Lines:
			failed = append(failed, fmt.Sprintf("leak form %s: %d of %d lines arrived scrubbed (%d still held the secret)", f.name, r.Scrubbed, r.Lines, r.Leaked))
		}
	}
	return failed
}

func anyComplete(results []result) bool {
	for _, r := range results {
		if r.complete {
			return true
		}
	}
	return false
}
