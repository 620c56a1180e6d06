package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/config"
)

// unit is one long-lived piece of the runtime: the HTTP server, the secrets syncer, the
// receivers with their queues, the pipeline graph, the audit stream.
//
// Contract:
//   - A unit is built by its kind's build function from the slice of configuration the
//     kind declares, without side effects: nothing is bound, opened, written or
//     started, so a reload whose units cannot be built is rejected before anything
//     running is touched.
//   - Start starts the unit and returns once it runs; when it fails, it has released
//     everything it took. It is called at most once.
//   - Stop stops a started unit within ctx and releases what Start took; it is called
//     once, only after a successful Start. A unit is never restarted: the supervisor
//     rebuilds it from its configuration instead.
type unit interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// exiter is a unit that can stop on its own (a source failing, the syncer returning,
// the server's listener failing): Exited is closed then and Err says why. The
// supervisor reports such an exit, unless it was stopping the unit itself.
type exiter interface {
	Exited() <-chan struct{}
	Err() error
}

// successor is a unit that takes state over from the unit of its kind it replaces
// (the syncer takes over the leases of its predecessor). TakeOver is called after the
// predecessor stopped and before Start; prev may never have been started.
type successor interface {
	TakeOver(prev unit)
}

// discarder is a unit whose build took something to release (an exporter's client)
// when it is never started: a rejected reload, or a start that failed before it.
type discarder interface {
	Discard()
}

// explainer is a unit that can say what it is doing, for /readyz (e.g. the syncer:
// which secret file is not rendered yet and why).
type explainer interface {
	Explain() (ready bool, detail string)
}

// unitKind is a kind of unit: its name, the kinds it depends on, the slice of the
// configuration it depends on, and how to build one from that slice alone. Two
// configurations whose slices are reflect.DeepEqual build the same unit, so a reload
// keeps it running; what counts as "changed" is never a hand-kept list.
type unitKind struct {
	name string
	// after are the kinds this one depends on: they start before it and stop after
	// it, and replacing one of them replaces this one too.
	after []string
	slice func(*config.Config) any
	build func(slice any) (unit, error)
}

// defineUnit returns a unitKind whose build function sees only the slice it declared.
// build may return a nil unit when the configuration turns the unit off.
func defineUnit[S any](name string, after []string, slice func(*config.Config) S, build func(S) (unit, error)) unitKind {
	return unitKind{
		name:  name,
		after: after,
		slice: func(c *config.Config) any { return slice(c) },
		build: func(s any) (unit, error) { return build(s.(S)) },
	}
}

// Unit states, as /readyz and `outrider status` report them.
const (
	stateOff      = "off"      // not configured
	statePending  = "pending"  // built; waits for the units it depends on to start
	stateStarting = "starting" // being started
	stateRunning  = "running"
	stateStopping = "stopping"
	stateStopped  = "stopped"
	stateFailed   = "failed" // stopped on its own, or could not be started
	stateWedged   = "wedged" // its Stop did not return within the shutdown timeout
)

// running is one unit of the current generation.
type running struct {
	kind  *unitKind
	slice any
	u     unit // nil when off

	mu          sync.Mutex
	started     bool // Start succeeded; Stop has not been called
	everStarted bool // Start was called
	discarded   bool
	state       string
	lastErr     error
	since       time.Time
	// stopping is closed when the supervisor starts stopping the unit, so that its
	// exit is not reported as a failure.
	stopping chan struct{}
}

func (r *running) set(state string, err error) {
	r.mu.Lock()
	r.state, r.since = state, time.Now()
	if err != nil {
		r.lastErr = err
	}
	r.mu.Unlock()
}

// unitFailure is a unit that stopped on its own.
type unitFailure struct {
	name string
	err  error
}

// supervisor runs generations of units. Start and Reload are called from one
// goroutine (the agent's loop); Status may be called from any.
type supervisor struct {
	kinds  []unitKind // in dependency order
	logger *slog.Logger
	// stopTimeout bounds each unit's Stop; a Stop that has not returned well after
	// it (wedgeAfter) leaves the unit wedged.
	stopTimeout time.Duration
	// afterSwap is called after every Reload, whatever its outcome, when units were
	// replaced (the agent closes the listeners nobody took over).
	afterSwap func()

	mu  sync.Mutex
	cur map[string]*running

	failures chan unitFailure
	watchers sync.WaitGroup
}

