// Package agent is outrider's runtime. It runs the process as units — the HTTP server
// (/metrics, /healthz, /readyz), the secrets syncer, the audit stream, the receivers
// with their durable queues (the intake) and the pipeline graph — under a supervisor
// (see supervisor.go): each unit declares the slice of the configuration it depends
// on and is built from it without side effects. A configuration reload rebuilds the
// units whose slice changed, rejects the reload before touching anything when one
// cannot be built, and restores the previous units when a new one fails to start.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/processors/errorevents"
	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/secrets"
)

// Options configures an Agent.
type Options struct {
	// ConfigPath is the configuration file; it is watched for changes.
	ConfigPath string
	// Overlays are merged over ConfigPath in order (config.ParseLayers); they are
	// watched for changes too.
	Overlays []config.OverlayFile
	// Config is the configuration already loaded from ConfigPath and Overlays.
	Config *config.Config
	// ConfigProblem, when set, is why the files could not be loaded at start: Config
	// is then the base file alone, and /readyz is not ready, saying so, until a
	// reload of the files succeeds.
	ConfigProblem error
	// Logger is the agent's own logger; LogLevel, when set, follows log.level on reload.
	Logger   *slog.Logger
	LogLevel *slog.LevelVar
	// Version is reported in outrider_build_info; Commit and Date, when set (the
	// command's -ldflags), win over what the Go toolchain stamped into the binary.
	Version, Commit, Date string
	// Reload asks for a configuration reload (the command sends SIGHUP here).
	Reload <-chan struct{}
	// OnListen, when set, is called with the address of the metrics/health server
	// each time a server unit starts (again after a reload that changes
	// server.listen); it must not block.
	OnListen func(addr string)
}

// Agent runs one outrider process.
type Agent struct {
	opts    Options
	logger  *slog.Logger
	metrics *metrics
	// current is the running intake, for the graph's log sinks deriving error events
	// and for the graph unit's pumps.
	current atomic.Pointer[intake]
	// scrub holds the live secret values; it outlives graphs and syncers so that
	// redaction never lapses during a reload.
	scrub *redact.Registry
	audit *auditLog
	// listeners hands the listening sockets from one generation of units to the next.
	listeners *listenerPool
	sup       atomic.Pointer[supervisor]
	// unitHook, set by tests, wraps every unit as it is built (fault injection).
	unitHook func(name string, u unit, err error) (unit, error)

	running atomic.Bool
	syncer  atomic.Pointer[syncerRun]
	// rendered is set once every secret file has been rendered: files then exist, so
	// the agent stays ready while a reload replaces the syncer or Vault is away.
	rendered   atomic.Bool
	serverAddr atomic.Value // string
	graphInfo  atomic.Pointer[graphInfo]
	// beat is the agent loop's last heartbeat (unix nanoseconds); /healthz fails when
	// it is stale, that is when the loop is stuck.
	beat       atomic.Int64
	staleAfter atomic.Int64 // nanoseconds
	lastReload atomic.Pointer[ReloadStatus]
	// configProblem is why the configuration files on disk are not in effect (they
	// are invalid: the agent runs on the last good configuration); nil when they are.
	configProblem atomic.Pointer[string]

	// retired are replaced syncers' values, still scrubbed for a while.
	retiredMu sync.Mutex
	retired   []retiredOwners
}

// New returns an Agent for opts.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = discard()
	}
	m := newMetrics(ReadBuildInfo(opts.Version, opts.Commit, opts.Date))
	a := &Agent{opts: opts, logger: opts.Logger, metrics: m, scrub: redact.NewRegistry(m.redact), listeners: newListenerPool()}
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
	if !a.running.Load() || a.configProblem.Load() != nil {
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
		Logger:    a.logger, // the syncer names its component itself
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
	select {
	case <-sr.s.Rendered():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-sr.done:
		if sr.s.Ready() {
			return nil
		}
		return fmt.Errorf("secrets syncer stopped before the first render: %v", sr.err)
	case <-deadline.C:
		a.logger.Warn("secret files not rendered yet; starting log collection anyway, and lines may carry secret values the agent has not learned yet", "waited", firstRenderWait.String())
		return nil
	}
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
	a.retiredMu.Lock()
	defer a.retiredMu.Unlock()
	a.retired = append(a.retired, retiredOwners{owners: r.owners, until: time.Now().Add(retiredOwnersKeep)})
}

