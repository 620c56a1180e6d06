package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

// Redactor receives the live secret values to scrub from telemetry (processors/redact's
// Registry implements it).
//
// Contract: Set replaces the values registered under owner (a dependency key such as
// "database/creds/app"); Remove drops them. Both must be safe for concurrent use and
// must not block for long; neither may log the values.
type Redactor interface {
	Set(owner string, values []string)
	Remove(owner string)
}

// RetentionSetter is implemented by a Redactor that keeps values scrubbed for a while
// after they were dropped (processors/redact's Registry, through the agent). New passes it
// the section's redact_retention and redact_max_retained.
type RetentionSetter interface {
	SetRetention(keep time.Duration, max int)
}

// Settings are what a Syncer needs from the agent besides its configuration.
type Settings struct {
	// Logger receives the Syncer's logs (and the Vault client's and reloaders'); nil
	// discards them. Secret values are never logged.
	Logger *slog.Logger
	// Audit receives every auth, fetch, renewal, rotation, revocation, render, reload
	// and failure; nil discards them.
	Audit audit.Sink
	// Redact receives the live secret values; nil registers them nowhere.
	Redact Redactor
	// Metrics are shared by every Syncer of the process; nil uses unregistered
	// metrics.
	Metrics *Metrics
	// StateFile keeps the IDs of the leases held (never values) across restarts, so
	// that the next run revokes them once it has replaced them (see leaseState); ""
	// keeps nothing. The agent uses data_dir/secrets-leases.json.
	StateFile string
}

// Syncer renders the configured secret files and keeps them fresh. See the package
// documentation for what it does with each kind of secret.
//
// A Syncer is used once: either Run (inside the agent) or RenderOnce (outrider
// render --once). Ready may be called at any time from any goroutine.
type Syncer struct {
	cfg       Config
	log       *slog.Logger
	audit     audit.Sink
	redact    Redactor
	met       *Metrics
	client    *vault.Client
	files     []*file
	reloaders []*reload.Reloader

	ready atomic.Bool
	// rendered is closed when ready first turns true.
	rendered chan struct{}
	used     atomic.Bool

	// leases is the state file's book, opened when Run or RenderOnce starts (so a
	// Syncer built during a reload reads the state its predecessor left); handover
	// is what a predecessor handed over (see HandOver).
	leases   *leaseBook
	handover handover

	// The state below belongs to the goroutine running Run's loop or RenderOnce.
	deps           map[string]*dep
	g              *errgroup.Group // Run's group, for revocations; nil in RenderOnce
	firstWaits     []wait          // the reloads of the first full render
	orphansStarted bool            // the earlier run's leases are being dealt with
	leaseErr       string          // the last lease-state error logged
}

// New validates cfg (after applying its defaults), reads template files, and builds
// the Vault client and the reloaders. It makes no request to Vault.
func New(cfg Config, set Settings) (*Syncer, error) {
	return newSyncer(cfg, set, nil)
}

// newSyncer is New with a wrapper for the Vault client's transport (tests count and
// time the requests actually sent).
func newSyncer(cfg Config, set Settings, wrap func(http.RoundTripper) http.RoundTripper) (*Syncer, error) {
	cfg.ApplyDefaults()
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("secrets: no files to render; add files to the secrets section")
	}
	s := &Syncer{
		cfg:    cfg,
		log:    set.Logger,
		audit:  set.Audit,
		redact: set.Redact,
		met:    set.Metrics,
		deps:   map[string]*dep{},

		rendered: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.audit == nil {
		s.audit = audit.Discard
	}
	if s.redact == nil {
		s.redact = noRedactor{}
	}
	if rs, ok := s.redact.(RetentionSetter); ok {
		rs.SetRetention(cfg.RedactRetention, cfg.RedactMaxRetained)
	}
	if s.met == nil {
		s.met = NewMetrics(nil)
	}
	var err error
	s.client, err = vault.New(cfg.Vault, vault.Settings{Logger: s.log, Audit: s.audit, Metrics: s.met.Vault, WrapTransport: wrap})
	if err != nil {
		return nil, fmt.Errorf("secrets: vault: %w", err)
	}
	var all *reload.Reloader
	for i, fc := range cfg.Files {
		tmpl, err := render.NewTemplate(fc.FileConfig)
		if err != nil {
			return nil, fmt.Errorf("secrets: files[%d]: %w", i, err)
		}
		f := &file{idx: i, tmpl: tmpl, cfg: tmpl.Config(), deps: map[string]bool{}}
		f.path = f.cfg.Path
		f.bo = s.backoff()
		switch {
		case fc.Reload != nil:
			f.reloader, err = reload.New(*fc.Reload, reload.Settings{Logger: s.log, Audit: s.audit, Metrics: s.met.Reload, Name: f.path})
			if err != nil {
				return nil, fmt.Errorf("secrets: files[%d].%w", i, err)
			}
			s.reloaders = append(s.reloaders, f.reloader)
		default:
			if all == nil {
				all, err = reload.New(cfg.Reload, reload.Settings{Logger: s.log, Audit: s.audit, Metrics: s.met.Reload, Name: "all"})
				if err != nil {
					return nil, fmt.Errorf("secrets: %w", err)
				}
				s.reloaders = append(s.reloaders, all)
			}
			f.reloader = all
		}
		s.files = append(s.files, f)
	}
	s.log = s.log.With("component", "secrets")
	s.handover.statePath = set.StateFile
	return s, nil
}

