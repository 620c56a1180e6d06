// Package agent is outrider's runtime: it builds the pipeline graph from the
// configuration, starts exporters before sources and stops sources before exporters,
// serves /metrics, /healthz and /readyz, and replaces the graph when the configuration
// file changes or a reload is requested. An invalid new configuration is rejected with a
// log line and the running graph keeps working.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/agent/errorevents"
	"github.com/outrider-dev/outrider/agent/redact"
	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/secrets"
)

// Options configures an Agent.
type Options struct {
	// ConfigPath is the configuration file; it is watched for changes.
	ConfigPath string
	// Config is the configuration already loaded from ConfigPath.
	Config *config.Config
	// Logger is the agent's own logger; LogLevel, when set, follows log.level on reload.
	Logger   *slog.Logger
	LogLevel *slog.LevelVar
	// Version is reported in outrider_build_info.
	Version string
	// Reload asks for a configuration reload (the command sends SIGHUP here).
	Reload <-chan struct{}
	// OnListen, when set, is called with the address of the metrics/health server.
	OnListen func(addr string)
}

// Agent runs one outrider process.
type Agent struct {
	opts    Options
	logger  *slog.Logger
	metrics *metrics
	// in is the running intake (receivers and queues); only Run's goroutine uses it.
	in *intake
	// current is in for other goroutines (log sinks deriving error events).
	current atomic.Pointer[intake]
	// scrub holds the live secret values; it outlives graphs and syncers so that
	// redaction never lapses during a reload.
	scrub *redact.Registry
	audit *auditLog

	running atomic.Bool
	syncer  atomic.Pointer[syncerRun]
	// rendered is set once every secret file has been rendered: files then exist, so
	// the agent stays ready while a reload replaces the syncer or Vault is away.
	rendered atomic.Bool
	// retired are replaced syncers' values, still scrubbed for a while; owned by Run.
	retired []retiredOwners
}

// New returns an Agent for opts.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = discard()
	}
	m := newMetrics(opts.Version)
	a := &Agent{opts: opts, logger: opts.Logger, metrics: m, scrub: redact.NewRegistry(m.redact)}
	a.audit = newAuditLog(opts.Logger, nil, m.auditDropped)
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outrider_ready",
		Help: "1 when the agent is ready: its pipeline runs and every secret file has been rendered once.",
	}, func() float64 {
		if a.ready() {
			return 1
		}
		return 0
	}))
	return a
}

// ready reports whether the pipeline runs and, when secrets are configured, every
// secret file has been rendered once — the startup probe that holds the application
// back until its secrets exist. Once rendered, the agent stays ready: the files are
// there even while Vault is unreachable.
func (a *Agent) ready() bool {
	if !a.running.Load() {
		return false
	}
	if a.rendered.Load() {
		return true
	}
	sr := a.syncer.Load()
	if sr == nil || sr.s.Ready() {
		a.rendered.Store(sr != nil)
		return true
	}
	return false
}

// syncerRun is a running secrets.Syncer. It is kept across config reloads that do not
// change the secrets section, so that reloading, say, a log source never fetches new
// credentials or reloads the application.
type syncerRun struct {
	cfg    secrets.Config
	s      *secrets.Syncer
	owners *syncerOwners // its values in the redaction registry
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// newSyncer builds a syncer for cfg without starting it (nil when no files are
// configured), so that a reload can reject an unbuildable secrets section while the
// running syncer keeps the files fresh.
func (a *Agent) newSyncer(cfg secrets.Config, dataDir string) (*syncerRun, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	owners := newSyncerOwners(a.scrub)
	s, err := secrets.New(cfg, secrets.Settings{
		Logger:    a.logger.With("component", "secrets"),
		Audit:     a.audit,
		Redact:    owners,
		Metrics:   a.metrics.secrets,
		StateFile: secrets.StateFile(dataDir),
	})
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return &syncerRun{cfg: cfg, s: s, owners: owners, done: make(chan struct{})}, nil
}

// start runs the syncer until stop.
func (r *syncerRun) start() {
	if r == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = r.s.Run(ctx)
	}()
}

// firstRenderWait bounds how long log collection waits for the first render of the
// secret files at start.
const firstRenderWait = 30 * time.Second

