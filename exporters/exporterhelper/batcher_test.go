package exporterhelper

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

func newTestBatcher(t *testing.T, maxBytes, pending int, wait time.Duration) (*Batcher[item], *MemoryQueue[item], *Metrics) {
	t.Helper()
	q := NewMemoryQueue[item]()
	m := NewMetrics(nil)
	b, err := NewBatcher(BatchConfig{MaxBytes: confval.ByteSize(maxBytes), MaxWait: wait, MaxPendingBytes: confval.ByteSize(pending)},
		Settings{Name: "test", Metrics: m}, itemSize, q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, q, m
}

func sum(r *Request[item]) int {
	n := 0
	for _, i := range r.Items {
		n += int(i)
	}
	return n
}

func TestBatcherMergesSmallBatches(t *testing.T) {
	b, q, _ := newTestBatcher(t, 100, 1000, time.Hour)
	acks := exportertest.NewAcks()
	for i := range 3 {
		if err := b.Add(context.Background(), items(10, 10), acks.Func(i)); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("a request was cut before max_bytes: %d queued", q.Len())
	}
	b.Flush()
	r := getReq(t, q)
	if len(r.Items) != 6 || r.Bytes != 60 || len(r.acks) != 3 {
		t.Fatalf("request has %d items, %d bytes, %d acks; want 6, 60, 3", len(r.Items), r.Bytes, len(r.acks))
	}
	r.Done(nil)
	for i := range 3 {
		if err := acks.Wait(t, i); err != nil {
			t.Fatalf("ack %d = %v", i, err)
		}
	}
	if b.PendingBytes() != 0 {
		t.Fatalf("pending = %d after Done", b.PendingBytes())
	}
}

func TestBatcherCutsAtMaxBytes(t *testing.T) {
	b, q, _ := newTestBatcher(t, 100, 10000, time.Hour)
	acks := exportertest.NewAcks()
	// 250 bytes in one source batch: requests of 100, 100, 50 (the last still filling).
	if err := b.Add(context.Background(), items(30, 30, 40, 50, 50, 30, 20), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	r1, r2 := getReq(t, q), getReq(t, q)
	if sum(r1) != 100 || sum(r2) != 100 || q.Len() != 0 {
		t.Fatalf("requests of %d and %d bytes (+%d queued); want 100, 100, and the rest filling", sum(r1), sum(r2), q.Len())
	}
	b.Flush()
	r3 := getReq(t, q)
	if sum(r3) != 50 {
		t.Fatalf("partial request holds %d bytes, want 50", sum(r3))
	}
	// The split ack fires once, after the last part, with the first error.
	permanent := pipeline.Permanent("bad_request", errors.New("nope"))
	r2.Done(permanent)
	r1.Done(nil)
	if got := acks.Get(1); len(got) != 0 {
		t.Fatalf("acknowledged before every part was done: %v", got)
	}
	r3.Done(nil)
	if err := acks.Wait(t, 1); !errors.Is(err, permanent) {
		t.Fatalf("ack = %v, want the part's permanent error", err)
	}
}

func TestBatcherOversizedItemAlone(t *testing.T) {
	b, q, _ := newTestBatcher(t, 100, 1000, time.Hour)
	if err := b.Add(context.Background(), items(10, 500, 10), nil); err != nil {
		t.Fatal(err)
	}
	r1, r2 := getReq(t, q), getReq(t, q)
	if sum(r1) != 10 || sum(r2) != 500 || len(r2.Items) != 1 {
		t.Fatalf("requests %v, %v; want [10], [500]", r1.Items, r2.Items)
	}
	b.Flush()
	if r3 := getReq(t, q); sum(r3) != 10 {
		t.Fatalf("last request %v, want [10]", r3.Items)
	}
}

func TestBatcherMaxWaitFlush(t *testing.T) {
	b, q, _ := newTestBatcher(t, 1000, 10000, 20*time.Millisecond)
	if err := b.Add(context.Background(), items(1, 2), nil); err != nil {
		t.Fatal(err)
	}
	// No Flush: the request must arrive by itself once max_wait has passed.
	if r := getReq(t, q); sum(r) != 3 {
		t.Fatalf("request %v", r.Items)
	}
	// And again for the next request, which re-arms the timer.
	if err := b.Add(context.Background(), items(4), nil); err != nil {
		t.Fatal(err)
	}
	if r := getReq(t, q); sum(r) != 4 {
		t.Fatalf("request %v", r.Items)
	}
}

func TestBatcherBackpressure(t *testing.T) {
	b, q, m := newTestBatcher(t, 50, 100, time.Hour)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	// 100 bytes fit the budget (requests of 50 and 50 are cut).
	if err := b.Add(context.Background(), items(50, 50), nil); err != nil {
		t.Fatal(err)
	}
	if b.PendingBytes() != 100 {
		t.Fatalf("pending = %d", b.PendingBytes())
	}
	if g := value(t, m.pendingBytes.WithLabelValues("test")); g != 100 {
		t.Fatalf("pending gauge = %v", g)
	}
	// With the budget used up, Add waits; a done context makes it give up at once and
	// the batch stays the caller's.
	if err := b.Add(done, items(10), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add over budget = %v, want context.Canceled", err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- b.Add(context.Background(), items(40), nil) }()
	r1 := getReq(t, q)
	select {
	case err := <-blocked:
		t.Fatalf("Add returned (%v) while the budget was used up", err)
	default:
	}
	r1.Done(nil) // frees 50 bytes
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Add stayed blocked after bytes were freed")
	}
	if b.PendingBytes() != 90 {
		t.Fatalf("pending = %d, want 90", b.PendingBytes())
	}
}

func TestBatcherAdmitsOversizedBatchWhenIdle(t *testing.T) {
	b, q, _ := newTestBatcher(t, 50, 100, time.Hour)
	if err := b.Add(context.Background(), items(50, 50, 50), nil); err != nil {
		t.Fatalf("a batch over max_pending_bytes must be admitted when nothing is pending: %v", err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Add(done, items(1), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add = %v, want to wait", err)
	}
	for range 3 {
		getReq(t, q).Done(nil)
	}
	if err := b.Add(done, items(1), nil); err != nil {
		t.Fatalf("Add after the big batch finished: %v", err)
	}
}

func TestBatcherCloseFlushesAndRejects(t *testing.T) {
	b, q, _ := newTestBatcher(t, 10, 20, time.Hour)
	if err := b.Add(context.Background(), items(5), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(context.Background(), items(5, 10), nil); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- b.Add(context.Background(), items(5), nil) }()
	b.Close()
	b.Close()
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Add = %v, want ErrClosed", err)
	}
	if err := b.Add(context.Background(), items(1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v", err)
	}
	if r1, r2 := getReq(t, q), getReq(t, q); sum(r1) != 10 || sum(r2) != 10 {
		t.Fatalf("requests %v %v", r1.Items, r2.Items)
	}
}

func TestBatcherEmptyBatchAckedAtOnce(t *testing.T) {
	b, _, _ := newTestBatcher(t, 10, 20, time.Hour)
	acks := exportertest.NewAcks()
	if err := b.Add(context.Background(), nil, acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	if err := acks.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
}

// seqItem carries its sequence number apart from its size.
type seqItem struct{ seq, size int }

// TestBatcherRandomSplits checks, over random batch sizes, that every item arrives
// exactly once and in order, that requests respect max_bytes, and that every source
// batch is acknowledged exactly once, only after all requests carrying it are done.
func TestBatcherRandomSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		maxBytes := 20 + rng.IntN(200)
		q := NewMemoryQueue[seqItem]()
		m := NewMetrics(nil)
		b, err := NewBatcher(BatchConfig{MaxBytes: confval.ByteSize(maxBytes), MaxWait: time.Hour, MaxPendingBytes: 1 << 30},
			Settings{Name: "test", Metrics: m}, func(i *seqItem) int { return i.size }, q)
		if err != nil {
			t.Fatal(err)
		}
		acks := exportertest.NewAcks()
		next, nonEmpty := 0, 0
		const batches = 50
		for id := range batches {
			batch := make([]seqItem, rng.IntN(30))
			if len(batch) > 0 {
				nonEmpty++
			}
			for i := range batch {
				batch[i] = seqItem{seq: next, size: 1 + rng.IntN(maxBytes*3/2)}
				next++
			}
			if err := b.Add(context.Background(), batch, acks.Func(id)); err != nil {
				t.Fatal(err)
			}
		}
		b.Flush()
		var got []int
		var reqs []*Request[seqItem]
		for q.Len() > 0 {
			r, _ := q.Get(context.Background())
			total := 0
			for _, it := range r.Items {
				got = append(got, it.seq)
				total += it.size
			}
			if total != r.Bytes {
				t.Fatalf("round %d: request Bytes %d, items sum to %d", round, r.Bytes, total)
			}
			if len(r.Items) > 1 && r.Bytes > maxBytes {
				t.Fatalf("round %d: request of %d items holds %d bytes > max %d", round, len(r.Items), r.Bytes, maxBytes)
			}
			reqs = append(reqs, r)
		}
		if len(got) != next {
			t.Fatalf("round %d: %d items arrived, want %d", round, len(got), next)
		}
		for i := range got {
			if got[i] != i {
				t.Fatalf("round %d: item %d is #%d", round, i, got[i])
			}
		}
		rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
		for i, r := range reqs {
			if i == len(reqs)-1 {
				// Every batch with an item in an earlier request must still wait for its
				// other parts; the count of acks so far must be below the total.
				if acks.Count() == batches {
					t.Fatalf("round %d: all batches acknowledged before the last request was done", round)
				}
			}
			r.Done(nil)
		}
		for id := range batches {
			if err := acks.Wait(t, id); err != nil {
				t.Fatal(err)
			}
		}
		if b.PendingBytes() != 0 {
			t.Fatalf("round %d: pending %d after all done", round, b.PendingBytes())
		}
		if lat := value(t, m.batchLatency.WithLabelValues("test").(prometheus.Metric)); lat != float64(nonEmpty) {
			t.Fatalf("round %d: batch latency observed %v times, want %d", round, lat, nonEmpty)
		}
		b.Close()
	}
}