// Ready reports whether every file has been rendered at least once. It never goes
// back to false: while Vault is unreachable the files keep their last good content.
func (s *Syncer) Ready() bool { return s.ready.Load() }

// Rendered is closed once every file has been rendered at least once (Ready turns
// true), so that a start can wait for it without polling.
func (s *Syncer) Rendered() <-chan struct{} { return s.rendered }

// markReady turns Ready true; the first call closes Rendered and reports true.
func (s *Syncer) markReady() bool {
	if s.ready.Swap(true) {
		return false
	}
	close(s.rendered)
	return true
}

// Run renders every file, then keeps them fresh until ctx is done, and returns nil
// on a clean stop. It runs the Vault client's token renewal and the reloaders under
// one errgroup; nothing it starts outlives it. Failures to reach Vault are retried,
// never returned.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.used.CompareAndSwap(false, true) {
		return errors.New("secrets: a Syncer runs once (Run or RenderOnce); build a new one")
	}
	defer s.client.Close()
	s.openLeases()
	g, gctx := errgroup.WithContext(ctx)
	s.g = g
	g.Go(func() error { return s.client.Run(gctx) })
	for _, r := range s.reloaders {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error {
		s.loop(gctx)
		return nil
	})
	return g.Wait()
}

// loop is the Syncer's scheduler: it renders the files that need it and refreshes
// the dependencies that are due, then sleeps until the next thing is due.
func (s *Syncer) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.client.LoggedIn():
		}
		s.rotateStale(ctx)
		if ctx.Err() != nil {
			return
		}
		s.step(ctx, time.Now())
		if ctx.Err() != nil {
			return
		}
		timer.Reset(max(time.Until(s.nextWake()), 0))
	}
}

// idleWake bounds the loop's sleep when nothing is scheduled.
const idleWake = time.Hour

// step does everything due at now.
func (s *Syncer) step(ctx context.Context, now time.Time) {
	for _, f := range s.files {
		if f.due(now) {
			w, _ := s.renderNotify(ctx, f)
			if ctx.Err() != nil {
				return
			}
			if w.r != nil && !s.ready.Load() {
				s.firstWaits = append(s.firstWaits, w)
			}
		}
	}
	var due []*dep
	for _, d := range s.deps {
		if !d.next.IsZero() && !d.next.After(now) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b *dep) int { return strings.Compare(a.key, b.key) })
	for _, d := range due {
		if s.deps[d.key] != d {
			continue // dropped by a render since
		}
		s.refresh(ctx, d)
		if ctx.Err() != nil {
			return
		}
	}
	s.collect()
	s.checkHealth()
	s.saveLeases()
	if s.ready.Load() && !s.orphansStarted && s.g != nil {
		s.orphansStarted = true
		if orphans := s.leases.takeOrphans(); len(orphans) > 0 {
			waits := s.firstWaits
			s.log.Info("revoking the leases of an earlier run once the application reloaded", "leases", len(orphans))
			s.g.Go(func() error {
				s.revokeOrphans(ctx, orphans, waits)
				return nil
			})
		}
		s.firstWaits = nil
	}
}

// nextWake returns when the loop must look again.
func (s *Syncer) nextWake() time.Time {
	next := time.Now().Add(idleWake)
	for _, f := range s.files {
		if f.wantsRender() && f.retryAt.Before(next) {
			next = f.retryAt
		}
	}
	for _, d := range s.deps {
		if !d.next.IsZero() && d.next.Before(next) {
			next = d.next
		}
	}
	return next
}