// waitFirstRender holds the start of log collection until every secret file has been
// rendered once (so their values are registered for scrubbing), at most
// firstRenderWait; after that it starts anyway with a warning, since the logs are
// needed to find out why. It returns ctx's error if ctx ends first.
func (a *Agent) waitFirstRender(ctx context.Context, sr *syncerRun) error {
	if sr == nil {
		return nil
	}
	deadline := time.NewTimer(firstRenderWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !sr.s.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sr.done:
			return fmt.Errorf("secrets syncer stopped before the first render: %v", sr.err)
		case <-deadline.C:
			a.logger.Warn("secret files not rendered yet; starting log collection anyway, and lines may carry secret values the agent has not learned yet", "waited", firstRenderWait.String())
			return nil
		case <-tick.C:
		}
	}
	return nil
}

// retiredOwnersKeep is how long the values of a replaced syncer stay registered for
// scrubbing: the application may still use them until it reloads.
const retiredOwnersKeep = 10 * time.Minute

// retireOwners releases a replaced syncer's registered values after
// retiredOwnersKeep, or when the agent stops.
func (a *Agent) retireOwners(r *syncerRun) {
	if r == nil {
		return
	}
	a.retired = append(a.retired, retiredOwners{owners: r.owners, until: time.Now().Add(retiredOwnersKeep)})
}

// releaseRetired releases the retired values whose time is up.
func (a *Agent) releaseRetired(now time.Time) {
	kept := a.retired[:0]
	for _, r := range a.retired {
		if now.Before(r.until) {
			kept = append(kept, r)
			continue
		}
		r.owners.release()
	}
	a.retired = kept
}

type retiredOwners struct {
	owners *syncerOwners
	until  time.Time
}

// stop stops the syncer and returns the error it failed with, if any.
func (r *syncerRun) stop() error {
	if r == nil {
		return nil
	}
	r.cancel()
	<-r.done
	return r.err
}

// doneC is closed when the syncer stopped on its own (nil channel when none runs).
func (r *syncerRun) doneC() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.done
}

// Run runs the agent until ctx is done, then drains and stops within
// server.shutdown_timeout. It returns an error if the agent cannot start or a
// component fails.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.opts.Config
	srv, err := newServer(cfg.Server.Listen, cfg.Server.Pprof, a.metrics, a.ready, a.logger)
	if err != nil {
		return err
	}
	if a.opts.OnListen != nil {
		a.opts.OnListen(srv.Addr())
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.run() }()
	defer srv.shutdown()

	applyRuntime(cfg.Runtime)
	a.audit.setIdentity(cfg.Identity.Labels(), cfg.Identity.ResourceAttributes())
	auditCtx, stopAudit := context.WithCancel(context.Background())
	auditDone := make(chan struct{})
	go func() { defer close(auditDone); a.audit.run(auditCtx) }()
	defer func() { stopAudit(); <-auditDone }()

	g, err := buildGraph(cfg, a.metrics, a.scrub, a.logger, a.errorTarget)
	if err != nil {
		return err
	}
	sr, err := a.newSyncer(cfg.Secrets, cfg.DataDir)
	if err != nil {
		return err
	}
	// The secrets come first: until the first render the redaction knows no value,
	// and a log backlog read now (after a restart) could be exported unscrubbed.
	sr.start()
	a.syncer.Store(sr)
	if err := a.waitFirstRender(ctx, sr); err != nil {
		_ = a.syncer.Swap(nil).stop()
		return err
	}
	in, err := openIntake(cfg, a.metrics, a.scrub, a.logger)
	if err != nil {
		_ = a.syncer.Swap(nil).stop()
		return err
	}
	if err := g.start(ctx, a.logger, in); err != nil {
		_ = in.closeQueues()
		_ = a.syncer.Swap(nil).stop()
		return err
	}
	if err := in.start(ctx); err != nil {
		_ = g.stop(a.logger)
		_ = in.closeQueues()
		_ = a.syncer.Swap(nil).stop()
		return err
	}
	a.setIntake(in)
	a.audit.setSink(g.logSink, g.traceSink)
	a.running.Store(true)
	a.logger.Info("agent started", "listen", srv.Addr(), "sources", len(g.sources), "exporters", len(g.exporters), "secret_files", len(cfg.Secrets.Files))

	changes, stopWatch := a.watchConfig()
	defer stopWatch()
	housekeeping := time.NewTicker(time.Minute)
	defer housekeeping.Stop()
	lastData, _ := os.ReadFile(a.opts.ConfigPath)
	sourcesDone := g.sourcesDone()

	stopAll := func() error {
		a.running.Store(false)
		ierr := a.stopReceiving(g.cfg)
		serr := a.syncer.Swap(nil).stop()
		gerr := g.stop(a.logger)
		a.audit.setSink(nil, nil)
		return errors.Join(ierr, serr, gerr, a.in.closeQueues())
	}
	for {
		select {
		case <-ctx.Done():
			a.logger.Info("stopping: draining in-flight data", "timeout", g.cfg.Server.ShutdownTimeout.String())
			err := stopAll()
			a.logger.Info("agent stopped")
			return err
		case err := <-srvErr:
			_ = stopAll()
			return err
		case <-sourcesDone:
			// Sources return on their own only when they fail; a graph without
			// sources has nothing to watch.
			if err := g.sourceErr(); err != nil {
				_ = stopAll()
				return err
			}
			sourcesDone = nil
		case <-a.syncer.Load().doneC():
			err := a.syncer.Load().err
			_ = stopAll()
			if err == nil {
				err = errors.New("secrets syncer stopped unexpectedly")
			}
			return err
		case now := <-housekeeping.C:
			a.releaseRetired(now)
		case <-a.opts.Reload:
			g = a.reload(ctx, g, nil)
			sourcesDone = g.sourcesDone()
		case <-changes:
			data, err := os.ReadFile(a.opts.ConfigPath)
			if err != nil || bytes.Equal(data, lastData) {
				continue
			}
			lastData = data
			g = a.reload(ctx, g, data)
			sourcesDone = g.sourcesDone()
		}
	}
}