func newSupervisor(kinds []unitKind, logger *slog.Logger) (*supervisor, error) {
	seen := map[string]bool{}
	for _, k := range kinds {
		for _, d := range k.after {
			if !seen[d] {
				return nil, fmt.Errorf("unit %s depends on %s, which is not defined before it", k.name, d)
			}
		}
		if seen[k.name] {
			return nil, fmt.Errorf("unit %s defined twice", k.name)
		}
		seen[k.name] = true
	}
	return &supervisor{kinds: kinds, logger: logger, cur: map[string]*running{}, failures: make(chan unitFailure, len(kinds)*4), stopTimeout: 10 * time.Second}, nil
}

// Failures reports units that stopped on their own.
func (s *supervisor) Failures() <-chan unitFailure { return s.failures }

// build builds a unit of every kind in names for cfg; it returns every build error at
// once, and starts nothing.
func (s *supervisor) build(cfg *config.Config, names map[string]bool) (map[string]*running, error) {
	out := map[string]*running{}
	var errs []error
	for i := range s.kinds {
		k := &s.kinds[i]
		if !names[k.name] {
			continue
		}
		sl := k.slice(cfg)
		u, err := k.build(sl)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		state := statePending
		if u == nil {
			state = stateOff
		}
		out[k.name] = &running{kind: k, slice: sl, u: u, state: state, since: time.Now(), stopping: make(chan struct{})}
	}
	return out, errors.Join(errs...)
}

func (s *supervisor) all() map[string]bool {
	m := map[string]bool{}
	for _, k := range s.kinds {
		m[k.name] = true
	}
	return m
}

// Start builds and starts every unit for cfg, in dependency order. If a build fails,
// nothing is started; if a start fails, the units already started are stopped.
func (s *supervisor) Start(ctx context.Context, cfg *config.Config) error {
	gen, err := s.build(cfg, s.all())
	if err != nil {
		discardUnstarted(gen)
		return err
	}
	s.mu.Lock()
	s.cur = gen
	s.mu.Unlock()
	started, err := s.startAll(ctx, gen)
	if err != nil {
		s.stopAll(started)
		discardUnstarted(gen)
		return err
	}
	return nil
}

// changed returns the kinds whose slice of cfg differs from the running one, with
// every kind that depends on one of them.
func (s *supervisor) changed(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.kinds {
		r := s.cur[k.name]
		if r == nil || !reflect.DeepEqual(r.slice, k.slice(cfg)) {
			out[k.name] = true
			continue
		}
		for _, d := range k.after {
			if out[d] {
				out[k.name] = true
				break
			}
		}
	}
	return out
}

// ReloadResult says what a Reload did.
type ReloadResult struct {
	// Replaced are the units rebuilt for the new configuration (empty: nothing
	// changed).
	Replaced []string
	// Rejected is set when the new configuration's units could not be built; nothing
	// running was touched.
	Rejected error
	// RolledBack is set when a new unit failed to start: the previous units run again
	// (Restored lists any that could not be restarted).
	RolledBack error
	Restored   error
}

// Reload makes the running units those of cfg: it builds every changed unit (and the
// ones depending on it); if any build fails, it rejects the reload before touching
// anything. Otherwise it stops the replaced units in reverse dependency order, hands
// each one's state to its successor, and starts the new units in dependency order. If
// a start fails, it stops the new units already started and rebuilds and starts the
// replaced ones from their previous slices, so the agent runs the previous
// configuration as one consistent generation.
func (s *supervisor) Reload(ctx context.Context, cfg *config.Config) ReloadResult {
	names := s.changed(cfg)
	var res ReloadResult
	for _, k := range s.kinds {
		if names[k.name] {
			res.Replaced = append(res.Replaced, k.name)
		}
	}
	if len(res.Replaced) == 0 {
		return res
	}
	next, err := s.build(cfg, names)
	if err != nil {
		discardUnstarted(next)
		res.Rejected = err
		return res
	}
	s.mu.Lock()
	prev := map[string]*running{}
	for n := range names {
		prev[n] = s.cur[n]
	}
	s.mu.Unlock()
	defer func() {
		if s.afterSwap != nil {
			s.afterSwap()
		}
	}()

	// holder is, per kind, the unit that holds the state a successor takes over.
	holder := map[string]unit{}
	for n, p := range prev {
		if p != nil && p.u != nil {
			holder[n] = p.u
		}
	}
	if stopped, err := s.stopUntilWedged(s.ordered(prev)); err != nil {
		// A unit that does not stop may still hold what its successor needs (a
		// queue, the lease file): its successor is not started. The units stopped
		// before it run again; /healthz reports the wedged one so that the pod is
		// restarted.
		res.RolledBack = err
		discardUnstarted(next)
		res.Restored = s.restore(ctx, stopped, holder)
		return res
	}
	for n, r := range next {
		if h := holder[n]; h != nil && r.u != nil {
			if su, ok := r.u.(successor); ok {
				su.TakeOver(h)
				holder[n] = r.u
			}
		}
	}
	s.swap(next)
	started, err := s.startAll(ctx, next)
	if err == nil {
		return res
	}
	res.RolledBack = err
	s.logger.Error("a new unit failed to start; restarting the previous ones", "error", err)
	s.stopAll(started)
	discardUnstarted(next)
	res.Restored = s.restore(ctx, s.ordered(prev), holder)
	return res
}

