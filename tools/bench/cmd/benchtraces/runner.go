package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

// result is one system's measurement.
type result struct {
	name string
	// want is the number of spans to send; sent how many the system accepted,
	// rejected how many it refused; delivered how many the sink counted.
	want, sent, rejected, delivered int64
	// complete is true when every accepted span arrived before the timeout.
	complete bool
	// wall runs from the first send to the arrival of the last span.
	wall time.Duration
	// cpu is the process's CPU time (utime+stime) spent between the first send and
	// the arrival of the last span; peakRSS its VmHWM then.
	cpu     time.Duration
	peakRSS int64
	// requests is how many requests the sink received (the system's batches);
	// retries how many sends the system refused with a retryable code.
	requests, retries int64
	// wrongAttrs counts spans that arrived with another attribute count than sent.
	wrongAttrs int64
	// problem explains an incomplete or failed run.
	problem string
}

func (r result) spansPerSecond() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.delivered) / r.wall.Seconds()
}

func (r result) spansPerCPUSecond() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return float64(r.delivered) / r.cpu.Seconds()
}

// lost is how many accepted spans did not reach the sink.
func (r result) lost() int64 { return max(r.sent-r.delivered, 0) }

// runOptions are the settings shared by every system's run.
type runOptions struct {
	workdir      string
	spans        int64
	clients      int
	payloads     []payload
	otelcolQueue string
	// profile, when set, is where outrider's CPU profile over profileTime goes.
	profile     string
	profileTime time.Duration
	timeout     time.Duration
	// ready bounds how long the system may take to accept connections.
	ready time.Duration
	// poll is how often completion is checked; progress how often it is logged.
	poll, progress time.Duration
	// settle is how long the sink keeps counting after completion, to catch
	// duplicates; the measurement is taken before.
	settle time.Duration
	// stopGrace is how long the system gets to exit after SIGTERM before SIGKILL.
	stopGrace time.Duration
	// out receives the tail of a failed system's output.
	out io.Writer
}

// measure runs one system between the load generator and a fresh counting sink until
// every accepted span arrived, the timeout passes, the process exits or ctx ends. An
// error means the run could not be set up; a run that did not deliver is reported in
// the result.
func measure(ctx context.Context, logger *slog.Logger, sys system, opts runOptions) (result, error) {
	res := result{name: sys.name, want: opts.spans}
	run := runSetup{dir: opts.workdir, data: filepath.Join(opts.workdir, sys.name+"-data"), otelcolQueue: opts.otelcolQueue}
	if err := os.RemoveAll(run.data); err != nil {
		return res, fmt.Errorf("clean %s: %w", run.data, err)
	}
	if err := os.MkdirAll(run.data, 0o755); err != nil {
		return res, fmt.Errorf("create %s: %w", run.data, err)
	}
	sink := newCountingSink(opts.spans, spanAttrs)
	if err := sink.Serve(); err != nil {
		return res, err
	}
	defer func() {
		if err := sink.Close(); err != nil {
			logger.Warn("counting sink did not stop cleanly", "system", sys.name, "error", err)
		}
	}()
	run.sinkAddr = sink.Addr()
	ports, err := backendtest.FreePorts(2)
	if err != nil {
		return res, fmt.Errorf("free ports: %w", err)
	}
	run.grpcPort, run.httpPort = ports[0], ports[1]
	profiling := opts.profile != "" && sys.name == outriderName
	if profiling {
		if run.pprofPort, err = backendtest.FreePort(); err != nil {
			return res, fmt.Errorf("free port: %w", err)
		}
	}
	args, err := sys.configure(run)
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
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s (%s): %w", sys.name, sys.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	endpoint := fmt.Sprintf("127.0.0.1:%d", run.grpcPort)

	exitedEarly := false
	defer func() {
		if !exitedEarly {
			stop(logger, sys.name, cmd, exited, opts.stopGrace)
		}
		if res.problem != "" {
			logger.Error("run did not go as planned", "system", sys.name, "problem", res.problem, "output", logPath)
			printTail(opts.out, sys.name, logPath, 30)
		}
	}()

	if err := waitListening(ctx, endpoint, opts.ready, exited); err != nil {
		exitedEarly = errors.Is(err, errExited)
		res.problem = fmt.Sprintf("%s did not start: %v", sys.name, err)
		return res, nil
	}
	before, err := procstat.Read(cmd.Process.Pid)
	if err != nil {
		res.problem = fmt.Sprintf("read the process's usage before the run: %v", err)
		return res, nil
	}

	self, _ := procstat.Read(os.Getpid())
	var st loadStats
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	var genErr error
	genDone := make(chan struct{})
	profDone := make(chan error, 1)
	if profiling {
		go func() { profDone <- fetchProfile(genCtx, run.pprofPort, opts.profileTime, opts.profile) }()
	}
	start := time.Now()
	go func() {
		defer close(genDone)
		genErr = generate(genCtx, loadConfig{
			endpoint: endpoint, spans: opts.spans, clients: opts.clients,
			payloads: opts.payloads, retryWait: 20 * time.Millisecond,
		}, &st)
	}()

	exitedEarly, res.problem = watch(ctx, logger, sys.name, opts, sink, &st, genDone, func() error { return genErr }, exited)
	c := sink.Counts()
	if res.problem == "" {
		if after, err := procstat.Read(cmd.Process.Pid); err != nil {
			res.problem = fmt.Sprintf("read the process's usage after the run: %v", err)
		} else {
			res.cpu, res.peakRSS = after.CPU-before.CPU, after.PeakRSS
		}
		done := c.Last
		if st.rejected.Load() == 0 && !c.Reached.IsZero() {
			done = c.Reached
		}
		res.wall = done.Sub(start)
		res.complete = res.problem == ""
		if selfAfter, err := procstat.Read(os.Getpid()); err == nil {
			logger.Info("delivered", "system", sys.name, "spans", c.Spans, "wall", res.wall.Round(time.Millisecond),
				"system_cpu", res.cpu, "load_generator_and_sink_cpu", selfAfter.CPU-self.CPU)
		}
	}
	if profiling {
		if err := <-profDone; err != nil {
			logger.Warn("no CPU profile", "system", sys.name, "error", err)
		} else {
			logger.Info("CPU profile written", "system", sys.name, "path", opts.profile, "duration", opts.profileTime)
		}
	}
	cancelGen()
	<-genDone
	if res.complete && opts.settle > 0 {
		time.Sleep(opts.settle) // duplicates that arrive late still count below
		c = sink.Counts()
	}
	res.sent, res.rejected, res.retries = st.sent.Load(), st.rejected.Load(), st.retries.Load()
	res.delivered, res.requests, res.wrongAttrs = c.Spans, c.Requests, c.WrongAttrs
	return res, nil
}

