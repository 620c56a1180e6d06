package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
	"github.com/outrider-dev/outrider/tools/bench/internal/sink"
)

// result is one system's measurement. Its Figures count lines: Complete is true
// when every line arrived before the timeout, Wall runs from starting the process
// to the arrival of its last line, and CPU and PeakRSS are the process's own, read
// while it was still running.
type result struct {
	measure.Figures
	// want is the number of lines in the input.
	want        int64
	withTraceID int64
	// requests and wireBytes are what the sink accepted; rejected what it refused.
	requests, wireBytes, rejected int64
	// problem explains an incomplete or failed run.
	problem string
	// load is the machine's load average (1, 5 and 15 minutes) when the run ended.
	load string
}

// runOptions are the settings shared by every system's run.
type runOptions struct {
	workdir string
	// round is the round of the run, 0 when there is one (peer.Each).
	round   int
	input   string
	lines   int64
	timeout time.Duration
	// poll is how often the sink's count is checked.
	poll time.Duration
	// progress is how often a progress line is logged.
	progress time.Duration
	// stopGrace is how long the system gets to exit after SIGTERM before SIGKILL.
	stopGrace time.Duration
	// out receives the tail of a failed system's output.
	out io.Writer
}

// prepareInput gives the system a fresh watched directory holding the input file
// (a hard link, or a copy across file systems) and an empty state directory.
func prepareInput(run runSetup, input string) error {
	for _, d := range []string{run.in, run.data} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clean %s: %w", d, err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	dst := filepath.Join(run.in, "app.log")
	if err := os.Link(input, dst); err == nil {
		return nil
	}
	return copyFile(input, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy benchmark input: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy benchmark input: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy benchmark input to %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("copy benchmark input to %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy benchmark input to %s: %w", dst, err)
	}
	return nil
}

// measureSystem runs one system against a fresh counting sink until the sink has
// counted every input line, the timeout passes, the process exits, or ctx ends.
// The CPU time and peak RSS are read from /proc before the process is stopped. An
// error means the run could not be set up; a run that did not deliver is reported
// in the result.
func measureSystem(ctx context.Context, logger *slog.Logger, sys system, opts runOptions) (result, error) {
	res := result{Figures: measure.Figures{Name: sys.Name, Round: opts.round}, want: opts.lines}
	run := newRunSetup(opts.workdir, sys.Name)
	if err := prepareInput(run, opts.input); err != nil {
		return res, err
	}

	s, err := sink.Start(logger)
	if err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			logger.Warn("counting sink did not stop cleanly", "system", sys.Name, "error", err)
		}
	}()
	run.sinkURL = s.URL()

	p, err := sys.Start(logger, run, run.dir)
	if err != nil {
		return res, err
	}
	defer p.Stop(opts.stopGrace)

	problem := watch(ctx, logger, s, sys.Name, opts, p)
	res.load = procstat.LoadAverage()
	c := s.Counts()
	res.Delivered, res.withTraceID = c.Entries, c.WithTraceID
	res.requests, res.wireBytes, res.rejected = c.Requests, c.WireBytes, c.Rejected
	if !c.Last.IsZero() {
		res.Wall = c.Last.Sub(p.Started())
	}
	res.Complete = c.Entries >= opts.lines
	res.problem = problem
	if problem != "" && c.Rejected > 0 {
		res.problem += fmt.Sprintf("; the sink rejected %d requests, last: %s", c.Rejected, c.LastError)
	}

	measured := false
	if !p.Exited() {
		if u, err := p.Usage(); err != nil {
			logger.Warn("cannot read the process's usage from /proc; using its rusage after exit", "system", sys.Name, "error", err)
		} else {
			res.CPU, res.PeakRSS, measured = u.CPU, u.PeakRSS, true
		}
		p.Stop(opts.stopGrace)
	}
	if !measured {
		// Gone already: /proc has nothing left, but the kernel's rusage does (it
		// includes the shutdown's work).
		if cpu, peakRSS, ok := p.ExitUsage(); ok {
			res.CPU, res.PeakRSS = cpu, peakRSS
		}
	}
	if res.problem != "" {
		p.ShowFailure(opts.out, res.problem)
	}
	return res, nil
}

// watch polls the sink until every line arrived (problem "") or something ended
// the run (problem says what): the timeout, ctx, or the process p exiting. It logs
// progress now and then.
func watch(ctx context.Context, logger *slog.Logger, s *sink.Sink, name string, opts runOptions, p *measure.Process) (problem string) {
	tick := time.NewTicker(opts.poll)
	defer tick.Stop()
	progress := time.NewTicker(opts.progress)
	defer progress.Stop()
	deadline := time.NewTimer(opts.timeout)
	defer deadline.Stop()
	for {
		select {
		case <-p.Done():
			c := s.Counts()
			return fmt.Sprintf("the process exited (%v) while it should run; %d of %d lines had arrived", p.Err(), c.Entries, opts.lines)
		case <-deadline.C:
			c := s.Counts()
			return fmt.Sprintf("only %d of %d lines arrived within %v", c.Entries, opts.lines, opts.timeout)
		case <-ctx.Done():
			c := s.Counts()
			return fmt.Sprintf("interrupted after %d of %d lines arrived", c.Entries, opts.lines)
		case <-progress.C:
			c := s.Counts()
			logger.Info("progress", "system", name, "lines", c.Entries, "of", opts.lines, "requests", c.Requests, "rejected", c.Rejected)
		case <-tick.C:
			if s.Counts().Entries >= opts.lines {
				return ""
			}
		}
	}
}