// reload loads the configuration again and, when it is valid and different, replaces
// the running graph (and the syncer, if the secrets section changed). It returns the
// graph that runs afterwards.
func (a *Agent) reload(ctx context.Context, old *graph, data []byte) *graph {
	var (
		cfg *config.Config
		err error
	)
	if data != nil {
		cfg, err = config.Parse(a.opts.ConfigPath, data)
	} else {
		cfg, err = config.Load(a.opts.ConfigPath)
	}
	if err != nil {
		a.metrics.reloads.WithLabelValues("rejected").Inc()
		a.logger.Error("config reload rejected; the running configuration stays in effect", "path", a.opts.ConfigPath, "error", err)
		return old
	}
	if reflect.DeepEqual(cfg, old.cfg) {
		return old
	}
	if cfg.Server.Listen != old.cfg.Server.Listen {
		a.logger.Warn("server.listen changed; it takes effect at the next restart", "listen", old.cfg.Server.Listen)
	}
	next, err := buildGraph(cfg, a.metrics, a.scrub, a.logger, a.errorTarget)
	if err != nil {
		a.metrics.reloads.WithLabelValues("rejected").Inc()
		a.logger.Error("config reload rejected; the running configuration stays in effect", "path", a.opts.ConfigPath, "error", err)
		return old
	}
	secretsChanged := !reflect.DeepEqual(cfg.Secrets, old.cfg.Secrets)
	var nextSyncer *syncerRun
	if secretsChanged {
		if nextSyncer, err = a.newSyncer(cfg.Secrets, cfg.DataDir); err != nil {
			a.metrics.reloads.WithLabelValues("rejected").Inc()
			a.logger.Error("config reload rejected; the running configuration stays in effect", "path", a.opts.ConfigPath, "error", err)
			return old
		}
	}
	// Readiness stays as it is while the graph is swapped: the secret files are there
	// and the new pipeline resumes from the saved positions.
	newIntake := intakeChanged(old.cfg, cfg)
	if newIntake {
		if err := a.stopReceiving(old.cfg); err != nil {
			a.logger.Warn("otlp receiver did not stop cleanly", "error", err)
		}
	}
	if err := old.stop(a.logger); err != nil {
		a.logger.Warn("old pipeline did not stop cleanly", "error", err)
	}
	a.audit.setSink(nil, nil)
	if newIntake {
		a.replaceIntake(ctx, old.cfg, cfg)
	}
	if err := next.start(ctx, a.logger, a.in); err != nil {
		a.logger.Error("new pipeline failed to start; restarting the previous one", "error", err)
		a.metrics.reloads.WithLabelValues("rejected").Inc()
		prev, berr := buildGraph(old.cfg, a.metrics, a.scrub, a.logger, a.errorTarget)
		if berr == nil {
			berr = prev.start(ctx, a.logger, a.in)
		}
		if berr != nil {
			a.running.Store(false)
			a.logger.Error("previous pipeline failed to restart", "error", berr)
			return prev
		}
		a.audit.setSink(prev.logSink, prev.traceSink)
		return prev
	}
	a.audit.setSink(next.logSink, next.traceSink)
	a.audit.setIdentity(cfg.Identity.Labels(), cfg.Identity.ResourceAttributes())
	if secretsChanged {
		prev := a.syncer.Swap(nil)
		if err := prev.stop(); err != nil {
			a.logger.Warn("previous secrets syncer stopped with an error", "error", err)
		}
		nextSyncer.start()
		a.syncer.Store(nextSyncer)
		// The application may use the previous syncer's values until it reloads with
		// the new files: keep them scrubbed for a while.
		a.retireOwners(prev)
	}
	if a.opts.LogLevel != nil {
		a.opts.LogLevel.Set(LevelOf(cfg.Log.Level))
	}
	applyRuntime(cfg.Runtime)
	a.metrics.reloads.WithLabelValues("success").Inc()
	a.logger.Info("config reloaded", "path", a.opts.ConfigPath, "sources", len(next.sources), "secrets_reloaded", secretsChanged)
	return next
}

