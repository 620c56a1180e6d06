package exporterhelper

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// backend is a scripted push function.
type backend struct {
	mu     sync.Mutex
	pushes [][]item
	calls  atomic.Int64
	reply  func(call int64, items []item) error
	pushed chan struct{}
}

func newBackend(reply func(call int64, items []item) error) *backend {
	return &backend{reply: reply, pushed: make(chan struct{}, 1000)}
}

func (b *backend) push(ctx context.Context, its []item) error {
	n := b.calls.Add(1)
	var err error
	if b.reply != nil {
		err = b.reply(n, its)
	}
	if err == nil {
		b.mu.Lock()
		b.pushes = append(b.pushes, append([]item(nil), its...))
		b.mu.Unlock()
	}
	select {
	case b.pushed <- struct{}{}:
	default:
	}
	return err
}

func (b *backend) delivered() [][]item {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]item(nil), b.pushes...)
}

func testConfig() Config {
	c := Config{
		Batch:       BatchConfig{MaxBytes: 100, MaxWait: time.Hour, MaxPendingBytes: 1000},
		Retry:       RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
		Concurrency: 1,
		Timeout:     5 * time.Second,
	}
	c.ApplyDefaults()
	return c
}

func newTestSender(t *testing.T, cfg Config, be *backend, logs *exportertest.LogBuffer) (*Sender[item], *Metrics) {
	t.Helper()
	m := NewMetrics(nil)
	set := Settings{Name: "test", Metrics: m}
	if logs != nil {
		set.Logger = logs.Logger()
	}
	s, err := New(cfg, set, itemSize, be.push)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, m
}

