package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
	"github.com/outrider-dev/outrider/tools/bench/internal/sink"
)

// result is one system's measurement.
type result struct {
	name string
	// want is the number of lines in the input; delivered how many the sink counted.
	want, delivered int64
	withTraceID     int64
	// complete is true when every line arrived before the timeout.
	complete bool
	// wall runs from starting the process to the arrival of its last line.
	wall time.Duration
	// cpu and peakRSS are the process's own, read while it was still running.
	cpu     time.Duration
	peakRSS int64
	// requests and wireBytes are what the sink accepted; rejected what it refused.
	requests, wireBytes, rejected int64
	// problem explains an incomplete or failed run.
	problem string
}

func (r result) linesPerSecond() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.delivered) / r.wall.Seconds()
}

func (r result) linesPerCPUSecond() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return float64(r.delivered) / r.cpu.Seconds()
}

// runOptions are the settings shared by every system's run.
type runOptions struct {
	workdir string
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
func prepareInput(run runDirs, input string) error {
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

// measure runs one system against a fresh counting sink until the sink has counted
// every input line, the timeout passes, the process exits, or ctx ends. The CPU
// time and peak RSS are read from /proc before the process is stopped. An error
// means the run could not be set up; a run that did not deliver is reported in the
// result.
func measure(ctx context.Context, logger *slog.Logger, sys system, opts runOptions) (result, error) {
	res := result{name: sys.name, want: opts.lines}
	run := newRunDirs(opts.workdir, sys.name)
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
			logger.Warn("counting sink did not stop cleanly", "system", sys.name, "error", err)
		}
	}()

	args, err := sys.configure(run, s.URL())
	if err != nil {
		return res, err
	}
	logPath := filepath.Join(run.dir, sys.name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, fmt.Errorf("create %s output file: %w", sys.name, err)
	}
	defer logFile.Close()

	cmd := exec.Command(sys.bin, args...)
	cmd.Dir = run.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	killWithParent(cmd)
	logger.Info("starting", "system", sys.name, "command", cmd.String())
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s (%s): %w", sys.name, sys.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	exitedEarly, problem := watch(ctx, logger, s, sys.name, opts, exited)
	c := s.Counts()
	res.delivered, res.withTraceID = c.Entries, c.WithTraceID
	res.requests, res.wireBytes, res.rejected = c.Requests, c.WireBytes, c.Rejected
	if !c.Last.IsZero() {
		res.wall = c.Last.Sub(start)
	}
	res.complete = c.Entries >= opts.lines
	res.problem = problem
	if problem != "" && c.Rejected > 0 {
		res.problem += fmt.Sprintf("; the sink rejected %d requests, last: %s", c.Rejected, c.LastError)
	}

	measured := false
	if !exitedEarly {
		if u, err := procstat.Read(cmd.Process.Pid); err != nil {
			logger.Warn("cannot read the process's usage from /proc; using its rusage after exit", "system", sys.name, "error", err)
		} else {
			res.cpu, res.peakRSS, measured = u.CPU, u.PeakRSS, true
		}
		stop(logger, sys.name, cmd, exited, opts.stopGrace)
	}
	if !measured {
		// Gone already: /proc has nothing left, but the kernel's rusage does (it
		// includes the shutdown's work).
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			res.peakRSS = ru.Maxrss * 1024
		}
	}
	if res.problem != "" {
		logger.Error("run did not go as planned", "system", sys.name, "problem", res.problem, "output", logPath)
		printTail(opts.out, sys.name, logPath, 30)
	}
	return res, nil
}

// watch polls the sink until every line arrived (problem "") or something ended
// the run (problem says what). exited reports that the process has exited and been
// reaped. It logs progress now and then.
func watch(ctx context.Context, logger *slog.Logger, s *sink.Sink, name string, opts runOptions, exitedCh <-chan error) (exited bool, problem string) {
	tick := time.NewTicker(opts.poll)
	defer tick.Stop()
	progress := time.NewTicker(opts.progress)
	defer progress.Stop()
	deadline := time.NewTimer(opts.timeout)
	defer deadline.Stop()
	for {
		select {
		case err := <-exitedCh:
			c := s.Counts()
			return true, fmt.Sprintf("the process exited (%v) while it should run; %d of %d lines had arrived", err, c.Entries, opts.lines)
		case <-deadline.C:
			c := s.Counts()
			return false, fmt.Sprintf("only %d of %d lines arrived within %v", c.Entries, opts.lines, opts.timeout)
		case <-ctx.Done():
			c := s.Counts()
			return false, fmt.Sprintf("interrupted after %d of %d lines arrived", c.Entries, opts.lines)
		case <-progress.C:
			c := s.Counts()
			logger.Info("progress", "system", name, "lines", c.Entries, "of", opts.lines, "requests", c.Requests, "rejected", c.Rejected)
		case <-tick.C:
			if s.Counts().Entries >= opts.lines {
				return false, ""
			}
		}
	}
}

// stop sends SIGTERM, waits up to grace for the process to exit, then kills it.
func stop(logger *slog.Logger, name string, cmd *exec.Cmd, exited <-chan error, grace time.Duration) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		logger.Warn("cannot signal the process", "system", name, "error", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			logger.Warn("waiting for the process failed", "system", name, "error", err)
		}
	case <-t.C:
		logger.Warn("process ignored SIGTERM; killing it", "system", name, "grace", grace)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// printTail copies the last n lines of a system's output to w, to show why it failed.
func printTail(w io.Writer, name, path string, n int) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte{'\n'})
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(w, "--- last %d lines of %s output (%s) ---\n", len(lines), name, path)
	for _, l := range lines {
		fmt.Fprintf(w, "%s\n", l)
	}
	fmt.Fprintf(w, "--- end of %s output ---\n", name)
}
