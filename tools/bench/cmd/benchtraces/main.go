// Command benchtraces measures OTLP trace forwarding: a load generator sends spans
// over OTLP/gRPC to the system under test, which forwards them to a counting
// OTLP/gRPC sink inside benchtraces. In the same run, one after the other, it measures
// outrider (OTLP receiver -> durable queue -> OTLP exporter) and the OpenTelemetry
// Collector (otlp receiver -> batch -> otlp_grpc exporter), then prints spans per
// second, spans per CPU-second and peak RSS of each, and their ratio.
//
//	go run ./tools/bench/cmd/benchtraces -outrider bin/outrider \
//	    -otelcol ~/.cache/outrider/bin/otelcol-v0.160.0 -spans 1000000
//
// The load is requests of 100 spans (two resources, ten HTTP attributes per span),
// marshalled once up front and sent by -clients concurrent gRPC connections, one
// request at a time each. Each system runs alone, as a child process. Wall time runs
// from the first send to the arrival of the last span; CPU time is the child's
// utime+stime (from /proc/PID/stat) over that interval, and peak RSS its VmHWM read
// right after. The load generator and sink run in benchtraces and are not counted.
//
// Exit status: 0 when every system delivered every span it accepted, unaltered and
// without rejections (and the optional -min-cpu-ratio and -max-rss-mb gates hold), 1
// otherwise, 2 for bad usage.
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

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// otelcolVersion is the collector tools/backends/build.sh pins.
const otelcolVersion = "v0.160.0"

// distinctPayloads is how many different requests the load generator cycles through.
const distinctPayloads = 64

type options struct {
	outrider, otelcol string
	spans             int64
	spansPerRequest   int
	clients           int
	otelcolQueue      string
	profile           string
	profileTime       time.Duration
	workdir           string
	timeout           time.Duration
	only              string
	gates             gates
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func defaultOtelcol() string {
	return backendtest.Binary("OUTRIDER_OTELCOL_BIN", "otelcol", otelcolVersion)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchtraces", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.outrider, "outrider", "", "outrider binary (required unless -only otelcol)")
	fs.StringVar(&o.otelcol, "otelcol", defaultOtelcol(), "OpenTelemetry Collector binary built by tools/backends/build.sh otelcol")
	fs.Int64Var(&o.spans, "spans", 1_000_000, "number of spans to send to each system")
	fs.IntVar(&o.spansPerRequest, "spans-per-request", 100, "spans in each export request the load generator sends")
	fs.IntVar(&o.clients, "clients", 4, "concurrent gRPC clients of the load generator")
	fs.StringVar(&o.otelcolQueue, "otelcol-queue", "memory", "the collector exporter's sending queue: memory (its default) or file (persistent, in file_storage, like outrider's)")
	fs.StringVar(&o.profile, "outrider-cpuprofile", "", "write a CPU profile of outrider under load (its pprof endpoint, from the first send) to this file; profiling costs the measured process a little CPU")
	fs.DurationVar(&o.profileTime, "profile-time", 5*time.Second, "how long -outrider-cpuprofile profiles")
	fs.StringVar(&o.workdir, "workdir", "", "working directory, kept afterwards (default: a temporary directory, removed afterwards)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long each system may take to deliver every span")
	fs.StringVar(&o.only, "only", "both", "which systems to run: outrider, otelcol or both")
	fs.Float64Var(&o.gates.minCPURatio, "min-cpu-ratio", 0, "fail unless outrider's spans per CPU-second is at least this multiple of the collector's (0: no check)")
	fs.Float64Var(&o.gates.maxRSSMiB, "max-rss-mb", 0, "fail if outrider's peak RSS exceeds this many MB of 2^20 bytes (0: no check)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	switch {
	case o.spans <= 0:
		return o, fmt.Errorf("%w: -spans must be positive, got %d", errUsage, o.spans)
	case o.spansPerRequest < resourcesPerRequest:
		return o, fmt.Errorf("%w: -spans-per-request must be at least %d (one per resource), got %d", errUsage, resourcesPerRequest, o.spansPerRequest)
	case o.clients <= 0:
		return o, fmt.Errorf("%w: -clients must be positive, got %d", errUsage, o.clients)
	case o.timeout <= 0:
		return o, fmt.Errorf("%w: -timeout must be positive, got %v", errUsage, o.timeout)
	case o.profile != "" && o.profileTime < time.Second:
		return o, fmt.Errorf("%w: -profile-time must be at least 1s, got %v", errUsage, o.profileTime)
	case o.profile != "" && o.only == otelcolName:
		return o, fmt.Errorf("%w: -outrider-cpuprofile profiles outrider, which -only otelcol leaves out", errUsage)
	case o.otelcolQueue != "memory" && o.otelcolQueue != "file":
		return o, fmt.Errorf("%w: -otelcol-queue must be memory or file, got %q", errUsage, o.otelcolQueue)
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
			hint := " (build it with `make build`)"
			if s.name == otelcolName {
				hint = " (build it with `make backends-bench` or tools/backends/build.sh otelcol)"
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
		fmt.Fprintln(stderr, "benchtraces:", err)
		return 2
	}
	results, err := bench(ctx, logger, o, stderr)
	if len(results) > 0 {
		if perr := printTable(stdout, results); perr != nil {
			fmt.Fprintln(stderr, "benchtraces: write the table:", perr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchtraces:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	code := 0
	for _, msg := range losses(results) {
		fmt.Fprintln(stderr, "benchtraces: FAIL:", msg)
		code = 1
	}
	for _, msg := range o.gates.check(results) {
		fmt.Fprintln(stderr, "benchtraces: FAIL:", msg)
		code = 1
	}
	return code
}

// bench sets up the workdir and the requests, then measures each system in turn.
func bench(ctx context.Context, logger *slog.Logger, o options, stderr io.Writer) ([]result, error) {
	systems, err := o.systems()
	if err != nil {
		return nil, err
	}
	workdir := o.workdir
	if workdir == "" {
		workdir, err = os.MkdirTemp("", "benchtraces-")
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
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return nil, fmt.Errorf("-outrider-cpuprofile: %w", err)
		}
	}

	began := time.Now()
	payloads, err := buildPayloads(1, distinctPayloads, o.spansPerRequest)
	if err != nil {
		return nil, err
	}
	var bytes int
	for _, p := range payloads {
		bytes += len(p.data)
	}
	logger.Info("requests built", "distinct", len(payloads), "spans_each", o.spansPerRequest,
		"avg_request_bytes", bytes/len(payloads), "avg_span_bytes", bytes/len(payloads)/o.spansPerRequest,
		"took", time.Since(began).Round(time.Millisecond))

	opts := runOptions{
		workdir:      workdir,
		spans:        o.spans,
		clients:      o.clients,
		payloads:     payloads,
		otelcolQueue: o.otelcolQueue,
		profile:      o.profile,
		profileTime:  o.profileTime,
		timeout:      o.timeout,
		ready:        time.Minute,
		poll:         5 * time.Millisecond,
		progress:     10 * time.Second,
		settle:       time.Second,
		stopGrace:    30 * time.Second,
		out:          stderr,
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
