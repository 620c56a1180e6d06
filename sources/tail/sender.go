package tail

import (
	"context"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

// outBatch is a batch handed over by the reader, waiting to be given to the sink.
type outBatch struct {
	b  pipeline.Batch
	sp *span
}

// outQueue is the FIFO between the reader and the sender. It needs no bound of its
// own: what it holds counts against max_inflight_batches.
type outQueue struct {
	mu sync.Mutex
	q  []outBatch
	c  chan struct{} // signalled on put
}

func newOutQueue() *outQueue { return &outQueue{c: make(chan struct{}, 1)} }

func (o *outQueue) put(b outBatch) {
	o.mu.Lock()
	o.q = append(o.q, b)
	o.mu.Unlock()
	signal(o.c)
}

// take removes the oldest batch, if any.
func (o *outQueue) take() (outBatch, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.q) == 0 {
		return outBatch{}, false
	}
	b := o.q[0]
	o.q[0] = outBatch{}
	o.q = o.q[1:]
	return b, true
}

// sendLoop gives the queued batches to the sink, in order, until ctx is done; the
// batches it could not give are withdrawn (their lines are read again on the next
// start). Export may block while the sink is full: the reader goes on meanwhile, so
// it still notices truncation and rotation.
func (s *Source) sendLoop(ctx context.Context) {
	defer func() {
		for {
			ob, ok := s.out.take()
			if !ok {
				return
			}
			s.withdraw(ob.sp)
		}
	}()
	for {
		ob, ok := s.out.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.out.c:
				continue
			}
		}
		if !s.send(ctx, ob) {
			s.withdraw(ob.sp)
			return
		}
	}
}

// send exports one batch, retrying while the sink refuses it. It returns false when
// ctx ended first.
func (s *Source) send(ctx context.Context, ob outBatch) bool {
	backoff := 100 * time.Millisecond
	for {
		err := s.sink.Export(ctx, ob.b)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.mu.Lock()
		path := ob.sp.t.path
		s.mu.Unlock()
		s.log.Warn("sink refused a batch; retrying", "path", path, "records", len(ob.b.Records), "error", err, "retry_in", backoff)
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
