package exporterhelper

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/pipeline"
)

// refusingBackend refuses, as a whole, every request holding an item in bad (the
// way a backend refuses a batch for one bad record) and stores the others.
type refusingBackend struct {
	mu     sync.Mutex
	bad    map[item]bool
	whole  func(err error) error // how a refusal is marked
	stored []item
	pushes int
}

func (b *refusingBackend) push(_ context.Context, its []item) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pushes++
	for _, it := range its {
		if b.bad[it] {
			return b.whole(pipeline.Permanent("bad_request", errors.New("one record is invalid")))
		}
	}
	b.stored = append(b.stored, its...)
	return nil
}

// pushAll runs a Sender over push with opts, hands it items as one request and
// returns the acknowledgement once it came.
func pushAll(t *testing.T, m *Metrics, logs *exportertest.LogBuffer, push PushFunc[item], all []item, opts ...Option[item]) error {
	t.Helper()
	cfg := testConfig()
	cfg.Batch.MaxBytes = 1 << 20
	cfg.Batch.MaxPendingBytes = 1 << 20
	set := Settings{Name: "test", Metrics: m}
	if logs != nil {
		set.Logger = logs.Logger()
	}
	s, err := New(cfg, set, itemSize, push, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	if err := s.Add(context.Background(), all, acks.Func(0)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	ackErr := acks.Wait(t, 0)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ackErr
}

func TestSenderSplitsRefusedRequests(t *testing.T) {
	tests := []struct {
		name        string
		bad         []item
		whole       func(error) error
		split       bool
		wantDropped int
		maxPushes   int
	}{
		{"one bad record among 64", []item{17}, Splittable, true, 1, 2*6 + 1},
		{"three bad records", []item{3, 40, 41}, Splittable, true, 3, 40},
		{"all bad", nil, Splittable, true, 64, 127},
		{"not splittable: the whole request is dropped", []item{17}, func(e error) error { return e }, true, 64, 1},
		{"no split function: the whole request is dropped", []item{17}, Splittable, false, 64, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []item
			for i := range 64 {
				all = append(all, item(i+1)) // sizes 1..64: one request
			}
			be := &refusingBackend{bad: map[item]bool{}, whole: tt.whole}
			for _, b := range tt.bad {
				be.bad[b] = true
			}
			if tt.bad == nil {
				for _, it := range all {
					be.bad[it] = true
				}
			}
			m := NewMetrics(nil)
			logs := &exportertest.LogBuffer{}
			var opts []Option[item]
			if tt.split {
				opts = append(opts, WithSplit(Halves[item]))
			}
			ackErr := pushAll(t, m, logs, be.push, all, opts...)
			if _, perm := pipeline.IsPermanent(ackErr); !perm {
				t.Errorf("ack = %v, want the permanent error of the dropped records", ackErr)
			}
			if got := value(t, m.dropped.WithLabelValues("test", "bad_request")); got != float64(tt.wantDropped) {
				t.Errorf("dropped %v, want %d (exactly the refused records)", got, tt.wantDropped)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			if got := value(t, m.sentRecords.WithLabelValues("test")); got != float64(len(be.stored)) {
				t.Errorf("sent records %v, backend stored %d", got, len(be.stored))
			}
			if len(be.stored)+tt.wantDropped != len(all) {
				t.Errorf("stored %d + dropped %d != %d", len(be.stored), tt.wantDropped, len(all))
			}
			slices.Sort(be.stored)
			if len(slices.Compact(slices.Clone(be.stored))) != len(be.stored) {
				t.Errorf("an item was stored twice: %v", be.stored)
			}
			for _, it := range be.stored {
				if be.bad[it] {
					t.Errorf("bad item %d stored", it)
				}
			}
			if be.pushes > tt.maxPushes {
				t.Errorf("%d pushes, want at most %d", be.pushes, tt.maxPushes)
			}
			lines := logs.Lines()
			if len(lines) == 0 || len(lines) > dropLogBurst+1 || !strings.Contains(lines[0], "one record is invalid") {
				t.Errorf("drop log: %d lines, want 1..%d naming the backend's reason: %q", len(lines), dropLogBurst+1, lines)
			}
		})
	}
}

func TestSplitDepthIsBounded(t *testing.T) {
	n := 3 << MaxSplitDepth // more records than 2^MaxSplitDepth parts can isolate
	all := make([]item, n)
	for i := range all {
		all[i] = 1
	}
	pushes := 0
	push := func(context.Context, []item) error {
		pushes++
		return Splittable(pipeline.Permanent("bad_request", errors.New("refused")))
	}
	m := NewMetrics(nil)
	pushAll(t, m, nil, push, all, WithSplit(Halves[item]))
	if max := 2<<MaxSplitDepth - 1; pushes > max {
		t.Errorf("%d pushes for one request, want at most %d", pushes, max)
	}
	if got := value(t, m.dropped.WithLabelValues("test", "bad_request")); got != float64(n) {
		t.Errorf("dropped %v, want %d", got, n)
	}
}
