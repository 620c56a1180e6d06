package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// maxReasons bounds the distinct reasons kept for one reload; further ones are
// counted.
const maxReasons = 16

// retryBackoffFactor sets the largest delay between retries of a failed reload, as a
// multiple of max_wait.
const retryBackoffFactor = 8

// ErrStopped is returned by Wait when Run returned before a reload covering the
// ticket completed.
var ErrStopped = errors.New("reload: the reloader stopped before the change was reloaded")

// Ticket identifies one Notify call. Tickets of a Reloader increase with every call;
// the zero Ticket is never issued.
type Ticket uint64

// Outcome is the result of one reload attempt.
type Outcome struct {
	// Time is when the attempt started.
	Time time.Time
	// Method is signal, http, exec or none.
	Method string
	// Target says what was asked to reload, without secrets: "SIGHUP to process
	// nginx", "POST http://127.0.0.1:8080/-/reload" (no credentials, no query),
	// "command sh".
	Target string
	// OK reports success: every matching process was signalled, the app answered
	// 2xx, or the command exited with status 0.
	OK bool
	// Err says what went wrong when OK is false.
	Err error
	// Duration is how long the attempt took.
	Duration time.Duration
	// Reasons are the changes (file paths) that led to the reload, at most 16
	// distinct ones, then "+N more". Read-only.
	Reasons []string
	// Targets is how many processes were signalled (method signal), or 1 when the
	// request was answered or the command ran.
	Targets int
	// Attempt is 1 for the first attempt at a set of changes, 2 and up for retries.
	Attempt int
}

// Settings are what a Reloader is given besides its configuration.
type Settings struct {
	// Logger receives one line per reload outcome (nil: discarded).
	Logger *slog.Logger
	// Audit receives one KindReload event per reload outcome (nil: discarded).
	Audit audit.Sink
	// Metrics are shared by every Reloader of the process (nil: unregistered).
	Metrics *Metrics
	// Name says which files this Reloader serves: a file path or "all". It is the
	// audit event's Path and is passed to commands as OUTRIDER_RELOAD_NAME.
	Name string
}

// notifier asks the application to reload, once.
type notifier interface {
	method() string
	// target describes what is reloaded, without secrets.
	target() string
	// reload makes one attempt and returns how many targets were reached. It
	// returns promptly when ctx is done.
	reload(ctx context.Context, reasons []string) (int, error)
}

// Reloader tells the application to reload when its secrets change, coalescing
// changes that come close together. See the package documentation for the
// contract of Notify, Run, ReloadNow and Wait.
type Reloader struct {
	n       notifier // nil for method none
	name    string
	log     *slog.Logger
	audit   audit.Sink
	met     methodMetrics
	timeout time.Duration
	minWait time.Duration
	maxWait time.Duration
	retries int
	wake    chan struct{} // capacity 1: "state changed, look again"
	running chan struct{} // capacity 1, full while a reload runs, so reloads never overlap
	started atomic.Bool
	stopped chan struct{} // closed when Run returns

	mu      sync.Mutex
	seq     Ticket        // the last ticket issued
	taken   Ticket        // every ticket up to taken is in a reload started (or done)
	pend    pending       // the changes after taken
	okSeq   Ticket        // every ticket up to okSeq was covered by a successful reload
	okOut   Outcome       // that reload
	failSeq Ticket        // every ticket up to failSeq was covered by a reload that failed for good
	failOut Outcome       // that reload
	verdict chan struct{} // closed and replaced whenever okSeq or failSeq moves
}

// pending are the changes not yet taken into a reload.
type pending struct {
	first, last time.Time // of the first and the last change
	reasons     reasons
}

// reasons is a bounded set of distinct change reasons.
type reasons struct {
	list []string
	more int
}

func (rs *reasons) add(r string) {
	switch {
	case r == "" || slices.Contains(rs.list, r):
	case len(rs.list) < maxReasons:
		rs.list = append(rs.list, r)
	default:
		rs.more++
	}
}

func (rs *reasons) merge(o reasons) {
	for _, r := range o.list {
		rs.add(r)
	}
	rs.more += o.more
}

func (rs reasons) slice() []string {
	out := slices.Clone(rs.list)
	if rs.more > 0 {
		out = append(out, fmt.Sprintf("+%d more", rs.more))
	}
	return out
}

// batch is a set of changes being reloaded, kept across retries.
type batch struct {
	upTo    Ticket
	reasons reasons
	attempt int       // attempts made
	at      time.Time // when the next retry is due
	bo      backoff.Backoff
}

