package sentryexporter

import (
	"context"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
)

// limitQueue is the exporterhelper.Queue between the exporter's Batcher and its workers. It
// knows Sentry's rate limits, so that an envelope of a limited category waits here,
// holding no worker, while envelopes of other categories pass it:
//
//   - Get hands out the oldest envelope none of whose categories is limited now;
//     when every waiting envelope is limited, it waits for the earliest deadline (or
//     a Put, or a free slot).
//   - At most maxActive envelopes are out at once ("active": being sent). A worker
//     whose envelope turned out to be limited while it was in flight (Sentry answered
//     429) parks it: the envelope stays with that worker's retrier until the
//     deadline, but gives its slot back, so the other workers keep sending. The
//     exporter runs more workers than slots for this.
//
// Envelopes are kept in lanes, one per set of categories, so a Get looks at a few
// lanes rather than at every waiting envelope. Order is first in, first out among
// the envelopes that may be sent.
type limitQueue struct {
	limits    *rateLimits
	maxActive int
	now       func() time.Time

	mu     sync.Mutex
	lanes  map[string]*lane
	n      int    // envelopes waiting
	seq    uint64 // next arrival number
	active int    // envelopes out and not parked
	closed bool
	ready  chan struct{} // capacity 1: an envelope or a slot may be available
	done   chan struct{} // closed by Close
}

// lane is the waiting envelopes of one set of categories, in arrival order.
type lane struct {
	key  string
	cats []string
	reqs []*exporterhelper.Request[*envelope]
	head int
}

func newLimitQueue(limits *rateLimits, maxActive int) *limitQueue {
	return &limitQueue{
		limits:    limits,
		maxActive: maxActive,
		now:       time.Now,
		lanes:     map[string]*lane{},
		ready:     make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

var _ exporterhelper.Queue[*envelope] = (*limitQueue)(nil)

// Put implements exporterhelper.Queue. Every request holds one envelope (the exporter caps
// requests at one record).
func (q *limitQueue) Put(r *exporterhelper.Request[*envelope]) {
	if len(r.Items) == 0 {
		r.Done(nil)
		return
	}
	env := r.Items[0]
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		r.Abandon()
		return
	}
	l := q.lanes[env.key]
	if l == nil {
		l = &lane{key: env.key, cats: env.cats}
		q.lanes[env.key] = l
	}
	env.seq = q.seq
	q.seq++
	l.reqs = append(l.reqs, r)
	q.n++
	q.mu.Unlock()
	q.signal()
}

func (q *limitQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Get implements exporterhelper.Queue: it returns the oldest envelope that may be sent now,
// waiting for one. It returns false when ctx is done, or when the queue is closed and
// empty. A closed queue still hands out its envelopes as their limits pass.
func (q *limitQueue) Get(ctx context.Context) (*exporterhelper.Request[*envelope], bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if ctx.Err() != nil {
			return nil, false
		}
		r, wake, ok := q.take()
		if ok {
			return r, true
		}
		q.mu.Lock()
		empty, closed := q.n == 0, q.closed
		q.mu.Unlock()
		if empty && closed {
			return nil, false
		}
		var tc <-chan time.Time
		if !wake.IsZero() {
			d := max(wake.Sub(q.now()), time.Millisecond)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tc = timer.C
		}
		done := q.done
		if closed {
			done = nil // closed for ever: waiting on it would spin
		}
		select {
		case <-q.ready:
		case <-done:
		case <-tc:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// take removes and returns the oldest envelope that may be sent now. Otherwise it
// returns the earliest time a waiting envelope's limit passes (zero when none is
// limited, or no slot is free).
func (q *limitQueue) take() (r *exporterhelper.Request[*envelope], wake time.Time, ok bool) {
	q.mu.Lock()
	if q.n == 0 || q.active >= q.maxActive {
		q.mu.Unlock()
		return nil, time.Time{}, false
	}
	now := q.now()
	var best *lane
	for _, l := range q.lanes {
		if until, _ := q.limits.until(l.cats, now); !until.IsZero() {
			if wake.IsZero() || until.Before(wake) {
				wake = until
			}
			continue
		}
		if best == nil || l.reqs[l.head].Items[0].seq < best.reqs[best.head].Items[0].seq {
			best = l
		}
	}
	if best == nil {
		q.mu.Unlock()
		return nil, wake, false
	}
	r = best.pop()
	if best.head == len(best.reqs) {
		delete(q.lanes, best.key)
	}
	q.n--
	q.active++
	r.Items[0].active = true
	more := q.n > 0 && q.active < q.maxActive
	q.mu.Unlock()
	if more {
		q.signal()
	}
	return r, time.Time{}, true
}

func (l *lane) pop() *exporterhelper.Request[*envelope] {
	r := l.reqs[l.head]
	l.reqs[l.head] = nil
	l.head++
	if l.head > 64 && l.head*2 > len(l.reqs) {
		n := copy(l.reqs, l.reqs[l.head:])
		clear(l.reqs[n:])
		l.reqs, l.head = l.reqs[:n], 0
	}
	return r
}

// park gives back the slot of an envelope that waits in its worker for a rate limit.
func (q *limitQueue) park(env *envelope) { q.release(env) }

// unpark takes a slot again for an envelope about to be sent. It does not wait for a
// free slot: an envelope coming back from a rate limit may briefly take the number of
// envelopes in flight over maxActive.
func (q *limitQueue) unpark(env *envelope) {
	q.mu.Lock()
	if !env.active {
		env.active = true
		q.active++
	}
	q.mu.Unlock()
}

// finish gives back the slot of an envelope delivered or dropped.
func (q *limitQueue) finish(env *envelope) { q.release(env) }

func (q *limitQueue) release(env *envelope) {
	q.mu.Lock()
	freed := env.active
	if freed {
		env.active = false
		q.active--
	}
	q.mu.Unlock()
	if freed {
		q.signal()
	}
}

// Close implements exporterhelper.Queue. It is idempotent.
func (q *limitQueue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// Len implements exporterhelper.Queue: the envelopes waiting, limited or not.
func (q *limitQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
