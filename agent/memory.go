package agent

import (
	"log/slog"
	"time"

	"github.com/outrider-dev/outrider/internal/memtrim"
)

// idleRelease returns memory to the kernel when the agent goes quiet after work
// (runtime.idle_release): it samples the allocation counter on a ticker in the
// agent's loop, and memtrim.Policy says when to release.
type idleRelease struct {
	logger  *slog.Logger
	every   time.Duration
	ticker  *time.Ticker
	policy  *memtrim.Policy
	warned  bool
	allocs  func() uint64
	release func() (int64, error)
}

func newIdleRelease(logger *slog.Logger) *idleRelease {
	return &idleRelease{logger: logger, policy: memtrim.NewPolicy(), allocs: memtrim.Allocated, release: memtrim.Release}
}

// set starts, changes or stops (0) the ticker.
func (r *idleRelease) set(every time.Duration) {
	if every == r.every {
		return
	}
	r.every = every
	switch {
	case every <= 0 && r.ticker != nil:
		r.ticker.Stop()
		r.ticker = nil
	case every <= 0:
	case r.ticker == nil:
		r.ticker = time.NewTicker(every)
	default:
		r.ticker.Reset(every)
	}
}

// C is the ticker's channel; nil (never ready) when off.
func (r *idleRelease) C() <-chan time.Time {
	if r.ticker == nil {
		return nil
	}
	return r.ticker.C
}

// tick samples the allocation counter and releases when the policy says so.
func (r *idleRelease) tick() {
	if r.policy.Next(r.allocs()) {
		r.run("quiet after work")
	}
}

// startUp releases once the agent's units have started: start-up's work (building
// the components, the first secret render) is not done again, and an agent that
// ships a backlog from its first second never has a quiet interval for tick to find,
// so it would keep those pages mapped through it. (The agent command unmaps what
// package initialisation touched before it reads the configuration.) Measured on
// the 1M-line bench-logs run: peak RSS 37 MB, 22 MB of them the executable's pages,
// before; ~22 MB with both releases. every is runtime.idle_release; 0 turns this off
// with the rest.
func (r *idleRelease) startUp(every time.Duration, point string) {
	if every > 0 {
		r.run(point)
	}
}

// run returns the memory now.
func (r *idleRelease) run(why string) {
	began := time.Now()
	advised, err := r.release()
	if err != nil && !r.warned {
		r.warned = true // the kernel will not do it (before 5.4): say so once
		r.logger.Warn("cannot page out the executable; the free heap is still returned", "error", err)
	}
	r.logger.Debug("returned memory to the kernel", "when", why, "executable_bytes", advised, "took", time.Since(began))
}

func (r *idleRelease) stop() { r.set(0) }