// New validates cfg (after applying defaults) and returns a Reloader. It starts
// nothing: call Run to perform coalesced reloads.
func New(cfg Config, set Settings) (*Reloader, error) {
	cfg.ApplyDefaults()
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	r := &Reloader{
		name:    set.Name,
		log:     set.Logger,
		audit:   set.Audit,
		timeout: cfg.Timeout,
		minWait: cfg.MinWait,
		maxWait: cfg.MaxWait,
		retries: *cfg.Retries,
		wake:    make(chan struct{}, 1),
		running: make(chan struct{}, 1),
		stopped: make(chan struct{}),
		verdict: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.audit == nil {
		r.audit = audit.Discard
	}
	m := set.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	r.met = m.forMethod(cfg.Method)
	switch cfg.Method {
	case MethodSignal:
		sig, _ := ParseSignal(cfg.Signal) // validated above
		r.n = &signalNotifier{
			fs:        procFS{dir: "/proc", self: os.Getpid()},
			sig:       sig,
			process:   cfg.Process,
			pidFile:   cfg.PIDFile,
			allowPID1: cfg.AllowPID1,
		}
	case MethodHTTP:
		cfg.Headers = maps.Clone(cfg.Headers)
		h, err := newHTTPNotifier(cfg)
		if err != nil {
			return nil, fmt.Errorf("reload: %w", err)
		}
		r.n = h
	case MethodExec:
		if _, err := exec.LookPath(cfg.Command[0]); err != nil {
			return nil, fmt.Errorf("reload: command[0]: %w; give the path of a program in outrider's container", err)
		}
		r.n = &execNotifier{argv: slices.Clone(cfg.Command), name: set.Name, timeout: cfg.Timeout}
	}
	r.log = r.log.With("component", "reload", "name", set.Name, "method", cfg.Method)
	return r, nil
}

// Notify records that a change happened (reason: the file path; never a value) and
// returns its ticket. It never blocks on a reload. With method none the ticket is
// complete at once.
func (r *Reloader) Notify(reason string) Ticket {
	now := time.Now()
	r.mu.Lock()
	if r.seq == r.taken {
		r.pend.first = now
	}
	r.seq++
	t := r.seq
	r.pend.last = now
	r.pend.reasons.add(reason)
	if r.n == nil {
		r.taken = t
		out := Outcome{Time: now, Method: MethodNone, OK: true, Reasons: r.pend.reasons.slice()}
		r.pend = pending{}
		r.settleLocked(t, out)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return t
}

// Run performs coalesced reloads until ctx is done, then returns nil. A reload
// happens min_wait after the last change, but at most max_wait after the first
// change not yet reloaded; a failed reload is retried up to retries times with
// jittered exponential backoff starting at max_wait. A reload in progress when ctx
// is done is cancelled (a command is killed with its process group). Run may be
// called once.
func (r *Reloader) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("reload: Run called twice; a Reloader has a single Run")
	}
	defer close(r.stopped)
	if r.n == nil {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var retry *batch
	for {
		var fire <-chan time.Time
		if due, ok := r.nextDue(retry); ok {
			timer.Reset(time.Until(due))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
			timer.Stop()
			continue
		case <-fire:
		}
		b := r.take(retry)
		retry = nil
		if b != nil && r.runBatch(ctx, b) {
			retry = b
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// nextDue returns when the next reload is due, if any is.
func (r *Reloader) nextDue(retry *batch) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due time.Time
	ok := false
	if r.seq > r.taken {
		due = r.pend.last.Add(r.minWait)
		if limit := r.pend.first.Add(r.maxWait); limit.Before(due) {
			due = limit
		}
		ok = true
	}
	if retry != nil && (!ok || retry.at.Before(due)) {
		due, ok = retry.at, true
	}
	return due, ok
}

// take returns the batch to reload now: the changes pending, merged into the batch
// being retried if any. New changes give the merged batch a full set of retries.
// It returns nil when a successful reload (ReloadNow) already covered everything.
func (r *Reloader) take(retry *batch) *batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := retry
	if r.seq > r.taken {
		if b == nil {
			b = &batch{bo: backoff.Backoff{
				Initial: r.maxWait,
				Max:     retryBackoffFactor * r.maxWait,
				Jitter:  backoff.JitterFull,
			}}
		} else {
			b.attempt = 0
			b.bo.Reset()
		}
		b.upTo = r.seq
		b.reasons.merge(r.pend.reasons)
		r.taken = r.seq
		r.pend = pending{}
	}
	if b != nil && b.upTo <= r.okSeq {
		return nil
	}
	return b
}

// runBatch makes one attempt at b and records it. It reports whether b is to be
// retried (at b.at).
func (r *Reloader) runBatch(ctx context.Context, b *batch) (retry bool) {
	select {
	case r.running <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	r.mu.Lock()
	covered := b.upTo <= r.okSeq
	r.mu.Unlock()
	if covered || ctx.Err() != nil {
		<-r.running
		return false
	}
	out := r.execute(ctx, b.reasons.slice())
	<-r.running
	b.attempt++
	out.Attempt = b.attempt
	switch {
	case out.OK:
		r.record(out, "")
		r.settle(b.upTo, out)
	case ctx.Err() != nil:
		r.record(out, "outrider is stopping")
	case b.attempt <= r.retries:
		delay := b.bo.Next()
		b.at = time.Now().Add(delay)
		r.record(out, fmt.Sprintf("retry %d of %d in %s", b.attempt, r.retries, delay.Round(time.Millisecond)))
		return true
	default:
		r.record(out, fmt.Sprintf("given up after %d attempts", b.attempt))
		r.settle(b.upTo, out)
	}
	return false
}

// execute makes one reload attempt, bounded by the timeout.
func (r *Reloader) execute(ctx context.Context, reasons []string) Outcome {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	targets, err := r.n.reload(rctx, reasons)
	cancel()
	return Outcome{
		Time:     start,
		Method:   r.n.method(),
		Target:   r.n.target(),
		OK:       err == nil,
		Err:      err,
		Duration: time.Since(start),
		Reasons:  reasons,
		Targets:  targets,
	}
}

// ReloadNow makes one reload attempt at once, without coalescing or retries, and
// records its outcome like any other. It waits for a reload in progress to finish
// first (or returns ctx.Err() when ctx is done before). A success completes every ticket issued before it started; a failure
// completes none, so that Run, if running, still reloads the pending changes. The
// returned error is the Outcome's Err.
func (r *Reloader) ReloadNow(ctx context.Context) (Outcome, error) {
	if r.n == nil {
		return Outcome{Time: time.Now(), Method: MethodNone, OK: true, Attempt: 1}, nil
	}
	select {
	case r.running <- struct{}{}:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	defer func() { <-r.running }()
	r.mu.Lock()
	upTo := r.seq
	var rs []string
	if r.seq > r.taken {
		rs = r.pend.reasons.slice()
	}
	r.mu.Unlock()
	out := r.execute(ctx, rs)
	out.Attempt = 1
	r.record(out, "")
	if !out.OK {
		return out, out.Err
	}
	r.mu.Lock()
	if r.taken < upTo {
		r.taken = upTo
		if r.seq == upTo {
			r.pend = pending{}
		}
	}
	r.settleLocked(upTo, out)
	r.mu.Unlock()
	return out, nil
}

// Wait blocks until the changes of ticket t are reloaded for good, and returns that
// reload: the latest successful reload that started after Notify returned t, or
// else the failed reload that gave up on t after its retries. It returns ctx.Err()
// when ctx is done first, and ErrStopped when Run has returned without settling t.
// Once a success covers t, Wait(t) always returns a success; a failure can be
// overtaken by a later success, so a caller that wants another try calls Notify
// again and waits for the new ticket.
func (r *Reloader) Wait(ctx context.Context, t Ticket) (Outcome, error) {
	stopped := false
	for {
		r.mu.Lock()
		switch {
		case t == 0 || t > r.seq:
			r.mu.Unlock()
			return Outcome{}, fmt.Errorf("reload: ticket %d was not issued by this Reloader's Notify", t)
		case r.okSeq >= t:
			out := r.okOut
			r.mu.Unlock()
			out.Reasons = slices.Clone(out.Reasons)
			return out, nil
		case r.failSeq >= t:
			out := r.failOut
			r.mu.Unlock()
			out.Reasons = slices.Clone(out.Reasons)
			return out, out.Err
		}
		ch := r.verdict
		r.mu.Unlock()
		if stopped {
			return Outcome{}, ErrStopped
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-ch:
		case <-r.stopped:
			stopped = true // look once more: Run may have settled t on its way out
		}
	}
}

func (r *Reloader) settle(upTo Ticket, out Outcome) {
	r.mu.Lock()
	r.settleLocked(upTo, out)
	r.mu.Unlock()
}

func (r *Reloader) settleLocked(upTo Ticket, out Outcome) {
	if out.OK {
		if upTo >= r.okSeq {
			r.okSeq, r.okOut = upTo, out
		}
	} else if upTo >= r.failSeq {
		r.failSeq, r.failOut = upTo, out
	}
	close(r.verdict)
	r.verdict = make(chan struct{})
}

// record reports an attempt: a metric, an audit event and a log line. note says
// what happens next after a failure.
func (r *Reloader) record(out Outcome, note string) {
	r.met.duration.Observe(out.Duration.Seconds())
	ev := audit.Event{
		Time:     out.Time,
		Kind:     audit.KindReload,
		Path:     r.name,
		Duration: out.Duration,
		Detail:   fmt.Sprintf("%s: %s; %d target(s); attempt %d", out.Method, out.Target, out.Targets, out.Attempt),
	}
	attrs := []any{"target", out.Target, "targets", out.Targets, "attempt", out.Attempt,
		"duration", out.Duration, "reasons", out.Reasons}
	if out.OK {
		r.met.ok.Inc()
		ev.Outcome = ResultOK
		r.audit.Record(ev)
		r.log.Info("application reloaded", attrs...)
		return
	}
	r.met.failed.Inc()
	ev.Outcome = ResultError
	ev.Error = out.Err.Error()
	if note != "" {
		ev.Detail += "; " + note
	}
	r.audit.Record(ev)
	r.log.Warn("application reload failed", append(attrs, "error", out.Err, "next", note)...)
}