// checkHealth updates readiness and the last-success gauge.
func (s *Syncer) checkHealth() {
	healthy := true
	for _, f := range s.files {
		if !f.rendered {
			return
		}
		if f.failing {
			healthy = false
		}
	}
	if s.markReady() {
		s.log.Info("every secret file rendered", "files", len(s.files))
	}
	for _, d := range s.deps {
		if d.failures > 0 {
			healthy = false
		}
	}
	if healthy {
		s.met.lastSuccess.SetToCurrentTime()
	}
}

// collect forgets the dependencies no file uses any more: their values leave the
// Redactor. Their leases are left to expire.
func (s *Syncer) collect() {
	used := map[string]bool{}
	for _, f := range s.files {
		for k := range f.deps {
			used[k] = true
		}
	}
	for k, d := range s.deps {
		if used[k] {
			continue
		}
		delete(s.deps, k)
		s.redact.Remove(k)
		if d.ttlGauge {
			s.met.leaseTTL.DeleteLabelValues(d.path)
		}
		s.log.Debug("secret no longer used", "path", d.path)
	}
}

// onceAttempts bounds the attempts RenderOnce makes at a file that fails with an
// error worth retrying (Vault unreachable).
const onceAttempts = 3

// RenderOnce logs in, renders every file once and writes it: no reload, no renewal,
// nothing left running. Files that fail because Vault could not be reached are tried
// up to three times with the retry backoff. Its error lists every file that failed
// and why (never a value), after trying them all; it wraps their errors, so
// errors.Is(err, render.ErrMissingKey) works.
func (s *Syncer) RenderOnce(ctx context.Context) error {
	if !s.used.CompareAndSwap(false, true) {
		return errors.New("secrets: a Syncer runs once (Run or RenderOnce); build a new one")
	}
	defer s.client.Close()
	s.openLeases()
	bo := s.backoff()
	var err error
	for attempt := 1; ; attempt++ {
		if err = s.client.Login(ctx); err == nil || !vault.IsRetryable(err) || attempt == onceAttempts || ctx.Err() != nil {
			break
		}
		d := bo.Next()
		s.log.Warn("vault login failed; retrying", "error", err, "retry_in", d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("secrets: render --once: %w", err)
	}
	bo.Reset()
	failed := map[*file]error{}
	pending := s.files
	for attempt := 1; ; attempt++ {
		var retry []*file
		for _, f := range pending {
			_, _, err := s.renderFile(ctx, f)
			if err == nil {
				delete(failed, f)
				continue
			}
			failed[f] = err
			if vault.IsRetryable(err) {
				retry = append(retry, f)
			}
		}
		if len(retry) == 0 || attempt == onceAttempts || !sleep(ctx, bo.Next()) {
			break
		}
		pending = retry
	}
	// The agent that starts next revokes these once it has replaced them.
	s.leases.setCurrent(append(s.leases.takeOrphans(), s.currentLeases()...))
	if len(failed) == 0 {
		s.markReady()
		return nil
	}
	oe := &OnceError{Total: len(s.files)}
	for _, f := range s.files {
		if err, ok := failed[f]; ok {
			oe.Files = append(oe.Files, FileError{Path: f.path, Err: err})
		}
	}
	return oe
}

// OnceError is RenderOnce's error: the files that could not be rendered, each with
// its reason (which never holds a secret value).
type OnceError struct {
	// Total is the number of files configured.
	Total int
	// Files are the files that failed, in configuration order.
	Files []FileError
}

// FileError is one file RenderOnce could not render.
type FileError struct {
	Path string
	Err  error
}

func (e *OnceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "secrets: %d of %d files not rendered (their last good content, if any, was kept):", len(e.Files), e.Total)
	for _, f := range e.Files {
		msg := f.Err.Error()
		if !strings.Contains(msg, f.Path) {
			msg = f.Path + ": " + msg
		}
		b.WriteString("\n  ")
		b.WriteString(msg)
	}
	return b.String()
}

// Unwrap returns every file's error.
func (e *OnceError) Unwrap() []error {
	out := make([]error, len(e.Files))
	for i, f := range e.Files {
		out[i] = f.Err
	}
	return out
}

func (s *Syncer) backoff() backoff.Backoff {
	return backoff.Backoff{Initial: s.cfg.Retry.InitialInterval, Max: s.cfg.Retry.MaxInterval, Jitter: backoff.JitterFull}
}

// retryDelay is the next delay of bo, never longer than poll_interval.
func (s *Syncer) retryDelay(bo *backoff.Backoff) time.Duration {
	return min(bo.Next(), s.cfg.PollInterval)
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type noRedactor struct{}

func (noRedactor) Set(string, []string) {}
func (noRedactor) Remove(string)        {}

var _ render.Fetcher = fetcher{}