// releaseRetired releases the retired values whose time is up.
func (a *Agent) releaseRetired(now time.Time) {
	a.retiredMu.Lock()
	defer a.retiredMu.Unlock()
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

// heartbeat is how often the agent's loop beats; /healthz fails when the last beat
// is older than staleAfter (at least a minute, more with a long shutdown timeout,
// since a reload may stop several units in turn).
const heartbeat = 5 * time.Second

func (a *Agent) setTimeouts(cfg *config.Config) {
	a.staleAfter.Store(int64(max(time.Minute, 6*cfg.Server.ShutdownTimeout+heartbeat)))
	if sup := a.sup.Load(); sup != nil {
		sup.stopTimeout = cfg.Server.ShutdownTimeout
	}
}

// Run runs the agent until ctx is done, then drains and stops within
// server.shutdown_timeout per unit. It returns an error if the agent cannot start or
// a unit fails; ctx ending while the agent starts is a clean stop.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.opts.Config
	applyRuntime(cfg.Runtime)
	idle := newIdleRelease(a.logger)
	sup, err := newSupervisor(a.unitKinds(), a.logger)
	if err != nil {
		return err
	}
	sup.afterSwap = a.listeners.closeUnused
	a.sup.Store(sup)
	a.setTimeouts(cfg)
	a.beat.Store(time.Now().UnixNano())
	defer a.listeners.closeAll()
	// Watch before starting, so that a change saved while the units start is seen.
	changes, stopWatch := a.watchConfig()
	defer stopWatch()
	lastData, _ := config.ReadLayers(a.opts.ConfigPath, a.opts.Overlays)
	if err := a.opts.ConfigProblem; err != nil {
		a.setConfigProblem(err)
	}
	if cfg.Secrets.Enabled() {
		a.metrics.secretsReg.enable()
	}

	// The secrets come before the graph: until the first render the redaction knows
	// no value, and a log backlog read now (after a restart) could be exported
	// unscrubbed.
	if err := sup.Start(ctx, cfg); err != nil {
		_ = sup.Stop()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			a.logger.Info("stopped while starting")
			return nil
		}
		return err
	}
	a.running.Store(true)
	gi := a.graphInfo.Load()
	if gi == nil {
		gi = &graphInfo{}
	}
	addr, _ := a.serverAddr.Load().(string)
	a.logger.Info("agent started", "listen", addr, "sources", gi.sources, "exporters", gi.exporters, "secret_files", len(cfg.Secrets.Files))
	idle.startUp(cfg.Runtime.IdleRelease, "units started")

	housekeeping := time.NewTicker(time.Minute)
	defer housekeeping.Stop()
	idle.set(cfg.Runtime.IdleRelease)
	defer idle.stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()

	stopAll := func() error {
		a.running.Store(false)
		return sup.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			a.logger.Info("stopping: draining in-flight data", "timeout", cfg.Server.ShutdownTimeout.String())
			err := stopAll()
			a.logger.Info("agent stopped")
			return err
		case f := <-sup.Failures():
			a.logger.Error("a unit stopped on its own; stopping the agent", "unit", f.name, "error", f.err)
			_ = stopAll()
			return fmt.Errorf("%s: %w", f.name, f.err)
		case now := <-housekeeping.C:
			a.releaseRetired(now)
		case <-idle.C():
			idle.tick()
		case now := <-beat.C:
			a.beat.Store(now.UnixNano())
		case <-a.opts.Reload:
			// A reload is asked for even when the bytes did not change (a file the
			// configuration names may have); the watch then skips the same bytes.
			if data, err := config.ReadLayers(a.opts.ConfigPath, a.opts.Overlays); err == nil {
				lastData = data
			}
			cfg = a.reload(ctx, cfg, nil)
		case <-changes:
			// config.ReadFile stops at the size limit, so a huge file saved in place
			// costs no more than the limit; the reload then says why it is refused.
			data, err := config.ReadLayers(a.opts.ConfigPath, a.opts.Overlays)
			if err != nil {
				if _, statErr := os.Stat(a.opts.ConfigPath); statErr == nil {
					cfg = a.reload(ctx, cfg, nil)
				}
				continue
			}
			if config.LayersEqual(data, lastData) {
				continue
			}
			lastData = data
			cfg = a.reload(ctx, cfg, data)
		}
		idle.set(cfg.Runtime.IdleRelease)
		a.beat.Store(time.Now().UnixNano())
	}
}

