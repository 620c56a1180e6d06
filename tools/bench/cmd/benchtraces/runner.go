package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

// result is one system's measurement. Its Figures count spans: Complete is true
// when every accepted span arrived before the timeout, Wall runs from the first
// send to the arrival of the last span, CPU is the process's CPU time (utime+stime)
// spent in between and PeakRSS its VmHWM then.
type result struct {
	measure.Figures
	// want is the number of spans to send; sent how many the system accepted,
	// rejected how many it refused.
	want, sent, rejected int64
	// requests is how many requests the sink received (the system's batches);
	// retries how many sends the system refused with a retryable code.
	requests, retries int64
	// wrongAttrs counts spans that arrived with another attribute count than sent.
	wrongAttrs int64
	// problem explains an incomplete or failed run.
	problem string
	// load is the machine's load average (1, 5 and 15 minutes) when the run ended.
	load string
}

// lost is how many accepted spans did not reach the sink.
func (r result) lost() int64 { return max(r.sent-r.Delivered, 0) }

// runOptions are the settings shared by every system's run.
type runOptions struct {
	workdir      string
	round        int // the round of the run, 0 when there is one (peer.Each)
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

// measureSystem runs one system between the load generator and a fresh counting sink until
// every accepted span arrived, the timeout passes, the process exits or ctx ends. An
// error means the run could not be set up; a run that did not deliver is reported in
// the result.
func measureSystem(ctx context.Context, logger *slog.Logger, sys system, opts runOptions) (result, error) {
	res := result{Figures: measure.Figures{Name: sys.Name, Round: opts.round}, want: opts.spans}
	run := runSetup{dir: opts.workdir, data: filepath.Join(opts.workdir, sys.Name+"-data"), otelcolQueue: opts.otelcolQueue}
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
			logger.Warn("counting sink did not stop cleanly", "system", sys.Name, "error", err)
		}
	}()
	run.sinkAddr = sink.Addr()
	ports, err := backendtest.FreePorts(2)
	if err != nil {
		return res, fmt.Errorf("free ports: %w", err)
	}
	run.grpcPort, run.httpPort = ports[0], ports[1]
	profiling := opts.profile != "" && sys.Name == peer.Outrider
	if profiling {
		if run.pprofPort, err = backendtest.FreePort(); err != nil {
			return res, fmt.Errorf("free port: %w", err)
		}
	}
	p, err := sys.Start(logger, run, run.dir)
	if err != nil {
		return res, err
	}
	defer func() {
		p.Stop(opts.stopGrace)
		if res.problem != "" {
			p.ShowFailure(opts.out, res.problem)
		}
	}()
	endpoint := fmt.Sprintf("127.0.0.1:%d", run.grpcPort)
	if err := waitListening(ctx, endpoint, opts.ready, p); err != nil {
		res.problem = fmt.Sprintf("%s did not start: %v", sys.Name, err)
		return res, nil
	}
	before, err := p.Usage()
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

	res.problem = watch(ctx, logger, sys.Name, opts, sink, &st, genDone, func() error { return genErr }, p)
	res.load = procstat.LoadAverage()
	c := sink.Counts()
	if res.problem == "" {
		if after, err := p.Usage(); err != nil {
			res.problem = fmt.Sprintf("read the process's usage after the run: %v", err)
		} else {
			res.CPU, res.PeakRSS = after.CPU-before.CPU, after.PeakRSS
		}
		done := c.Last
		if st.rejected.Load() == 0 && !c.Reached.IsZero() {
			done = c.Reached
		}
		res.Wall = done.Sub(start)
		res.Complete = res.problem == ""
		if selfAfter, err := procstat.Read(os.Getpid()); err == nil {
			logger.Info("delivered", "system", sys.Name, "spans", c.Spans, "wall", res.Wall.Round(time.Millisecond),
				"system_cpu", res.CPU, "load_generator_and_sink_cpu", selfAfter.CPU-self.CPU)
		}
	}
	if profiling {
		if err := <-profDone; err != nil {
			logger.Warn("no CPU profile", "system", sys.Name, "error", err)
		} else {
			logger.Info("CPU profile written", "system", sys.Name, "path", opts.profile, "duration", opts.profileTime)
		}
	}
	cancelGen()
	<-genDone
	if res.Complete && opts.settle > 0 {
		time.Sleep(opts.settle) // duplicates that arrive late still count below
		c = sink.Counts()
	}
	res.sent, res.rejected, res.retries = st.sent.Load(), st.rejected.Load(), st.retries.Load()
	res.Delivered, res.requests, res.wrongAttrs = c.Spans, c.Requests, c.WrongAttrs
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

// waitListening polls until addr accepts TCP connections.
func waitListening(ctx context.Context, addr string, timeout time.Duration, p *measure.Process) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("the process exited (%v) before listening on %s", p.Err(), addr)
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
// the generator returned, genErr then tells how; the run also ends when the process
// p exits.
func watch(ctx context.Context, logger *slog.Logger, name string, opts runOptions, sink *countingSink, st *loadStats,
	genDone <-chan struct{}, genErr func() error, p *measure.Process) (problem string) {
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
		case <-p.Done():
			return fmt.Sprintf("the process exited (%v) while it should run; %d of %d spans had arrived", p.Err(), sink.Counts().Spans, opts.spans)
		case <-deadline.C:
			return fmt.Sprintf("only %d of %d sent spans arrived within %v", sink.Counts().Spans, st.sent.Load(), opts.timeout)
		case <-ctx.Done():
			return fmt.Sprintf("interrupted after %d of %d spans arrived", sink.Counts().Spans, opts.spans)
		case <-genDone:
			generating, genDone = false, nil
			if err := genErr(); err != nil {
				return fmt.Sprintf("load generator: %v", err)
			}
			if arrived() {
				return ""
			}
		case <-sinkDone:
			sinkDone = nil
			if arrived() {
				return ""
			}
		case <-tick.C:
			if arrived() {
				return ""
			}
		case <-progress.C:
			c := sink.Counts()
			logger.Info("progress", "system", name, "sent", st.sent.Load(), "received", c.Spans, "of", opts.spans, "retries", st.retries.Load())
		}
	}
}
