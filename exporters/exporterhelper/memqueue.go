package exporterhelper

import (
	"context"
	"sync"
)

// Queue carries requests from the Batcher to the workers that push them.
//
// This is where a durable queue plugs in: its Put writes the request to disk and then
// calls r.Done(nil), which acknowledges the sources (their data is durable) and frees
// the Batcher's budget; its Get reads requests back (also after a restart) and returns
// them built with NewRequest, with an ack that marks them consumed on disk.
type Queue[T any] interface {
	// Put enqueues r. It must not block for long: the Batcher calls it with its lock
	// held, and the Batcher's byte budget already bounds what is in memory.
	Put(r *Request[T])
	// Get returns the oldest request, waiting for one. It returns false when ctx is done,
	// or when the queue is closed and empty.
	Get(ctx context.Context) (*Request[T], bool)
	// Close tells Get to return false once the queue is empty. Put after Close is a
	// programming error of the caller; implementations may drop such requests
	// unacknowledged.
	Close()
	// Len returns the number of requests waiting.
	Len() int
}

// MemoryQueue is an in-memory FIFO Queue. It is unbounded by count; its memory is
// bounded by the Batcher's max_pending_bytes, which covers queued requests.
type MemoryQueue[T any] struct {
	mu     sync.Mutex
	items  []*Request[T]
	head   int
	closed bool
	ready  chan struct{} // capacity 1: a request may be waiting
	done   chan struct{} // closed by Close
}

// NewMemoryQueue returns an empty MemoryQueue.
func NewMemoryQueue[T any]() *MemoryQueue[T] {
	return &MemoryQueue[T]{ready: make(chan struct{}, 1), done: make(chan struct{})}
}

var _ Queue[int] = (*MemoryQueue[int])(nil)

// Put implements Queue.
func (q *MemoryQueue[T]) Put(r *Request[T]) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		r.Abandon()
		return
	}
	q.items = append(q.items, r)
	q.mu.Unlock()
	q.signal()
}

func (q *MemoryQueue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Get implements Queue.
func (q *MemoryQueue[T]) Get(ctx context.Context) (*Request[T], bool) {
	for {
		if ctx.Err() != nil {
			return nil, false
		}
		q.mu.Lock()
		if q.head < len(q.items) {
			r := q.items[q.head]
			q.items[q.head] = nil
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			} else if q.head > 64 && q.head*2 > len(q.items) {
				n := copy(q.items, q.items[q.head:])
				clear(q.items[n:])
				q.items, q.head = q.items[:n], 0
			}
			more := q.head < len(q.items)
			q.mu.Unlock()
			if more {
				q.signal()
			}
			return r, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-q.ready:
		case <-q.done:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// Close implements Queue. It is idempotent.
func (q *MemoryQueue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// Len implements Queue.
func (q *MemoryQueue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}
