package secrets

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
)

// file is one configured file and what the Syncer knows of it.
type file struct {
	idx      int
	path     string
	cfg      render.FileConfig // with defaults applied
	tmpl     *render.Template
	reloader *reload.Reloader
	// deps are the keys of the dependencies its last render used; after a failed
	// render, also those of the render before (the file on disk still holds them).
	deps map[string]bool
	// rendered says the file was written, or found up to date, at least once.
	rendered bool
	// failing says the last render failed; retryAt is when to try again.
	failing bool
	retryAt time.Time
	bo      backoff.Backoff
	// waitChange says the last failure (a missing key) can only be cured by a change
	// of a dependency: the file is not retried before one.
	waitChange bool
	lastErr    string
}

// wantsRender reports whether the file needs a render of its own (not triggered by
// a dependency's change).
func (f *file) wantsRender() bool { return (!f.rendered || f.failing) && !f.waitChange }

// due reports whether the file's own render is due at now.
func (f *file) due(now time.Time) bool { return f.wantsRender() && !f.retryAt.After(now) }

// wait is a reload to wait for before revoking a rotated lease.
type wait struct {
	r *reload.Reloader
	t reload.Ticket
}

// renderFile renders f through the dependency cache and writes it if its bytes
// changed. created reports that the file did not exist before.
func (s *Syncer) renderFile(ctx context.Context, f *file) (changed, created bool, err error) {
	start := time.Now()
	data, deps, err := f.tmpl.Render(ctx, fetcher{s})
	s.useDeps(f, deps, err == nil)
	if err == nil {
		_, statErr := os.Lstat(f.path)
		created = errors.Is(statErr, fs.ErrNotExist)
		changed, err = render.Write(f.path, data, f.cfg)
		clear(data)
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, false, err
		}
		s.renderFailed(f, err, start)
		return false, false, err
	}
	if f.failing {
		s.log.Info("secret file rendered again", "path", f.path)
	}
	f.failing, f.waitChange, f.lastErr = false, false, ""
	f.bo.Reset()
	f.rendered = true
	if !changed {
		s.met.renders.WithLabelValues(ResultUnchanged).Inc()
		return false, created, nil
	}
	s.met.renders.WithLabelValues(ResultOK).Inc()
	s.audit.Record(audit.Event{Time: start, Kind: audit.KindRender, Path: f.path, Outcome: ResultOK, Duration: time.Since(start),
		Detail: renderDetail(len(deps), created)})
	s.log.Info("secret file written", "path", f.path, "dependencies", len(deps))
	return true, created, nil
}

func renderDetail(deps int, created bool) string {
	what := "updated"
	if created {
		what = "created"
	}
	if deps == 1 {
		return what + " from 1 secret"
	}
	return what + " from " + strconv.Itoa(deps) + " secrets"
}

// renderFailed records a failed render of f and schedules its retry. The last good
// file stays in place. A failure is logged (warning) and audited once for as long as
// it stays the same.
func (s *Syncer) renderFailed(f *file, err error, start time.Time) {
	f.failing = true
	f.waitChange = errors.Is(err, render.ErrMissingKey)
	f.retryAt = time.Now().Add(s.retryDelay(&f.bo))
	s.met.renders.WithLabelValues(ResultError).Inc()
	msg := err.Error()
	if msg == f.lastErr {
		s.log.Debug("secret file still not rendered", "path", f.path, "error", msg)
		return
	}
	f.lastErr = msg
	s.audit.Record(audit.Event{Time: start, Kind: audit.KindRender, Path: f.path, Outcome: ResultError, Error: msg, Duration: time.Since(start)})
	next := "retrying"
	if f.waitChange {
		next = "waiting for the secret to change"
	}
	if f.rendered {
		next += "; the last good file is kept"
	}
	s.log.Warn("secret file not rendered; "+next, "path", f.path, "error", msg)
}

// useDeps records the dependencies a render of f used. After a failed render the
// previous ones are kept too: the file on disk still holds their values, so they
// stay registered for scrubbing and their leases stay renewed.
func (s *Syncer) useDeps(f *file, deps []render.Dependency, complete bool) {
	keys := make(map[string]bool, len(deps)+len(f.deps))
	for _, d := range deps {
		keys[depKey(d.Path, d.Args)] = true
	}
	if !complete {
		for k := range f.deps {
			keys[k] = true
		}
	}
	f.deps = keys
}

// renderNotify renders f and, when an existing file changed, tells its reloader.
// It returns the reload to wait for (zero when there is none).
func (s *Syncer) renderNotify(ctx context.Context, f *file) (wait, error) {
	changed, created, err := s.renderFile(ctx, f)
	if err != nil || !changed || created {
		// A file that did not exist before was not in use: nothing to reload.
		return wait{}, err
	}
	return wait{r: f.reloader, t: f.reloader.Notify(f.path)}, nil
}

// rerenderDependents renders every file that uses d after d changed. It returns the
// reloads to wait for (one per reloader, its latest ticket) and the files that
// could not be rendered.
func (s *Syncer) rerenderDependents(ctx context.Context, d *dep) (waits []wait, failed []string) {
	for _, f := range s.files {
		if !f.deps[d.key] {
			continue
		}
		f.waitChange = false
		w, err := s.renderNotify(ctx, f)
		if err != nil {
			failed = append(failed, f.path)
			continue
		}
		if w.r == nil {
			continue
		}
		merged := false
		for i := range waits {
			if waits[i].r == w.r {
				waits[i].t = max(waits[i].t, w.t)
				merged = true
			}
		}
		if !merged {
			waits = append(waits, w)
		}
	}
	return waits, failed
}
