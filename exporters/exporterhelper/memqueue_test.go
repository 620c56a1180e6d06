package exporterhelper

import (
	"context"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestMemoryQueueFIFO(t *testing.T) {
	q := NewMemoryQueue[item]()
	for i := range 200 {
		q.Put(&Request[item]{Items: items(i)})
	}
	if q.Len() != 200 {
		t.Fatalf("Len = %d", q.Len())
	}
	for i := range 150 {
		if r := getReq(t, q); int(r.Items[0]) != i {
			t.Fatalf("got %d, want %d", r.Items[0], i)
		}
	}
	q.Put(&Request[item]{Items: items(200)})
	for i := 150; i <= 200; i++ {
		if r := getReq(t, q); int(r.Items[0]) != i {
			t.Fatalf("got %d, want %d", r.Items[0], i)
		}
	}
}

func TestMemoryQueueGetWaitsForPut(t *testing.T) {
	q := NewMemoryQueue[item]()
	got := make(chan *Request[item])
	go func() { got <- getReq(t, q) }()
	q.Put(&Request[item]{Items: items(7)})
	if r := <-got; r.Items[0] != 7 {
		t.Fatalf("got %v", r.Items)
	}
}

func TestMemoryQueueCloseDrainsThenStops(t *testing.T) {
	q := NewMemoryQueue[item]()
	q.Put(&Request[item]{Items: items(1)})
	q.Close()
	q.Close()
	if r := getReq(t, q); r.Items[0] != 1 {
		t.Fatalf("got %v", r.Items)
	}
	if _, ok := q.Get(context.Background()); ok {
		t.Fatal("Get on a closed, empty queue returned a request")
	}
	b := newBudget(100, nopGauge{})
	_ = b.acquire(context.Background(), 10, nil)
	acked := false
	q.Put(&Request[item]{Items: items(10), Bytes: 10, budget: b, acks: []pipeline.AckFunc{func(error) { acked = true }}})
	if b.pending() != 0 || acked {
		t.Fatalf("Put after Close must abandon the request (release its bytes without ack), pending=%d", b.pending())
	}
}

func TestMemoryQueueWakesAllWaitersOnClose(t *testing.T) {
	q := NewMemoryQueue[item]()
	done := make(chan bool)
	for range 3 {
		go func() {
			_, ok := q.Get(context.Background())
			done <- ok
		}()
	}
	q.Close()
	for range 3 {
		if <-done {
			t.Fatal("Get returned a request from an empty closed queue")
		}
	}
}

func TestMemoryQueueGetHonoursContext(t *testing.T) {
	q := NewMemoryQueue[item]()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		_, ok := q.Get(ctx)
		done <- ok
	}()
	cancel()
	if <-done {
		t.Fatal("Get returned a request after cancel")
	}
}

type nopGauge struct{}

func (nopGauge) Add(float64) {}
