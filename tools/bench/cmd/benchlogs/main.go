// Command benchlogs measures file -> Loki log shipping: it writes a file of JSON
// lines, lets outrider ship it to a counting Loki endpoint and, in the same run,
// lets the OpenTelemetry Collector (file_log receiver -> otlp_http exporter) ship the
// same file to a counting OTLP endpoint, then prints lines per second, lines per
// CPU-second and peak RSS of each, and their ratio.
//
//	go run ./tools/bench/cmd/benchlogs -outrider bin/outrider \
//	    -otelcol ~/.cache/outrider/bin/otelcol-v0.160.0 -lines 1000000
//
// Each system runs alone, as a child process, reading a file that was completely
// written before it started. The counting sink runs inside benchlogs; only the
// child's CPU time (utime+stime from /proc/PID/stat) and peak RSS (VmHWM) are
// reported, read after its last line arrived and before it is stopped. Wall time
// runs from starting the child to the arrival of its last line.
//
// Exit status: 0 when every system delivered every line (and the optional
// -min-cpu-ratio and -max-rss-mb gates hold), 1 otherwise, 2 for bad usage.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/loggen"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
)

// unit is what benchlogs counts, as the table, the ratio line and the gates say.
const unit = "line"

type options struct {
	peer.Options
	lines int64
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := cli.FlagSet("benchlogs", stderr)
	o.Register(fs, unit)
	fs.Int64Var(&o.lines, "lines", 1_000_000, "number of JSON lines to generate")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	if o.lines <= 0 {
		return o, cli.Usagef("-lines must be positive, got %d", o.lines)
	}
	return o, o.Validate()
}

// command is the whole program.
var command = cli.Command[options, result]{Name: "benchlogs", Parse: parseFlags, Bench: bench, Print: printTable, Check: check}

func main() { command.Main() }

// check fails the systems that did not deliver every line and the gates that do
// not hold, and warns about lines without trace IDs, rejected requests and
// duplicates.
func check(o options, results []result, v *cli.Verdict) {
	for _, r := range results {
		if r.problem != "" || !r.Complete {
			v.Problem(fmt.Sprintf("%s: %s", r.Name, r.problem))
		}
		if r.Complete && r.withTraceID < r.Delivered {
			v.Warn(fmt.Sprintf("%s delivered %d lines without a trace ID", r.Name, r.Delivered-r.withTraceID))
		}
		if r.rejected > 0 && r.problem == "" {
			v.Warn(fmt.Sprintf("the sink rejected %d of %s's requests (it retried them)", r.rejected, r.Name))
		}
		if r.Delivered > r.want {
			v.Warn(fmt.Sprintf("%s delivered %d lines more than were written (duplicates)", r.Name, r.Delivered-r.want))
		}
	}
	v.Fail(o.Gates.Check(measure.FiguresOf(results), unit)...)
}

// bench sets up the workdir and input, then measures each system in turn.
func bench(ctx context.Context, logger *slog.Logger, o options, stderr io.Writer) ([]result, error) {
	systems, workdir, cleanup, err := peer.Prepare(o.Options, "benchlogs", outriderSystem, otelcolSystem)
	defer cleanup()
	if err != nil {
		return nil, err
	}

	input := filepath.Join(workdir, "input.log")
	began := time.Now()
	st, err := loggen.WriteFile(input, int(o.lines), loggen.Seed)
	if err != nil {
		return nil, err
	}
	logger.Info("input written", "path", input, "lines", st.Lines, "bytes", st.Bytes,
		"avg_line_bytes", st.Bytes/int64(max(st.Lines, 1)), "errors", st.Errors, "took", time.Since(began).Round(time.Millisecond))

	opts := runOptions{
		workdir:   workdir,
		input:     input,
		lines:     o.lines,
		timeout:   o.Timeout,
		poll:      10 * time.Millisecond,
		progress:  10 * time.Second,
		stopGrace: 30 * time.Second,
		out:       stderr,
	}
	return peer.Each(ctx, systems, o.Rounds, workdir, func(s system, round int, dir string) (result, error) {
		opts.workdir, opts.round = dir, round
		return measureSystem(ctx, logger, s, opts)
	})
}
