package exporterhelper

import (
	"context"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

// Request is one unit of pushing: items cut from one or more source batches, and the
// acknowledgements of the parts of those batches it carries.
type Request[T any] struct {
	// Items are the request's items in arrival order. The push function may read them
	// until it returns and must not keep them after that.
	Items []T
	// Bytes is the sum of the items' sizes.
	Bytes int

	first   time.Time // when the first item was added, for max_wait
	records int       // records of the items, counted only with a record limit
	acks    []pipeline.AckFunc
	budget  *budget
	pool    *sync.Pool
	done    bool
}

// NewRequest returns a request of items whose completion calls ack. It is for Queue
// implementations that rebuild requests (a durable queue reading them back from
// disk); the Batcher makes the requests of a Sender.
func NewRequest[T any](items []T, bytes int, ack pipeline.AckFunc) *Request[T] {
	r := &Request[T]{Items: items, Bytes: bytes}
	if ack != nil {
		r.acks = []pipeline.AckFunc{ack}
	}
	return r
}

// Done finishes the request: it acknowledges every source batch part it carries with
// err (nil: delivered or durably stored; a permanent error: dropped) and returns its
// bytes to the pending budget. Call it once; later calls do nothing. The request and
// its Items must not be used afterwards.
func (r *Request[T]) Done(err error) {
	if r.done {
		return
	}
	r.done = true
	for _, ack := range r.acks {
		if ack != nil {
			ack(err)
		}
	}
	r.release()
}

// Abandon gives the request up without acknowledging anything (the exporter stopped
// before it was delivered, so its sources keep the data), returning its bytes to the
// pending budget.
func (r *Request[T]) Abandon() {
	if r.done {
		return
	}
	r.done = true
	r.release()
}

func (r *Request[T]) release() {
	if r.budget != nil {
		r.budget.release(int64(r.Bytes))
	}
	if r.pool != nil && cap(r.Items) <= maxPooledItems {
		clear(r.Items)
		items := r.Items[:0]
		r.pool.Put(&items)
	}
	r.Items, r.acks, r.budget, r.pool = nil, nil, nil, nil
}

// maxPooledItems keeps a request's item slice out of the pool after an unusually large
// request, so one burst does not pin its memory for ever.
const maxPooledItems = 1 << 16

// budget counts pending bytes and makes acquirers wait while the bound is reached.
type budget struct {
	max   int64
	gauge interface{ Add(float64) }

	mu   sync.Mutex
	used int64
	wake chan struct{} // closed and replaced on every release
}

func newBudget(max int64, gauge interface{ Add(float64) }) *budget {
	return &budget{max: max, gauge: gauge, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting while used+n would exceed max. A request larger than
// max is admitted when nothing else is pending, so it cannot wait for ever.
func (b *budget) acquire(ctx context.Context, n int64, closed <-chan struct{}) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			b.gauge.Add(float64(n))
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-closed:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
	b.gauge.Add(-float64(n))
}

func (b *budget) pending() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
