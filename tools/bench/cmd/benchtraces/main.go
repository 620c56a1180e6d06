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
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
)

// unit is what benchtraces counts, as the table, the ratio line and the gates say.
const unit = "span"

// distinctPayloads is how many different requests the load generator cycles through.
const distinctPayloads = 64

type options struct {
	peer.Options
	spans           int64
	spansPerRequest int
	clients         int
	otelcolQueue    string
	profile         string
	profileTime     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := cli.FlagSet("benchtraces", stderr)
	o.Register(fs, unit)
	fs.Int64Var(&o.spans, "spans", 1_000_000, "number of spans to send to each system")
	fs.IntVar(&o.spansPerRequest, "spans-per-request", 100, "spans in each export request the load generator sends")
	fs.IntVar(&o.clients, "clients", 4, "concurrent gRPC clients of the load generator")
	fs.StringVar(&o.otelcolQueue, "otelcol-queue", "memory", "the collector exporter's sending queue: memory (its default) or file (persistent, in file_storage, like outrider's)")
	fs.StringVar(&o.profile, "outrider-cpuprofile", "", "write a CPU profile of outrider under load (its pprof endpoint, from the first send) to this file; profiling costs the measured process a little CPU")
	fs.DurationVar(&o.profileTime, "profile-time", 5*time.Second, "how long -outrider-cpuprofile profiles")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.spans <= 0:
		return o, cli.Usagef("-spans must be positive, got %d", o.spans)
	case o.spansPerRequest < resourcesPerRequest:
		return o, cli.Usagef("-spans-per-request must be at least %d (one per resource), got %d", resourcesPerRequest, o.spansPerRequest)
	case o.clients <= 0:
		return o, cli.Usagef("-clients must be positive, got %d", o.clients)
	case o.profile != "" && o.profileTime < time.Second:
		return o, cli.Usagef("-profile-time must be at least 1s, got %v", o.profileTime)
	case o.profile != "" && o.Only == peer.Otelcol:
		return o, cli.Usagef("-outrider-cpuprofile profiles outrider, which -only otelcol leaves out")
	case o.otelcolQueue != "memory" && o.otelcolQueue != "file":
		return o, cli.Usagef("-otelcol-queue must be memory or file, got %q", o.otelcolQueue)
	}
	return o, o.Validate()
}

// command is the whole program.
var command = cli.Command[options, result]{Name: "benchtraces", Parse: parseFlags, Bench: bench, Print: printTable, Check: check}

func main() { command.Main() }

// check fails every loss, rejection, duplicate or altered span, and the gates that
// do not hold.
func check(o options, results []result, v *cli.Verdict) {
	v.Fail(losses(results)...)
	v.Fail(o.Gates.Check(measure.FiguresOf(results), unit)...)
}

// bench sets up the workdir and the requests, then measures each system in turn.
func bench(ctx context.Context, logger *slog.Logger, o options, stderr io.Writer) ([]result, error) {
	systems, workdir, cleanup, err := peer.Prepare(o.Options, "benchtraces", outriderSystem, otelcolSystem)
	defer cleanup()
	if err != nil {
		return nil, err
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
		timeout:      o.Timeout,
		ready:        time.Minute,
		poll:         5 * time.Millisecond,
		progress:     10 * time.Second,
		settle:       time.Second,
		stopGrace:    30 * time.Second,
		out:          stderr,
	}
	return peer.Each(ctx, systems, o.Rounds, workdir, func(s system, round int, dir string) (result, error) {
		opts.workdir, opts.round = dir, round
		return measureSystem(ctx, logger, s, opts)
	})
}
