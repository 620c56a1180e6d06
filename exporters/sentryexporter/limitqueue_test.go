package sentryexporter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
)

// queued makes a request of one envelope with the given categories, tagged by name.
func queued(name string, cats ...string) *exporterhelper.Request[*envelope] {
	env := &envelope{eventID: name, cats: cats, key: strings.Join(cats, ";"), data: []byte(name)}
	return exporterhelper.NewRequest([]*envelope{env}, len(name), nil)
}

func getName(t *testing.T, q *limitQueue) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, ok := q.Get(ctx)
	if !ok {
		t.Fatal("no envelope handed out")
	}
	return r.Items[0].eventID
}

func TestLimitQueueOrderAcrossLanes(t *testing.T) {
	q := newLimitQueue(newRateLimits(), 10)
	for _, r := range []*exporterhelper.Request[*envelope]{
		queued("e1", "error"), queued("t1", "transaction"), queued("e2", "error"), queued("a1", "attachment", "error"), queued("t2", "transaction"),
	} {
		q.Put(r)
	}
	var got []string
	for range 5 {
		got = append(got, getName(t, q))
	}
	if strings.Join(got, ",") != "e1,t1,e2,a1,t2" {
		t.Errorf("order %v, want arrival order", got)
	}
	if q.Len() != 0 || len(q.lanes) != 0 {
		t.Errorf("len %d, %d lanes left", q.Len(), len(q.lanes))
	}
}

func TestLimitQueueSkipsLimitedCategory(t *testing.T) {
	t.Parallel() // waits out a real rate limit
	limits := newRateLimits()
	q := newLimitQueue(limits, 10)
	start := time.Now()
	limits.apply(parseRateLimits("1:error"), start)
	deadline := start.Add(time.Second)
	q.Put(queued("e1", "error"))
	q.Put(queued("a1", "attachment", "error")) // any limited category holds the envelope
	q.Put(queued("t1", "transaction"))
	if got := getName(t, q); got != "t1" {
		t.Fatalf("got %s, want the transaction while errors are limited", got)
	}
	// The error envelopes come once the limit has passed, in order.
	if got := getName(t, q); got != "e1" {
		t.Fatalf("got %s, want e1", got)
	}
	if now := time.Now(); now.Before(deadline) {
		t.Fatalf("error envelope handed out %v before its limit passed", deadline.Sub(now))
	}
	if got := getName(t, q); got != "a1" {
		t.Fatalf("got %s, want a1", got)
	}
}

func TestLimitQueueSlots(t *testing.T) {
	q := newLimitQueue(newRateLimits(), 1)
	for _, n := range []string{"e1", "e2", "e3"} {
		q.Put(queued(n, "error"))
	}
	ctx := context.Background()
	r1, _ := q.Get(ctx)
	got := make(chan *exporterhelper.Request[*envelope], 1)
	go func() {
		r, _ := q.Get(ctx)
		got <- r
	}()
	select {
	case r := <-got:
		t.Fatalf("handed out %s while the only slot was taken", r.Items[0].eventID)
	default:
	}
	// Parking the first envelope frees its slot for the next.
	q.park(r1.Items[0])
	r2 := <-got
	if r2.Items[0].eventID != "e2" {
		t.Fatalf("got %s, want e2", r2.Items[0].eventID)
	}
	// The parked envelope takes its slot again when it is sent; a finished one frees it.
	q.unpark(r1.Items[0])
	q.finish(r2.Items[0])
	if q.active != 1 {
		t.Fatalf("%d active, want 1 (the unparked envelope)", q.active)
	}
	q.finish(r1.Items[0])
	q.finish(r1.Items[0]) // finishing twice frees one slot only
	if q.active != 0 {
		t.Fatalf("%d active after finishing both, want 0", q.active)
	}
	if got := getName(t, q); got != "e3" {
		t.Fatalf("got %s, want e3", got)
	}
}

func TestLimitQueueClose(t *testing.T) {
	limits := newRateLimits()
	q := newLimitQueue(limits, 2)
	limits.apply(parseRateLimits("60:error"), time.Now())
	q.Put(queued("e1", "error"))
	q.Put(queued("t1", "transaction"))
	q.Close()
	q.Close()
	// A closed queue still hands out what may be sent...
	if got := getName(t, q); got != "t1" {
		t.Fatalf("got %s, want t1", got)
	}
	// ...and waits for limited envelopes rather than dropping them.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		_, ok := q.Get(ctx)
		done <- ok
	}()
	cancel()
	if <-done {
		t.Fatal("Get handed out a limited envelope")
	}
	if q.Len() != 1 {
		t.Fatalf("len %d, want the limited envelope still queued", q.Len())
	}
	// Put after Close abandons the request: no acknowledgement.
	acked := false
	env := &envelope{cats: []string{"error"}, key: "error"}
	q.Put(exporterhelper.NewRequest([]*envelope{env}, 1, func(error) { acked = true }))
	if acked || q.Len() != 1 {
		t.Fatalf("Put after Close: acked %v, len %d", acked, q.Len())
	}
	// An empty closed queue ends Get.
	empty := newLimitQueue(newRateLimits(), 1)
	empty.Close()
	if _, ok := empty.Get(context.Background()); ok {
		t.Fatal("Get on an empty closed queue")
	}
}

func TestLimitQueueManyWaiters(t *testing.T) {
	q := newLimitQueue(newRateLimits(), 4)
	const n = 200
	got := make(chan string, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 8 {
		go func() {
			for {
				r, ok := q.Get(ctx)
				if !ok {
					return
				}
				got <- r.Items[0].eventID
				q.finish(r.Items[0])
			}
		}()
	}
	for i := range n {
		cat := "error"
		if i%3 == 0 {
			cat = "transaction"
		}
		q.Put(queued(string(rune('a'+i%26))+cat, cat))
	}
	deadline := time.After(15 * time.Second)
	for range n {
		select {
		case <-got:
		case <-deadline:
			t.Fatal("not every envelope was handed out")
		}
	}
	if q.Len() != 0 {
		t.Fatalf("len %d", q.Len())
	}
}
