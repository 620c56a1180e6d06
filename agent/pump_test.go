package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	otlprecv "github.com/outrider-dev/outrider/agent/otlp"
	"github.com/outrider-dev/outrider/agent/pipeline"
	"github.com/outrider-dev/outrider/exporters/queue/disk"
)

// queueEntry builds a queue entry as the receiver stores it.
func queueEntry(t *testing.T, k otlprecv.Kind) []byte {
	t.Helper()
	var data []byte
	var n int
	switch k {
	case otlprecv.KindTraces:
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{1})
		var m ptrace.ProtoMarshaler
		data, _ = m.MarshalTraces(td)
		n = 1
	case otlprecv.KindLogs:
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		lrs.AppendEmpty().Body().SetStr("one")
		lrs.AppendEmpty().Body().SetStr("two")
		var m plog.ProtoMarshaler
		data, _ = m.MarshalLogs(ld)
		n = 2
	}
	// The same framing the receiver writes: kind, uvarint count, request.
	return append([]byte{byte(k), byte(n)}, data...)
}

type batchSinks struct {
	mu    sync.Mutex
	spans int
	lines []string
	bad   int
}

func (s *batchSinks) ExportTraces(_ context.Context, b pipeline.TraceBatch) error {
	s.mu.Lock()
	s.spans += b.Spans
	s.mu.Unlock()
	b.Done(nil)
	return nil
}

func (s *batchSinks) Export(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	for _, r := range b.Records {
		s.lines = append(s.lines, r.Line)
	}
	s.mu.Unlock()
	b.Done(nil)
	return nil
}

func TestPumpDeliversAcksAndSkipsBadEntries(t *testing.T) {
	q, err := disk.Open(disk.Config{}, disk.Settings{Name: "mixed", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	for _, e := range [][]byte{queueEntry(t, otlprecv.KindTraces), {9, 9, 9}, queueEntry(t, otlprecv.KindLogs)} {
		if err := q.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	sinks := &batchSinks{}
	p := &pump{name: "mixed", q: q, traces: sinks, logs: sinks, log: discard(), bad: func() { sinks.mu.Lock(); sinks.bad++; sinks.mu.Unlock() }}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := q.Len(); n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("pump: %v", err)
	}
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	if sinks.spans != 1 || len(sinks.lines) != 2 || sinks.bad != 1 {
		t.Fatalf("spans %d, lines %v, bad %d; want 1 span, 2 lines, 1 bad entry", sinks.spans, sinks.lines, sinks.bad)
	}
	if n, _ := q.Len(); n != 0 {
		t.Errorf("%d entries left unacknowledged", n)
	}
}
