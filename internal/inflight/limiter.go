// Package inflight bounds what the push receivers hold in memory at once: the bytes
// of the requests being read, decoded and stored (Limiter), and the connections open
// on a listener (Listener). Past either limit a request is refused at once — the
// receiver answers 429 / RESOURCE_EXHAUSTED and the client retries — or the connection
// is closed, so load never turns into memory.
package inflight

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is returned when the bytes asked for are not free in time.
var ErrBusy = errors.New("too many request bytes in memory")

// Limiter is a weighted semaphore of bytes shared by one receiver's requests.
type Limiter struct {
	sem  *semaphore.Weighted
	max  int64
	wait time.Duration
}

// New returns a Limiter of max bytes; Acquire waits at most wait for room.
func New(max int64, wait time.Duration) *Limiter {
	return &Limiter{sem: semaphore.NewWeighted(max), max: max, wait: wait}
}

// Max returns the limiter's size in bytes.
func (l *Limiter) Max() int64 { return l.max }

// Acquire reserves n bytes (at most Max), waiting until they are free, the limiter's
// wait has passed or ctx is done; then it returns ErrBusy.
func (l *Limiter) Acquire(ctx context.Context, n int64) (*Reservation, error) {
	n = min(max(n, 0), l.max)
	if l.sem.TryAcquire(n) {
		return &Reservation{l: l, n: n}, nil
	}
	if l.wait <= 0 {
		return nil, ErrBusy
	}
	wctx, cancel := context.WithTimeout(ctx, l.wait)
	defer cancel()
	if err := l.sem.Acquire(wctx, n); err != nil {
		return nil, ErrBusy
	}
	return &Reservation{l: l, n: n}, nil
}

// TryAcquire reserves n bytes if they are free now.
func (l *Limiter) TryAcquire(n int64) (*Reservation, bool) {
	n = min(max(n, 0), l.max)
	if !l.sem.TryAcquire(n) {
		return nil, false
	}
	return &Reservation{l: l, n: n}, true
}

// Reservation is the bytes one request holds. Its methods are safe for concurrent
// use; Release may be called more than once.
type Reservation struct {
	l  *Limiter
	mu sync.Mutex
	n  int64
}

// Bytes returns how many bytes r holds.
func (r *Reservation) Bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Resize makes r hold n bytes: growing takes the difference only if it is free now
// (false otherwise, and r is unchanged); shrinking returns the difference at once.
// Growing never waits: a request that holds bytes and waits for more could wait
// for one that does the same.
func (r *Reservation) Resize(n int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(max(n, 0), r.l.max)
	switch {
	case n > r.n:
		if !r.l.sem.TryAcquire(n - r.n) {
			return false
		}
	case n < r.n:
		r.l.sem.Release(r.n - n)
	}
	r.n = n
	return true
}

// Release returns every byte r holds.
func (r *Reservation) Release() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 {
		r.l.sem.Release(r.n)
		r.n = 0
	}
}
