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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/loggen"
)

// otelcolVersion is the collector the lead's tools/backends/build.sh pins.
const otelcolVersion = "v0.160.0"

type options struct {
	outrider, otelcol string
	lines             int64
	workdir           string
	timeout           time.Duration
	only              string
	gates             gates
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func defaultOtelcol() string {
	cache := os.Getenv("OUTRIDER_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(base, "outrider")
	}
	return filepath.Join(cache, "bin", "otelcol-"+otelcolVersion)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchlogs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.outrider, "outrider", "", "outrider binary (required unless -only otelcol)")
	fs.StringVar(&o.otelcol, "otelcol", defaultOtelcol(), "OpenTelemetry Collector binary built by tools/backends/build.sh otelcol")
	fs.Int64Var(&o.lines, "lines", 1_000_000, "number of JSON lines to generate")
	fs.StringVar(&o.workdir, "workdir", "", "working directory, kept afterwards (default: a temporary directory, removed afterwards)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long each system may take to deliver every line")
	fs.StringVar(&o.only, "only", "both", "which systems to run: outrider, otelcol or both")
	fs.Float64Var(&o.gates.minCPURatio, "min-cpu-ratio", 0, "fail unless outrider's lines per CPU-second is at least this multiple of the collector's (0: no check)")
	fs.Float64Var(&o.gates.maxRSSMiB, "max-rss-mb", 0, "fail if outrider's peak RSS exceeds this many MB of 2^20 bytes (0: no check)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if o.lines <= 0 {
		return o, fmt.Errorf("%w: -lines must be positive, got %d", errUsage, o.lines)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("%w: -timeout must be positive, got %v", errUsage, o.timeout)
	}
	switch o.only {
	case "both", outriderName, otelcolName:
	default:
		return o, fmt.Errorf("%w: -only must be outrider, otelcol or both, got %q", errUsage, o.only)
	}
	if o.gates.minCPURatio > 0 && o.only != "both" {
		return o, fmt.Errorf("%w: -min-cpu-ratio needs both systems (-only both)", errUsage)
	}
	if o.gates.maxRSSMiB > 0 && o.only == otelcolName {
		return o, fmt.Errorf("%w: -max-rss-mb applies to outrider, which -only otelcol leaves out", errUsage)
	}
	return o, nil
}

// systems returns the systems to run, in order, after checking their binaries.
func (o options) systems() ([]system, error) {
	var out []system
	if o.only != otelcolName {
		if o.outrider == "" {
			return nil, fmt.Errorf("%w: -outrider is required (build it with `make build`), or pass -only otelcol", errUsage)
		}
		out = append(out, outriderSystem(o.outrider))
	}
	if o.only != outriderName {
		out = append(out, otelcolSystem(o.otelcol))
	}
	for i, s := range out {
		abs, err := filepath.Abs(s.bin)
		if err != nil {
			return nil, fmt.Errorf("%s binary %q: %w", s.name, s.bin, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			hint := ""
			if s.name == otelcolName {
				hint = " (build it with tools/backends/build.sh otelcol)"
			}
			return nil, fmt.Errorf("%s binary: %w%s", s.name, err, hint)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%s binary %s is not an executable file", s.name, abs)
		}
		out[i].bin = abs
	}
	return out, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchlogs:", err)
		return 2
	}
	results, err := bench(ctx, logger, o, stderr)
	if len(results) > 0 {
		if perr := printTable(stdout, results); perr != nil {
			fmt.Fprintln(stderr, "benchlogs: write the table:", perr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchlogs:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	code := 0
	for _, r := range results {
		if r.problem != "" || !r.complete {
			fmt.Fprintf(stderr, "benchlogs: %s: %s\n", r.name, r.problem)
			code = 1
		}
		if r.complete && r.withTraceID < r.delivered {
			fmt.Fprintf(stderr, "benchlogs: warning: %s delivered %d lines without a trace ID\n", r.name, r.delivered-r.withTraceID)
		}
		if r.rejected > 0 && r.problem == "" {
			fmt.Fprintf(stderr, "benchlogs: warning: the sink rejected %d of %s's requests (it retried them)\n", r.rejected, r.name)
		}
		if r.delivered > r.want {
			fmt.Fprintf(stderr, "benchlogs: warning: %s delivered %d lines more than were written (duplicates)\n", r.name, r.delivered-r.want)
		}
	}
	for _, msg := range o.gates.check(results) {
		fmt.Fprintln(stderr, "benchlogs: FAIL:", msg)
		code = 1
	}
	return code
}

// bench sets up the workdir and input, then measures each system in turn.
func bench(ctx context.Context, logger *slog.Logger, o options, stderr io.Writer) ([]result, error) {
	systems, err := o.systems()
	if err != nil {
		return nil, err
	}
	workdir := o.workdir
	if workdir == "" {
		workdir, err = os.MkdirTemp("", "benchlogs-")
		if err != nil {
			return nil, fmt.Errorf("create a working directory: %w", err)
		}
		defer os.RemoveAll(workdir)
	} else if err := os.MkdirAll(workdir, 0o755); err != nil {
		return nil, fmt.Errorf("create the working directory: %w", err)
	}
	if workdir, err = filepath.Abs(workdir); err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
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
		timeout:   o.timeout,
		poll:      10 * time.Millisecond,
		progress:  10 * time.Second,
		stopGrace: 30 * time.Second,
		out:       stderr,
	}
	var results []result
	for _, s := range systems {
		if ctx.Err() != nil {
			return results, fmt.Errorf("interrupted before %s ran", s.name)
		}
		r, err := measure(ctx, logger, s, opts)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}
