package exporterhelper

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// PushFunc sends one request's items to the backend. It classifies failures with
// pipeline.Permanent (the backend rejected the data: drop it) and pipeline.Retryable
// (with the backend's Retry-After, if any); any other error is retried. It must honour
// ctx, which carries the attempt's timeout, and must not keep items after it returns.
type PushFunc[T any] func(ctx context.Context, items []T) error

// Sender is the whole stack an exporter wraps around its PushFunc:
// Batcher → Queue → Concurrency workers → Retrier (with per-attempt timeout) → push.
//
// It follows pipeline.Component: Start returns at once, having started the workers;
// Shutdown stops accepting, flushes the request being filled, lets the workers push
// what is queued until its ctx is done and then aborts them, leaving undelivered
// requests unacknowledged. Shutdown is safe without Start and more than once.
type Sender[T any] struct {
	name        string
	log         *slog.Logger
	m           *instrument
	concurrency int
	push        PushFunc[T]
	batcher     *Batcher[T]
	queue       Queue[T]
	retrier     *Retrier
	opts        options[T]

	mu       sync.Mutex
	started  bool
	stopping bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	done     chan struct{}

	undelivered atomic.Int64

	// The drop log: at most dropLogBurst lines at once, then one per second, the
	// others counted.
	dropLog           *rate.Limiter
	dropLogSuppressed atomic.Int64
}

const dropLogBurst = 10

// New builds a Sender. size returns an item's size in bytes, used for batching and the
// pending budget. cfg gets no defaults here: call cfg.ApplyDefaults first.
func New[T any](cfg Config, set Settings, size func(*T) int, push PushFunc[T], opts ...Option[T]) (*Sender[T], error) {
	return NewWithQueue[T](cfg, set, size, push, NewMemoryQueue[T](), opts...)
}

// NewWithQueue is New with the Queue between the Batcher and the workers given, for
// a durable queue.
func NewWithQueue[T any](cfg Config, set Settings, size func(*T) int, push PushFunc[T], q Queue[T], opts ...Option[T]) (*Sender[T], error) {
	var p confval.Problems
	cfg.Validate(&p)
	if size == nil || push == nil {
		p.Addf("", "exporter %q: size and push functions are required", set.Name)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	b, err := NewBatcher(cfg.Batch, set, size, q, opts...)
	if err != nil {
		return nil, err
	}
	r, err := NewRetrier(cfg.Retry, cfg.Timeout, set)
	if err != nil {
		return nil, err
	}
	return &Sender[T]{
		name:        set.Name,
		log:         set.logger(),
		m:           set.Metrics.bind(set.Name),
		concurrency: cfg.Concurrency,
		push:        push,
		batcher:     b,
		queue:       q,
		retrier:     r,
		opts:        applyOptions(opts),
		done:        make(chan struct{}),
		dropLog:     rate.NewLimiter(rate.Every(time.Second), dropLogBurst),
	}, nil
}

// Start starts the workers and returns. ctx is not kept: the workers run until
// Shutdown. Start after Shutdown returns ErrClosed; a second Start does nothing.
func (s *Sender[T]) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return ErrClosed
	}
	if s.started {
		return nil
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for range s.concurrency {
		s.wg.Go(func() { s.work(ctx) })
	}
	go func() {
		s.wg.Wait()
		close(s.done)
	}()
	return nil
}

// Add hands items to the Batcher; see Batcher.Add. Before Start, items are buffered
// up to max_pending_bytes.
func (s *Sender[T]) Add(ctx context.Context, items []T, ack pipeline.AckFunc) error {
	return s.batcher.Add(ctx, items, ack)
}

// RecordSize sizes records for a Sender[pipeline.Record].
func RecordSize(r *pipeline.Record) int { return r.Size() }

// Shutdown stops accepting items, flushes the partial request, and waits for the
// workers to push everything queued until ctx is done; then it aborts the pushes in
// flight and returns an error saying how much was left undelivered (and
// unacknowledged, so sources keep it).
func (s *Sender[T]) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	started := s.started
	s.mu.Unlock()

	s.batcher.Close()
	s.queue.Close()
	if !started {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	<-s.done
	left := int64(s.queue.Len()) + s.undelivered.Load()
	if left == 0 {
		return nil
	}
	return fmt.Errorf("exporter %s: shutdown deadline passed with %d requests undelivered; they were not acknowledged, so their sources keep the records for the next start: %w",
		s.name, left, ctx.Err())
}

func (s *Sender[T]) work(ctx context.Context) {
	for {
		r, ok := s.queue.Get(ctx)
		if !ok {
			return
		}
		var o outcome
		s.deliver(ctx, r.Items, 0, &o)
		s.finish(r, &o)
	}
}

// outcome is what became of a request pushed whole or in parts.
type outcome struct {
	dropped int   // records dropped
	first   error // the first permanent error: the request's acknowledgement
	stopped error // not permanent: the exporter stopped before every part was pushed
}

// deliver pushes items through the Retrier; when the backend refuses them as a whole
// and the exporter can split them (WithSplit), it delivers the parts instead. Records
// of a part refused for good are counted as dropped, once, and logged.
func (s *Sender[T]) deliver(ctx context.Context, items []T, depth int, o *outcome) {
	err := s.retrier.Do(ctx, func(actx context.Context) error { return s.push(actx, items) })
	records := s.opts.records(items)
	if err == nil {
		s.m.sentRecords.Add(float64(records))
		return
	}
	reason, ok := pipeline.IsPermanent(err)
	if !ok {
		o.stopped = err
		return
	}
	if s.opts.split != nil && depth < MaxSplitDepth {
		if parts := s.opts.split(items, err); len(parts) > 1 {
			for _, p := range parts {
				if s.deliver(ctx, p, depth+1, o); o.stopped != nil {
					return
				}
			}
			return
		}
	}
	dropped := records
	if n := pipeline.RejectedCount(err); n > 0 && n < dropped {
		// The backend stored the rest of the part.
		dropped = n
		s.m.sentRecords.Add(float64(records - n))
	}
	s.m.dropped.WithLabelValues(reason).Add(float64(dropped))
	o.dropped += dropped
	if o.first == nil {
		o.first = err
	}
	if s.dropLog.Allow() {
		s.log.Error("dropped records the backend rejected",
			"reason", reason, "records", dropped, "request_records", records, "split_depth", depth,
			"lines_suppressed", s.dropLogSuppressed.Swap(0), "error", err)
	} else {
		s.dropLogSuppressed.Add(1)
	}
}

func (s *Sender[T]) finish(r *Request[T], o *outcome) {
	if o.stopped != nil {
		// Stopped before delivery: do not acknowledge, so the sources keep the data
		// (parts already delivered are sent again: at least once).
		s.undelivered.Add(1)
		r.Abandon()
		return
	}
	if o.first == nil {
		s.m.sentBytes.Add(float64(r.Bytes))
	}
	r.Done(o.first)
}

// Flush hands the request being filled to the workers now, without waiting for
// max_wait.
func (s *Sender[T]) Flush() { s.batcher.Flush() }

// PendingBytes returns the bytes accepted and not yet delivered or dropped.
func (s *Sender[T]) PendingBytes() int64 { return s.batcher.PendingBytes() }
