package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/report"
)

// figure is one row of the table: a measured quantity over the runs that have it.
type figure struct {
	name, system string
	// values are in the row's unit: milliseconds or MiB.
	values []float64
	// limit is the target on the median, 0 for none.
	limit float64
}

// median and maximum of the values; ok is false when there are none.
func (f figure) stats() (median, maximum float64, ok bool) {
	if len(f.values) == 0 {
		return 0, 0, false
	}
	return measure.Median(f.values), slices.Max(f.values), true
}

// verdict is "PASS", "FAIL" or "" when the figure has no target.
func (f figure) verdict() string {
	m, _, ok := f.stats()
	switch {
	case f.limit <= 0:
		return ""
	case !ok:
		return "FAIL"
	case m > f.limit:
		return "FAIL"
	}
	return "PASS"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(b int64) float64 { return float64(b) / measure.MiB }

// collect picks the values of runs that have them: startup from every run, memory
// from the runs that went on.
func collect(runs []run, get func(run) (float64, bool)) []float64 {
	var out []float64
	for _, r := range runs {
		if v, ok := get(r); ok {
			out = append(out, v)
		}
	}
	return out
}

// figures turns results into the table's rows, the targets taken from g.
func figures(results []result, g gates) []figure {
	var out []figure
	full := func(r run) bool { return r.idle.RSS > 0 }
	burst := func(r run) bool { return r.afterBurst.RSS > 0 }
	for _, res := range results {
		rs := res.runs
		switch res.name {
		case nameOutrider:
			out = append(out,
				figure{name: "exec -> /readyz, secret rendered (ms)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return ms(r.startup), true })},
				figure{name: "  Vault requests in it, agent's timing (ms)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return ms(r.vault), true })},
				figure{name: "  start-up less Vault round trips (ms)", system: res.name, limit: ms(g.maxStartup), values: collect(rs, func(r run) (float64, bool) { return ms(r.startup - r.vault), true })},
				figure{name: "idle RSS (MiB)", system: res.name, limit: g.maxIdleMiB, values: collect(rs, func(r run) (float64, bool) { return mb(r.idle.RSS), full(r) })},
				figure{name: "  anonymous: heap, stacks (MiB)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return mb(r.idle.Anon), full(r) })},
				figure{name: "  file-backed: binary (MiB)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return mb(r.idle.File), full(r) })},
				figure{name: "peak RSS in the burst (MiB)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return mb(r.burstPeak), burst(r) })},
				figure{name: "RSS after the burst passed (MiB)", system: res.name, limit: g.maxAfterBurstMiB, values: collect(rs, func(r run) (float64, bool) { return mb(r.afterBurst.RSS), burst(r) })},
			)
		default:
			out = append(out,
				figure{name: "exec -> secret rendered (ms)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return ms(r.startup), true })},
				figure{name: "idle RSS (MiB)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return mb(r.idle.RSS), full(r) })},
				figure{name: "  anonymous: heap, stacks (MiB)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return mb(r.idle.Anon), full(r) })},
				figure{name: "  file-backed: binary (MiB)", system: res.name, values: collect(rs, func(r run) (float64, bool) { return mb(r.idle.File), full(r) })},
			)
		}
	}
	return out
}

// printTable writes the figures with their median, max, target and verdict, then the
// load average and what each burst delivered.
func printTable(w io.Writer, o options, results []result) error {
	t := report.NewTable(w, "figure", "system", "runs", "median", "max", "target", "result")
	for _, f := range figures(results, o.gates) {
		m, x, ok := f.stats()
		med, mx := "-", "-"
		if ok {
			med, mx = fmt.Sprintf("%.1f", m), fmt.Sprintf("%.1f", x)
		}
		target := "-"
		if f.limit > 0 {
			target = fmt.Sprintf("<= %g", f.limit)
		}
		t.Rowf("%s\t%s\t%d\t%s\t%s\t%s\t%s", f.name, f.system, len(f.values), med, mx, target, f.verdict())
	}
	notes := []string{fmt.Sprintf("(MiB = 2^20 bytes; gates on the median; idle = %v without input, then a burst of %d log lines, %d×%d spans and %d Sentry events, read again %v after it arrived)",
		o.idle, o.burst.lines, o.burst.traceRequests, o.burst.spansPerRequest, o.burst.events, o.settle)}
	for _, res := range results {
		notes = append(notes, fmt.Sprintf("load average (1 5 15 min) %s: %s at the start, %s at the end", res.name, res.loadBefore, res.loadAfter))
		for i, r := range res.runs {
			if r.delivered != "" {
				notes = append(notes, fmt.Sprintf("%s burst %d delivered: %s", res.name, i+1, r.delivered))
			}
		}
	}
	return t.Flush(notes...)
}

// check fails each run that did not complete and each target missed.
func check(o options, results []result, v *cli.Verdict) {
	for _, res := range results {
		if res.problem != "" {
			v.Fail(fmt.Sprintf("%s: %s", res.name, res.problem))
		}
	}
	for _, f := range figures(results, o.gates) {
		if f.verdict() == "FAIL" {
			m, x, ok := f.stats()
			if !ok {
				v.Fail(fmt.Sprintf("%s %s: not measured", f.system, f.name))
				continue
			}
			v.Fail(fmt.Sprintf("%s %s: median %.1f (max %.1f) over the target %g", f.system, f.name, m, x, f.limit))
		}
	}
}
