package exporterhelper

import (
	"context"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// Batcher cuts incoming items into requests and puts them on a Queue. A request is cut
// when it reaches max_bytes, max_wait after its first item, or on Flush/Close; with
// WithRecordCount also when it reaches the maximum number of records. Add
// blocks while max_pending_bytes are accepted but not yet finished (Request.Done or
// Abandon), which is how backpressure reaches the sources.
type Batcher[T any] struct {
	maxBytes int
	maxWait  time.Duration
	size     func(*T) int
	count    func(*T) int // records per item; nil: one
	maxCount int          // records per request; 0: no limit
	out      Queue[T]
	budget   *budget
	m        *instrument
	pool     sync.Pool // *[]T
	lastLen  int       // items in the last request cut, to size new item slices

	mu       sync.Mutex
	cur      *Request[T]
	closed   bool
	closedCh chan struct{}
	timer    *time.Timer
}

// NewBatcher returns a Batcher that sizes items with size and puts requests on out.
// cfg must be valid (ApplyDefaults, Validate).
func NewBatcher[T any](cfg BatchConfig, set Settings, size func(*T) int, out Queue[T], opts ...Option[T]) (*Batcher[T], error) {
	var p confval.Problems
	cfg.Validate(p.At("batch"))
	o := applyOptions(opts)
	o.validate(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	m := set.Metrics.bind(set.Name)
	b := &Batcher[T]{
		maxBytes: int(cfg.MaxBytes),
		maxWait:  cfg.MaxWait,
		size:     size,
		count:    o.count,
		maxCount: o.maxCount,
		out:      out,
		budget:   newBudget(int64(cfg.MaxPendingBytes), m.pending),
		m:        m,
		closedCh: make(chan struct{}),
	}
	b.timer = time.AfterFunc(time.Hour, b.onTimer)
	b.timer.Stop()
	return b, nil
}

// Add accepts items, whose completion is reported to ack (which may be nil). It blocks
// while the pending budget is used up, until ctx is done (returning ctx's error) or the
// Batcher is closed (ErrClosed); then the items stay the caller's. On nil the Batcher
// owns the items and ack is called exactly once — or never, if the exporter stops
// before they are delivered or dropped. Add may be called concurrently.
func (b *Batcher[T]) Add(ctx context.Context, items []T, ack pipeline.AckFunc) error {
	total, records := 0, 0
	for i := range items {
		total += b.size(&items[i])
	}
	if b.maxCount > 0 {
		for i := range items {
			records += b.records(&items[i])
		}
	}
	if err := b.budget.acquire(ctx, int64(total), b.closedCh); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		b.budget.release(int64(total))
		return ErrClosed
	}
	if len(items) == 0 {
		if ack != nil {
			ack(nil)
		}
		return nil
	}
	added := time.Now()
	latency, orig := b.m.latency, ack
	ack = func(err error) {
		latency.Observe(time.Since(added).Seconds())
		if orig != nil {
			orig(err)
		}
	}
	curBytes, curRecords := 0, 0
	if b.cur != nil {
		curBytes, curRecords = b.cur.Bytes, b.cur.records
	}
	if curBytes+total < b.maxBytes && (b.maxCount == 0 || curRecords+records < b.maxCount) {
		// The common case: everything fits into the current request.
		r := b.current(added)
		r.Items = append(r.Items, items...)
		r.Bytes += total
		r.records += records
		r.acks = append(r.acks, ack)
		return nil
	}
	parts := pipeline.Split(ack, b.place(items, nil, added))
	b.place(items, parts, added)
	return nil
}

// place distributes items over requests, cutting full ones, and returns how many
// requests received items. With parts == nil it only counts; otherwise it adds the
// items and gives each request the next part's ack. Both runs take the same decisions.
func (b *Batcher[T]) place(items []T, parts []pipeline.AckFunc, now time.Time) int {
	dry := parts == nil
	curBytes, curRecords, curHas := 0, 0, false
	if b.cur != nil {
		curBytes, curRecords, curHas = b.cur.Bytes, b.cur.records, len(b.cur.Items) > 0
	}
	n, inCur := 0, false
	cut := func() {
		if !dry {
			b.cut()
		}
		curBytes, curRecords, curHas, inCur = 0, 0, false, false
	}
	for i := range items {
		s, c := b.size(&items[i]), 0
		if b.maxCount > 0 {
			c = b.records(&items[i])
		}
		if curHas && (curBytes+s > b.maxBytes || (b.maxCount > 0 && curRecords+c > b.maxCount)) {
			cut()
		}
		if !inCur {
			if !dry {
				r := b.current(now)
				r.acks = append(r.acks, parts[n])
			}
			n++
			inCur = true
		}
		if !dry {
			r := b.cur
			r.Items = append(r.Items, items[i])
			r.Bytes += s
			r.records += c
		}
		curBytes += s
		curRecords += c
		curHas = true
		if curBytes >= b.maxBytes || (b.maxCount > 0 && curRecords >= b.maxCount) {
			cut()
		}
	}
	return n
}

// records returns how many records an item holds.
func (b *Batcher[T]) records(it *T) int {
	if b.count == nil {
		return 1
	}
	return b.count(it)
}

// current returns the request being filled, starting one (and its max_wait timer)
// when there is none.
func (b *Batcher[T]) current(now time.Time) *Request[T] {
	if b.cur == nil {
		r := &Request[T]{first: now, budget: b.budget, pool: &b.pool}
		if p, ok := b.pool.Get().(*[]T); ok {
			r.Items = *p
		} else if b.lastLen > 0 {
			r.Items = make([]T, 0, b.lastLen+b.lastLen/8)
		}
		b.cur = r
		b.timer.Reset(b.maxWait)
	}
	return b.cur
}

// cut hands the current request, if any, to the queue.
func (b *Batcher[T]) cut() {
	r := b.cur
	if r == nil {
		return
	}
	b.cur = nil
	b.lastLen = len(r.Items)
	b.timer.Stop()
	b.out.Put(r)
}

func (b *Batcher[T]) onTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return
	}
	if left := b.maxWait - time.Since(b.cur.first); left > 0 {
		// A stale firing for an earlier request: wait out this one's max_wait.
		b.timer.Reset(left)
		return
	}
	b.cut()
}

// Flush cuts the request being filled now, without waiting for max_wait.
func (b *Batcher[T]) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut()
}

// Close flushes the request being filled and makes Add (including Adds waiting for
// budget) return ErrClosed. It does not close the queue. Idempotent.
func (b *Batcher[T]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	close(b.closedCh)
	b.cut()
	b.timer.Stop()
}

// PendingBytes returns the bytes accepted and not yet finished.
func (b *Batcher[T]) PendingBytes() int64 { return b.budget.pending() }