// fetchProfile saves a CPU profile of d from the pprof endpoint on 127.0.0.1:port.
func fetchProfile(ctx context.Context, port int, d time.Duration, path string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch the CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetch the CPU profile: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create the CPU profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("write the CPU profile: %w", err)
	}
	return f.Close()
}

// errExited reports that the system's process ended on its own.
var errExited = errors.New("the process exited")

// waitListening polls until addr accepts TCP connections.
func waitListening(ctx context.Context, addr string, timeout time.Duration, exited <-chan error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%w (%v) before listening on %s", errExited, err, addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("nothing listens on %s after %v", addr, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// watch waits until the generator finished and the sink counted every accepted span
// (problem "") or something ended the run (problem says what). genDone is closed when
// the generator returned, genErr then tells how; exited reports that the process
// exited and was reaped.
func watch(ctx context.Context, logger *slog.Logger, name string, opts runOptions, sink *countingSink, st *loadStats,
	genDone <-chan struct{}, genErr func() error, exitedCh <-chan error) (exited bool, problem string) {
	tick := time.NewTicker(opts.poll)
	defer tick.Stop()
	progress := time.NewTicker(opts.progress)
	defer progress.Stop()
	deadline := time.NewTimer(opts.timeout)
	defer deadline.Stop()
	sinkDone := sink.Done()
	generating := true
	arrived := func() bool { return !generating && sink.Counts().Spans >= st.sent.Load() }
	for {
		select {
		case err := <-exitedCh:
			return true, fmt.Sprintf("the process exited (%v) while it should run; %d of %d spans had arrived", err, sink.Counts().Spans, opts.spans)
		case <-deadline.C:
			return false, fmt.Sprintf("only %d of %d sent spans arrived within %v", sink.Counts().Spans, st.sent.Load(), opts.timeout)
		case <-ctx.Done():
			return false, fmt.Sprintf("interrupted after %d of %d spans arrived", sink.Counts().Spans, opts.spans)
		case <-genDone:
			generating, genDone = false, nil
			if err := genErr(); err != nil {
				return false, fmt.Sprintf("load generator: %v", err)
			}
			if arrived() {
				return false, ""
			}
		case <-sinkDone:
			sinkDone = nil
			if arrived() {
				return false, ""
			}
		case <-tick.C:
			if arrived() {
				return false, ""
			}
		case <-progress.C:
			c := sink.Counts()
			logger.Info("progress", "system", name, "sent", st.sent.Load(), "received", c.Spans, "of", opts.spans, "retries", st.retries.Load())
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
