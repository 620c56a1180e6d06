package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/parse"
	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/sources/tail"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

// runSpec is one measured run: the pipeline with a number of registered secrets.
type runSpec struct {
	name  string
	round int
	// values are registered with the redact registry; none for the baseline.
	values []string
}

// result is one run's measurement.
type result struct {
	runSpec
	patterns int
	// want is the number of input lines, withSecret how many of them carry a
	// secret.
	want, withSecret int64
	counts           childCounts
	// complete is true when every line arrived before the timeout.
	complete bool
	// wall runs from starting the source to the arrival of the last line; cpu is
	// this process's CPU time over the same span, read when the last line had
	// arrived.
	wall, cpu time.Duration
	// scrub is the CPU time spent in redact.Sink itself (without the exporter
	// behind it): the cost of scrubbing measured inside the run, unaffected by
	// other processes taking the CPU away.
	scrub   time.Duration
	problem string
	// load is the machine's load average (1, 5, 15 minutes) when the run ended.
	load string
}

// scrubShare is scrub in percent of cpu.
func (r result) scrubShare() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return 100 * r.scrub.Seconds() / r.cpu.Seconds()
}

// timedSink adds up the CPU time its Export calls take: the calling goroutine is
// locked to its OS thread for the call, so the thread's CPU clock counts that
// goroutine's work alone, and not the time the thread waited or was preempted.
type timedSink struct {
	next pipeline.Sink
	ns   atomic.Int64
}

func (t *timedSink) Export(ctx context.Context, b pipeline.Batch) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	err := t.next.Export(ctx, b)
	t.ns.Add(int64(threadCPU() - start))
	return err
}

// scrubPerLine is the CPU time spent in the redact sink per line delivered.
func (r result) scrubPerLine() time.Duration {
	if r.counts.Entries <= 0 {
		return 0
	}
	return r.scrub / time.Duration(r.counts.Entries)
}

// figures are the run's figures as the shared table code takes them.
func (r result) figures() measure.Figures {
	return measure.Figures{Name: r.name, Complete: r.complete, Delivered: r.counts.Entries, Wall: r.wall, CPU: r.cpu}
}

func (r result) linesPerSecond() float64 { return r.figures().PerSecond() }

func (r result) linesPerCPUSecond() float64 { return r.figures().PerCPUSecond() }

// runEnv is what every run shares.
type runEnv struct {
	input string
	// lines is the number of input lines, withSecret how many of them carry a
	// secret.
	lines, withSecret int64
	sink              childConfig
	timeout           time.Duration
	poll              time.Duration
	logger            *slog.Logger
	stderr            io.Writer
}

// measureRun builds the pipeline file → tail → redact → loki → sink process, runs it
// until the sink has every line, and stops it.
func measureRun(ctx context.Context, env runEnv, spec runSpec) (result, error) {
	res := result{runSpec: spec, want: env.lines, withSecret: env.withSecret}
	child, err := startChild(env.sink, env.stderr)
	if err != nil {
		return res, err
	}
	defer func() {
		if err := child.stop(); err != nil {
			env.logger.Warn("sink process", "error", err)
		}
	}()

	discard := slog.New(slog.DiscardHandler)
	exp, err := lokiexporter.New(lokiexporter.Config{URL: child.url}, lokiexporter.Settings{Logger: discard, Name: "bench"})
	if err != nil {
		return res, fmt.Errorf("build the loki exporter: %w", err)
	}
	reg := redact.NewRegistry(nil)
	reg.Set("bench", spec.values)
	res.patterns = reg.Len()
	// CPU time spent in the redact sink minus that spent in the exporter it calls.
	toExporter := &timedSink{next: exp}
	toRedact := &timedSink{next: redact.NewSink(toExporter, reg)}
	src, err := tail.New(tail.Config{
		Name:   "bench",
		Path:   env.input,
		Parser: parse.Config{Format: "json"},
	}, tail.Settings{
		Logger:       discard,
		Sink:         toRedact,
		StreamLabels: map[string]string{"service": "bench", "namespace": "bench", "pod": "bench-0", "container": "app"},
	})
	if err != nil {
		return res, fmt.Errorf("build the file source: %w", err)
	}
	if err := exp.Start(ctx); err != nil {
		return res, fmt.Errorf("start the loki exporter: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := exp.Shutdown(sctx); err != nil {
			env.logger.Warn("loki exporter shutdown", "error", err)
		}
	}()

	// Leave the previous run's garbage out of this run's CPU time.
	runtime.GC()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cpu0, err := processCPU()
	if err != nil {
		return res, err
	}
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx) }()

	deadline := time.NewTimer(env.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(env.poll)
	defer tick.Stop()
	for !res.complete && res.problem == "" {
		select {
		case <-ctx.Done():
			res.problem = "interrupted"
		case <-deadline.C:
			res.problem = fmt.Sprintf("timed out after %s", env.timeout)
		case err := <-done:
			res.problem = fmt.Sprintf("the file source stopped early: %v", err)
			done <- err
		case <-tick.C:
			c, err := child.counts()
			if err != nil {
				res.problem = err.Error()
				break
			}
			res.counts = c
			if c.Entries >= env.lines {
				cpu1, err := processCPU()
				if err != nil {
					return res, err
				}
				res.cpu = cpu1 - cpu0
				res.scrub = time.Duration(toRedact.ns.Load() - toExporter.ns.Load())
				res.wall = time.Unix(0, c.LastUnixNano).Sub(began)
				res.complete = true
			}
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		env.logger.Warn("file source", "error", err)
	}
	// Final counts: the leak checks of the last pushes.
	if c, err := child.counts(); err == nil {
		res.counts = c
	}
	res.load = procstat.LoadAverage()
	return res, nil
}