// setIntake makes in the running intake.
func (a *Agent) setIntake(in *intake) {
	a.in = in
	a.current.Store(in)
}

// errorTarget returns where error events go now; see intake.errorTarget.
func (a *Agent) errorTarget() (*errorevents.Builder, errorevents.Appender) {
	return a.current.Load().errorTarget()
}

// stopReceiving closes the OTLP listeners within cfg's shutdown timeout.
func (a *Agent) stopReceiving(cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	return a.in.stopReceiving(ctx)
}

// replaceIntake closes the queues of the running intake (its receiver is stopped and
// no graph reads them) and opens and starts the one cfg asks for. When that fails, it
// restores the previous one, so a bad reload never leaves the agent without its
// receiver.
func (a *Agent) replaceIntake(ctx context.Context, prevCfg, cfg *config.Config) {
	if err := a.in.closeQueues(); err != nil {
		a.logger.Warn("closing the queues", "error", err)
	}
	a.setIntake(nil)
	in, err := openIntake(cfg, a.metrics, a.scrub, a.logger)
	if err == nil {
		if err = in.start(ctx); err != nil {
			_ = in.closeQueues()
		}
	}
	if err == nil {
		a.setIntake(in)
		return
	}
	a.logger.Error("the new otlp receiver or queue failed to start; keeping the previous one", "error", err)
	if in, err = openIntake(prevCfg, a.metrics, a.scrub, a.logger); err == nil {
		if err = in.start(ctx); err != nil {
			_ = in.closeQueues()
		}
	}
	if err != nil {
		a.logger.Error("the previous otlp receiver failed to restart; pushed telemetry is refused until the next reload", "error", err)
		return
	}
	a.setIntake(in)
}

// watchConfig watches the configuration file's directory (editors and Kubernetes
// ConfigMaps replace files by rename) and signals changes, debounced.
func (a *Agent) watchConfig() (<-chan struct{}, func()) {
	out := make(chan struct{}, 1)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.logger.Warn("config file watch unavailable; reload with SIGHUP", "error", err)
		return out, func() {}
	}
	dir := filepath.Dir(a.opts.ConfigPath)
	if err := w.Add(dir); err != nil {
		a.logger.Warn("config file watch unavailable; reload with SIGHUP", "dir", dir, "error", err)
		_ = w.Close()
		return out, func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var timer <-chan time.Time
		for {
			select {
			case <-done:
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer = time.After(200 * time.Millisecond)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				a.logger.Warn("config file watch error", "error", err)
			case <-timer:
				timer = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, func() {
		close(done)
		_ = w.Close()
		<-stopped
	}
}

// LevelOf parses a log.level value (debug, info, warn, error), info when unknown.
func LevelOf(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// NewLogger returns the agent's JSON (or text) logger writing to w at level.
func NewLogger(w *os.File, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// applyRuntime sets the garbage collector's target and the soft memory limit, unless
// GOGC or GOMEMLIMIT set them for the process.
func applyRuntime(r config.Runtime) {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(r.GCPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		limit := int64(math.MaxInt64)
		if r.MemoryLimit > 0 {
			limit = int64(r.MemoryLimit)
		}
		debug.SetMemoryLimit(limit)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
