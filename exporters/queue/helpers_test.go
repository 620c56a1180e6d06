package queue

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrider-dev/outrider/agent/pipeline"
)

// value reads a counter or gauge; for a histogram it returns the sample count.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	t.Fatalf("unsupported metric %v", &d)
	return 0
}

// item is the test payload: its size is its value.
type item int

func itemSize(i *item) int { return int(*i) }

func items(sizes ...int) []item {
	out := make([]item, len(sizes))
	for i, s := range sizes {
		out[i] = item(s)
	}
	return out
}

// ackRecorder records acknowledgements.
type ackRecorder struct {
	mu   sync.Mutex
	errs map[int][]error
	ch   chan int
}

func newAckRecorder() *ackRecorder {
	return &ackRecorder{errs: map[int][]error{}, ch: make(chan int, 1000)}
}

func (a *ackRecorder) ack(id int) pipeline.AckFunc {
	return func(err error) {
		a.mu.Lock()
		a.errs[id] = append(a.errs[id], err)
		a.mu.Unlock()
		a.ch <- id
	}
}

func (a *ackRecorder) get(id int) []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs[id]...)
}

// wait waits for the ack of id (generous deadline; never a timing assertion).
func (a *ackRecorder) wait(t *testing.T, id int) error {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if errs := a.get(id); len(errs) > 0 {
			if len(errs) > 1 {
				t.Fatalf("batch %d acknowledged %d times", id, len(errs))
			}
			return errs[0]
		}
		select {
		case <-a.ch:
		case <-deadline:
			t.Fatalf("batch %d was never acknowledged", id)
		}
	}
}

func getReq(t *testing.T, q Queue[item]) *Request[item] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, ok := q.Get(ctx)
	if !ok {
		t.Fatal("no request arrived")
	}
	return r
}

// logBuffer is a concurrency-safe slog destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, nil))
}