// reload loads the configuration again and, when it is valid and different, hands it
// to the supervisor, which replaces the units whose slice changed. It returns the
// configuration in effect afterwards.
func (a *Agent) reload(ctx context.Context, old *config.Config, layers []config.Layer) *config.Config {
	var (
		cfg *config.Config
		err error
	)
	if layers != nil {
		cfg, err = config.ParseLayers(layers)
	} else {
		cfg, err = config.LoadLayers(a.opts.ConfigPath, a.opts.Overlays)
	}
	record := func(result string, replaced []string, err error) {
		a.metrics.reloads.WithLabelValues(result).Inc()
		rs := &ReloadStatus{Time: time.Now(), Result: result, Replaced: replaced}
		if err != nil {
			rs.Error = err.Error()
		}
		a.lastReload.Store(rs)
	}
	if err != nil {
		record(reloadRejected, nil, err)
		a.setConfigProblem(err)
		a.logger.Error("config reload rejected; the running configuration stays in effect", "path", a.opts.ConfigPath, "error", err)
		return old
	}
	if reflect.DeepEqual(cfg, old) {
		a.configProblem.Store(nil)
		return old
	}
	if cfg.Secrets.Enabled() {
		a.metrics.secretsReg.enable()
	}
	res := a.sup.Load().Reload(ctx, cfg)
	switch {
	case res.Rejected != nil:
		record(reloadRejected, nil, res.Rejected)
		a.logger.Error("config reload rejected; the running configuration stays in effect", "path", a.opts.ConfigPath, "error", res.Rejected)
		return old
	case res.RolledBack != nil:
		err := res.RolledBack
		if res.Restored != nil {
			err = fmt.Errorf("%w; restoring the previous units failed too: %w", err, res.Restored)
			a.logger.Error("the previous units could not all be restarted; /readyz and /healthz say which", "error", res.Restored)
		}
		record(reloadRolledBack, res.Replaced, err)
		a.logger.Error("config reload rolled back: a new unit failed to start and the previous ones run again", "path", a.opts.ConfigPath, "units", strings.Join(res.Replaced, ","), "error", res.RolledBack)
		return old
	}
	if a.opts.LogLevel != nil {
		a.opts.LogLevel.Set(LevelOf(cfg.Log.Level))
	}
	applyRuntime(cfg.Runtime)
	a.setTimeouts(cfg)
	record(reloadSuccess, res.Replaced, nil)
	a.configProblem.Store(nil)
	a.logger.Info("config reloaded", "path", a.opts.ConfigPath, "units", strings.Join(res.Replaced, ","))
	return cfg
}

// setIntake makes in the running intake.
func (a *Agent) setIntake(in *intake) { a.current.Store(in) }

// errorTarget returns where error events go now; see intake.errorTarget.
func (a *Agent) errorTarget() (*errorevents.Builder, errorevents.Appender) {
	return a.current.Load().errorTarget()
}

// Status reports the agent's readiness and health and every unit's state.
func (a *Agent) Status() Status {
	st := Status{Ready: a.ready(), Healthy: true, Build: ReadBuildInfo(a.opts.Version, a.opts.Commit, a.opts.Date), LastReload: a.lastReload.Load()}
	if sup := a.sup.Load(); sup != nil {
		st.Units = sup.Status()
	}
	if !a.running.Load() {
		st.Reasons = append(st.Reasons, "the agent is starting or stopping")
	}
	if p := a.configProblem.Load(); p != nil {
		st.Reasons = append(st.Reasons, *p)
	}
	for _, u := range st.Units {
		switch {
		case u.State == stateWedged:
			st.Healthy = false
			st.Reasons = append(st.Reasons, fmt.Sprintf("unit %s is wedged: %s", u.Name, u.LastError))
		case u.State == stateFailed:
			st.Healthy = false
			st.Reasons = append(st.Reasons, fmt.Sprintf("unit %s failed: %s", u.Name, u.LastError))
		case !u.Ready && (a.running.Load() || u.State == stateStarting) && !(u.Name == unitSecrets && a.rendered.Load()):
			// While the agent starts, the unit it waits for says why (the syncer:
			// which file is not rendered and the Vault error).
			r := fmt.Sprintf("unit %s is %s", u.Name, u.State)
			if u.Detail != "" {
				r += ": " + u.Detail
			}
			st.Reasons = append(st.Reasons, r)
		}
	}
	if last := a.beat.Load(); last != 0 {
		if age := time.Since(time.Unix(0, last)); age > time.Duration(a.staleAfter.Load()) {
			st.Healthy = false
			st.Reasons = append(st.Reasons, fmt.Sprintf("the agent loop has not run for %s: it is stuck (a reload or a stop does not return)", age.Round(time.Second)))
		}
	}
	if !st.Healthy {
		st.Ready = false
	}
	return st
}

// setConfigProblem records that the configuration files are invalid, for /readyz. It
// does so only for an agent with overlays: they are edited while the agent runs
// (a ConfigMap), and an invalid one means settings someone relies on are not in
// effect. Without overlays, a rejected reload leaves /readyz ready and shows in its
// last_reload, as before.
func (a *Agent) setConfigProblem(err error) {
	if len(a.opts.Overlays) == 0 {
		return
	}
	msg := "the configuration files are invalid, so the agent runs on its last good configuration; fix them (the agent reloads on save): " + err.Error()
	a.configProblem.Store(&msg)
}

// watchConfig watches the directories of the configuration file and its overlays
// (editors and Kubernetes ConfigMaps replace files by rename) and signals changes,
// debounced.
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
	for _, o := range a.opts.Overlays {
		if d := filepath.Dir(o.Path); d != dir {
			if err := w.Add(d); err != nil {
				a.logger.Warn("overlay watch unavailable; reload with SIGHUP", "dir", d, "error", err)
			}
		}
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

// applyRuntime sets the garbage collector's target, the soft memory limit and the
// number of threads running Go code, unless GOGC, GOMEMLIMIT or GOMAXPROCS set them
// for the process.
func applyRuntime(r config.Runtime) {
	if _, ok := os.LookupEnv("GOMAXPROCS"); !ok {
		if r.MaxProcs > 0 {
			runtime.GOMAXPROCS(r.MaxProcs)
		} else {
			runtime.SetDefaultGOMAXPROCS()
		}
	}
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