func TestSenderDelivers(t *testing.T) {
	be := newBackend(nil)
	s, m := newTestSender(t, testConfig(), be, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	for i := range 5 {
		if err := s.Add(context.Background(), items(30, 30), acks.Func(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := acks.Wait(t, i); err != nil {
			t.Fatalf("ack %d = %v", i, err)
		}
	}
	total := 0
	for _, p := range be.delivered() {
		for _, it := range p {
			total += int(it)
		}
	}
	if total != 300 {
		t.Fatalf("backend received %d bytes, want 300", total)
	}
	if v := value(t, m.sentRecords.WithLabelValues("test")); v != 10 {
		t.Errorf("sent records %v", v)
	}
	if v := value(t, m.sentBytes.WithLabelValues("test")); v != 300 {
		t.Errorf("sent bytes %v", v)
	}
	if v := value(t, m.pendingBytes.WithLabelValues("test")); v != 0 {
		t.Errorf("pending gauge %v after delivery", v)
	}
}

func TestSenderRetryThenSuccess(t *testing.T) {
	acks := exportertest.NewAcks()
	be := newBackend(func(call int64, _ []item) error {
		if len(acks.Get(1)) > 0 {
			t.Errorf("acknowledged before delivery (push call %d)", call)
		}
		switch call {
		case 1:
			return pipeline.Retryable(errors.New("503 service unavailable"), 0)
		case 2:
			return pipeline.Retryable(errors.New("429 slow down"), 10*time.Millisecond)
		case 3:
			return errors.New("connection reset") // unclassified: retried
		}
		return nil
	})
	s, m := newTestSender(t, testConfig(), be, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(context.Background(), items(100), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	if err := acks.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v", err)
	}
	if n := be.calls.Load(); n != 4 {
		t.Fatalf("%d push calls, want 4", n)
	}
	if d := be.delivered(); len(d) != 1 {
		t.Fatalf("delivered %d times, want once", len(d))
	}
	if v := value(t, m.retries.WithLabelValues("test")); v != 3 {
		t.Errorf("retries %v, want 3", v)
	}
	if v := value(t, m.requests.WithLabelValues("test", ResultRetry)); v != 3 {
		t.Errorf("requests{result=retry} %v, want 3", v)
	}
}

func TestSenderPermanentDrop(t *testing.T) {
	logs := &exportertest.LogBuffer{}
	rejected := pipeline.Permanent("out_of_order", errors.New("entry out of order"))
	be := newBackend(func(int64, []item) error { return rejected })
	s, m := newTestSender(t, testConfig(), be, logs)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	if err := s.Add(context.Background(), items(40, 40, 20), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	err := acks.Wait(t, 1)
	if reason, ok := pipeline.IsPermanent(err); !ok || reason != "out_of_order" {
		t.Fatalf("ack = %v, want the permanent error", err)
	}
	if n := be.calls.Load(); n != 1 {
		t.Fatalf("pushed %d times; a permanent error must not be retried", n)
	}
	if v := value(t, m.dropped.WithLabelValues("test", "out_of_order")); v != 3 {
		t.Errorf("dropped records %v, want 3", v)
	}
	lines := logs.Lines()
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want one: %q", len(lines), lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["exporter"] != "test" || rec["reason"] != "out_of_order" || rec["records"] != float64(3) ||
		!strings.Contains(rec["error"].(string), "entry out of order") {
		t.Fatalf("log line %v lacks exporter, reason, record count or error", rec)
	}
}

func TestSenderMaxElapsedDrops(t *testing.T) {
	cfg := testConfig()
	cfg.Retry.MaxElapsed = 20 * time.Millisecond
	be := newBackend(func(int64, []item) error { return errors.New("down") })
	s, m := newTestSender(t, cfg, be, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	if err := s.Add(context.Background(), items(100), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	if reason, _ := pipeline.IsPermanent(acks.Wait(t, 1)); reason != ReasonRetriesExhausted {
		t.Fatalf("reason %q", reason)
	}
	if v := value(t, m.dropped.WithLabelValues("test", ReasonRetriesExhausted)); v != 1 {
		t.Errorf("dropped %v", v)
	}
}

func TestSenderShutdownFlushesPartialBatch(t *testing.T) {
	be := newBackend(nil)
	s, _ := newTestSender(t, testConfig(), be, nil) // max_wait 1h: only Shutdown flushes
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	if err := s.Add(context.Background(), items(5, 5), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := acks.Get(1); len(got) != 1 || got[0] != nil {
		t.Fatalf("after Shutdown acks = %v, want one nil", got)
	}
	if d := be.delivered(); len(d) != 1 || len(d[0]) != 2 {
		t.Fatalf("delivered %v", d)
	}
}

func TestSenderBuffersBeforeStart(t *testing.T) {
	be := newBackend(nil)
	cfg := testConfig()
	cfg.Batch.MaxWait = time.Millisecond
	s, _ := newTestSender(t, cfg, be, nil)
	acks := exportertest.NewAcks()
	if err := s.Add(context.Background(), items(10), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := acks.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
}

func TestSenderShutdownWithoutStart(t *testing.T) {
	be := newBackend(nil)
	s, _ := newTestSender(t, testConfig(), be, nil)
	acks := exportertest.NewAcks()
	if err := s.Add(context.Background(), items(10), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown without Start = %v", err)
		}
	}
	if err := s.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Shutdown = %v, want ErrClosed", err)
	}
	if err := s.Add(context.Background(), items(1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Shutdown = %v, want ErrClosed", err)
	}
	if be.calls.Load() != 0 || len(acks.Get(1)) != 0 {
		t.Fatal("a Sender never started pushed or acknowledged")
	}
}

func TestSenderShutdownDeadlineLeavesUnacked(t *testing.T) {
	be := newBackend(func(int64, []item) error { return pipeline.Retryable(errors.New("503"), 0) })
	s, _ := newTestSender(t, testConfig(), be, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	// Two full requests: one being retried, one queued behind it (concurrency 1).
	if err := s.Add(context.Background(), items(100, 100), acks.Func(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-be.pushed:
	case <-time.After(10 * time.Second):
		t.Fatal("no push attempt")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 requests undelivered") {
		t.Fatalf("Shutdown = %v, want a deadline error naming 2 undelivered requests", err)
	}
	if got := acks.Get(1); len(got) != 0 {
		t.Fatalf("undelivered batch acknowledged: %v", got)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

func TestSenderConcurrency(t *testing.T) {
	const workers = 3
	var inFlight atomic.Int64
	release := make(chan struct{})
	reached := make(chan struct{})
	var once sync.Once
	be := newBackend(func(int64, []item) error {
		if inFlight.Add(1) == workers {
			once.Do(func() { close(reached) })
		}
		<-release
		inFlight.Add(-1)
		return nil
	})
	cfg := testConfig()
	cfg.Concurrency = workers
	s, _ := newTestSender(t, cfg, be, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(context.Background(), items(100, 100, 100), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d pushes in flight at once, want %d", inFlight.Load(), workers)
	}
	close(release)
}

func TestSenderMemoryBounded(t *testing.T) {
	release := make(chan struct{})
	be := newBackend(func(int64, []item) error { <-release; return nil })
	cfg := testConfig()
	s, _ := newTestSender(t, cfg, be, nil)
	defer close(release)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	accepted := 0
	for accepted < 10000 {
		if err := s.Add(done, items(10, 20, 30), nil); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			break
		}
		accepted++
	}
	if p := s.PendingBytes(); p > int64(cfg.Batch.MaxPendingBytes) {
		t.Fatalf("pending %d bytes > max_pending_bytes %d", p, cfg.Batch.MaxPendingBytes)
	}
	if accepted*60 > int(cfg.Batch.MaxPendingBytes) {
		t.Fatalf("accepted %d bytes with the backend stuck, bound is %d", accepted*60, cfg.Batch.MaxPendingBytes)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Batch: BatchConfig{MaxBytes: -1}}, Settings{Name: "x"}, itemSize, newBackend(nil).push)
	if err == nil || !confval.IsConfigError(err) || !strings.Contains(err.Error(), "batch.max_bytes") {
		t.Fatalf("New with a bad config = %v", err)
	}
}
