// Package exportertest holds the test helpers the exporters share: a recorder of
// batch acknowledgements, a concurrency-safe log destination, a metric reader, a
// starter that shuts a component down when the test ends, and a request body reader
// for fake backends. It is for tests only.
package exportertest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/pipeline"
)

// ackDeadline bounds Acks.Wait: a generous deadline for "eventually", never a timing
// assertion.
const ackDeadline = 15 * time.Second

// Acks records the acknowledgements of batches by an id the test chooses. It is safe
// for concurrent use, by any number of waiters.
type Acks struct {
	mu      sync.Mutex
	got     map[int][]error
	changed chan struct{} // closed and replaced at every acknowledgement
}

// NewAcks returns an empty Acks.
func NewAcks() *Acks { return &Acks{got: map[int][]error{}, changed: make(chan struct{})} }

// Func returns the AckFunc of batch id; it records every call.
func (a *Acks) Func(id int) pipeline.AckFunc {
	return func(err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.got[id] = append(a.got[id], err)
		close(a.changed)
		a.changed = make(chan struct{})
	}
}

// Get returns the errors batch id was acknowledged with so far, one per call.
func (a *Acks) Get(id int) []error {
	errs, _ := a.get(id)
	return errs
}

func (a *Acks) get(id int) ([]error, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.got[id]...), a.changed
}

// Count returns how many batches were acknowledged at least once.
func (a *Acks) Count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

// Wait waits for the acknowledgement of batch id and returns its error. It fails the
// test if the batch is acknowledged more than once or not within a generous deadline.
func (a *Acks) Wait(t testing.TB, id int) error {
	t.Helper()
	deadline := time.After(ackDeadline)
	for {
		errs, changed := a.get(id)
		if len(errs) > 0 {
			if len(errs) != 1 {
				t.Fatalf("batch %d acknowledged %d times", id, len(errs))
			}
			return errs[0]
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("batch %d was never acknowledged", id)
		}
	}
}

// LogBuffer is a concurrency-safe destination for log lines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns the lines written so far, without empty ones at the end.
func (l *LogBuffer) Lines() []string {
	s := strings.TrimSpace(l.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Logger returns a JSON logger writing to l.
func (l *LogBuffer) Logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// Metric returns the sum over the samples of family name whose labels include want
// (nil: every sample) of a counter's or gauge's value, a histogram's sample count. It
// returns 0 when there is no such sample.
func Metric(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// shutdownTimeout bounds the Shutdown that Start registers.
const shutdownTimeout = 2 * time.Second

// Start starts c and has it shut down (within two seconds) when the test ends.
func Start(t testing.TB, c pipeline.Component) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = c.Shutdown(ctx)
	})
}

// SentBody reads a request's body for a fake backend and remembers whether the
// connection ended before the body did. An exporter abandons a request whose
// context ends (a Shutdown whose deadline passes cancels the sends in flight), and
// the server then sees the body cut short: that is no malformed request, and the
// exporter counts it as not delivered. A body that arrived whole and does not
// decode is one.
type SentBody struct {
	r   io.Reader
	err error // the first error other than io.EOF the connection gave
}

// NewSentBody reads body (a request's Body).
func NewSentBody(body io.Reader) *SentBody { return &SentBody{r: body} }

// Read implements io.Reader.
func (b *SentBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// Abandoned reports whether the client went away before sending the whole body.
func (b *SentBody) Abandoned() bool { return b.err != nil }