// restore rebuilds the units of gen from their slices and starts them; each takes
// its state over from holder. It returns what could not be restored.
func (s *supervisor) restore(ctx context.Context, gen []*running, holder map[string]unit) error {
	old := map[string]*running{}
	var errs []error
	for _, p := range gen {
		k := p.kind
		u, err := k.build(p.slice)
		if err != nil {
			err = fmt.Errorf("rebuild %s: %w", k.name, err)
			errs = append(errs, err)
			// Kept as failed with its previous slice: /healthz reports it, and the
			// next reload builds it again.
			old[k.name] = &running{kind: k, slice: p.slice, state: stateFailed, lastErr: err, since: time.Now(), stopping: make(chan struct{})}
			continue
		}
		r := &running{kind: k, slice: p.slice, u: u, state: statePending, since: time.Now(), stopping: make(chan struct{})}
		if u == nil {
			r.state = stateOff
		} else if su, ok := u.(successor); ok && holder[k.name] != nil {
			// The successor that failed may have taken the state over; it gives it
			// back (the syncer's leases).
			su.TakeOver(holder[k.name])
			holder[k.name] = u
		}
		old[k.name] = r
	}
	s.swap(old)
	if _, err := s.startAll(ctx, old); err != nil {
		discardUnstarted(old)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stopUntilWedged stops units in reverse order, and stops there when one is wedged;
// it returns the units it stopped.
func (s *supervisor) stopUntilWedged(units []*running) ([]*running, error) {
	var stopped []*running
	for _, r := range slices.Backward(units) {
		if r.u == nil {
			stopped = append(stopped, r)
			continue
		}
		if _, wedged := s.stopOne(r); wedged != nil {
			slices.Reverse(stopped)
			return stopped, wedged
		}
		stopped = append(stopped, r)
	}
	slices.Reverse(stopped)
	return stopped, nil
}

// discardUnstarted releases the units of gen that were built but never started.
func discardUnstarted(gen map[string]*running) {
	for _, r := range gen {
		r.mu.Lock()
		never := !r.started && !r.everStarted && !r.discarded
		r.discarded = r.discarded || never
		r.mu.Unlock()
		if d, ok := r.u.(discarder); ok && never {
			d.Discard()
		}
	}
}

// swap makes gen part of the current generation.
func (s *supervisor) swap(gen map[string]*running) {
	s.mu.Lock()
	for n, r := range gen {
		s.cur[n] = r
	}
	s.mu.Unlock()
}

// ordered returns gen's units in dependency order.
func (s *supervisor) ordered(gen map[string]*running) []*running {
	var out []*running
	for _, k := range s.kinds {
		if r := gen[k.name]; r != nil {
			out = append(out, r)
		}
	}
	return out
}

// startAll starts gen's units in dependency order until one fails; it returns the
// ones started.
func (s *supervisor) startAll(ctx context.Context, gen map[string]*running) ([]*running, error) {
	var started []*running
	for _, r := range s.ordered(gen) {
		if r.u == nil {
			continue
		}
		r.set(stateStarting, nil)
		r.mu.Lock()
		r.everStarted = true
		r.mu.Unlock()
		if err := r.u.Start(ctx); err != nil {
			r.set(stateFailed, err)
			return started, fmt.Errorf("start %s: %w", r.kind.name, err)
		}
		r.mu.Lock()
		r.started = true
		r.mu.Unlock()
		r.set(stateRunning, nil)
		started = append(started, r)
		if ex, ok := r.u.(exiter); ok {
			s.watch(r, ex)
		}
	}
	return started, nil
}

// watch reports r's exit unless the supervisor stops it first.
func (s *supervisor) watch(r *running, ex exiter) {
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		select {
		case <-r.stopping:
		case <-ex.Exited():
			select {
			case <-r.stopping:
				return
			default:
			}
			err := ex.Err()
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			r.set(stateFailed, err)
			select {
			case s.failures <- unitFailure{name: r.kind.name, err: err}:
			default:
			}
		}
	}()
}

// stopAll stops units in reverse order, each within stopTimeout; a Stop that does not
// return by then leaves its unit wedged and the next one is stopped anyway.
func (s *supervisor) stopAll(units []*running) error {
	var errs []error
	for _, r := range slices.Backward(units) {
		if r.u == nil {
			continue
		}
		err, wedged := s.stopOne(r)
		if err = errors.Join(err, wedged); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopOne stops r within stopTimeout. It returns Stop's error, or wedged when Stop
// did not return by then.
func (s *supervisor) stopOne(r *running) (err, wedged error) {
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return nil, nil
	}
	r.started = false
	r.mu.Unlock()
	close(r.stopping)
	r.set(stateStopping, nil)
	ctx, cancel := context.WithTimeout(context.Background(), s.stopTimeout)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- r.u.Stop(ctx)
	}()
	grace := time.NewTimer(s.wedgeAfter())
	defer grace.Stop()
	select {
	case err := <-done:
		r.set(stateStopped, err)
		if err != nil {
			s.logger.Warn("unit did not stop cleanly", "unit", r.kind.name, "error", err)
			return fmt.Errorf("stop %s: %w", r.kind.name, err), nil
		}
		return nil, nil
	case <-grace.C:
		err := fmt.Errorf("stop %s: did not return within %s", r.kind.name, s.wedgeAfter())
		r.set(stateWedged, err)
		s.logger.Error("unit is wedged: its stop did not return; /healthz now fails so that the pod is restarted", "unit", r.kind.name, "timeout", s.stopTimeout.String())
		s.watchers.Add(1)
		go func() {
			defer s.watchers.Done()
			// It stopped late; whatever replaced or restored it was not started,
			// so it stays failed until the agent is restarted.
			<-done
			r.set(stateFailed, fmt.Errorf("%w (it returned later; restart the agent)", err))
		}()
		return nil, err
	}
}

// wedgeAfter is how long a Stop may take before its unit counts as wedged: units
// drain within stopTimeout and may take a little longer to release what they hold
// (the graph gives its exporters a second more), so only a Stop well past it is stuck.
func (s *supervisor) wedgeAfter() time.Duration {
	return s.stopTimeout + s.stopTimeout/2 + 2*time.Second
}

// Stop stops every unit of the current generation in reverse dependency order and
// waits for the supervisor's goroutines.
func (s *supervisor) Stop() error {
	s.mu.Lock()
	gen := s.cur
	s.mu.Unlock()
	err := s.stopAll(s.ordered(gen))
	s.watchers.Wait()
	return err
}

// UnitStatus is one unit's state, for /readyz and `outrider status`.
type UnitStatus struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Ready     bool      `json:"ready"`
	Detail    string    `json:"detail,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// Status returns every unit's state in dependency order.
func (s *supervisor) Status() []UnitStatus {
	s.mu.Lock()
	gen := s.ordered(s.cur)
	s.mu.Unlock()
	out := make([]UnitStatus, 0, len(gen))
	for _, r := range gen {
		r.mu.Lock()
		st := UnitStatus{Name: r.kind.name, State: r.state, Since: r.since, Ready: r.state == stateRunning || r.state == stateOff}
		if r.lastErr != nil {
			st.LastError = r.lastErr.Error()
		}
		r.mu.Unlock()
		if ex, ok := r.u.(explainer); ok && (st.State == stateRunning || st.State == stateStarting) {
			st.Ready, st.Detail = ex.Explain()
		}
		out = append(out, st)
	}
	return out
}
