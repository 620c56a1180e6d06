package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/secrets/audit"
)

type recordingSink struct {
	mu   sync.Mutex
	recs []pipeline.Record
	fail bool
}

func (s *recordingSink) Export(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("closed")
	}
	s.recs = append(s.recs, b.Records...)
	return nil
}

func (s *recordingSink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.recs {
		out = append(out, r.Line)
	}
	return out
}

func TestAuditLogToStreamAndLog(t *testing.T) {
	var logs bytes.Buffer
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	a := newAuditLog(slog.New(slog.NewJSONHandler(&logs, nil)), map[string]string{"service": "shop"}, dropped)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	sink := &recordingSink{fail: true}
	a.setSink(sink, nil)
	a.Record(audit.Event{Kind: audit.KindRotate, Path: "database/creds/app", Outcome: "ok", TTL: time.Minute})
	a.Record(audit.Event{Kind: audit.KindReload, Outcome: "error", Error: "app answered 500"})
	time.Sleep(50 * time.Millisecond)
	sink.mu.Lock()
	sink.fail = false
	sink.mu.Unlock()
	a.setSink(sink, nil)

	deadline := time.Now().Add(5 * time.Second)
	for len(sink.lines()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := sink.lines()
	if len(got) != 2 || !strings.Contains(got[0], `"kind":"rotate"`) || !strings.Contains(got[1], `"outcome":"error"`) {
		t.Fatalf("audit records after a failed export: %q", got)
	}
	sink.mu.Lock()
	r := sink.recs[0]
	sink.mu.Unlock()
	if r.Stream.Get("source") != auditSource || r.Stream.Get("service") != "shop" {
		t.Errorf("audit stream labels %v", r.Stream.Labels)
	}
	if !strings.Contains(logs.String(), `"msg":"audit","component":"audit","kind":"rotate"`) {
		t.Errorf("audit not in the agent log: %s", logs.String())
	}
}

func TestAuditLogBounded(t *testing.T) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	a := newAuditLog(discard(), nil, dropped)
	for i := 0; i < auditBuffer+10; i++ {
		a.Record(audit.Event{Kind: audit.KindFetch, Outcome: "ok"})
	}
	if len(a.buf) != auditBuffer {
		t.Errorf("buffer holds %d, want %d", len(a.buf), auditBuffer)
	}
}

// traceRecorder is a TraceSink keeping what it gets.
type traceRecorder struct {
	mu  sync.Mutex
	got []ptrace.Traces
}

func (r *traceRecorder) ExportTraces(_ context.Context, b pipeline.TraceBatch) error {
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(b.Data)
	if err != nil {
		return err
	}
	if td.SpanCount() != b.Spans {
		return fmt.Errorf("batch says %d spans, holds %d", b.Spans, td.SpanCount())
	}
	r.mu.Lock()
	r.got = append(r.got, td)
	r.mu.Unlock()
	b.Done(nil)
	return nil
}

func TestAuditSpansWhenTracingIsOn(t *testing.T) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	a := newAuditLog(discard(), nil, dropped)
	a.setIdentity(map[string]string{"service": "shop"}, map[string]string{"service.name": "shop", "k8s.pod.name": "shop-0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	traces := &traceRecorder{}
	a.setSink(&recordingSink{}, traces)
	now := time.Now()
	a.Record(audit.Event{Time: now, Kind: audit.KindRotate, Path: "database/creds/app", Outcome: "ok", Duration: 2 * time.Second, Version: 3})
	a.Record(audit.Event{Time: now, Kind: audit.KindReload, Outcome: "error", Error: "app answered 500"})
	deadline := time.Now().Add(5 * time.Second)
	spans := ptrace.NewSpanSlice()
	for time.Now().Before(deadline) && spans.Len() < 2 {
		traces.mu.Lock()
		for _, td := range traces.got {
			if v, _ := td.ResourceSpans().At(0).Resource().Attributes().Get("k8s.pod.name"); v.Str() != "shop-0" {
				t.Errorf("audit span resource %v", td.ResourceSpans().At(0).Resource().Attributes().AsRaw())
			}
			td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().MoveAndAppendTo(spans)
		}
		traces.got = nil
		traces.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	if spans.Len() != 2 {
		t.Fatalf("%d audit spans, want 2", spans.Len())
	}
	rot, rel := spans.At(0), spans.At(1)
	if rot.Name() != "outrider.secrets rotate" || rot.Events().Len() != 1 || rot.Events().At(0).Name() != "rotate" {
		t.Errorf("rotate span %q with %d events", rot.Name(), rot.Events().Len())
	}
	if d := rot.EndTimestamp().AsTime().Sub(rot.StartTimestamp().AsTime()); d != 2*time.Second {
		t.Errorf("rotate span lasts %v, want the operation's 2s", d)
	}
	if v, _ := rot.Events().At(0).Attributes().Get("outrider.audit.path"); v.Str() != "database/creds/app" {
		t.Errorf("span event attributes %v", rot.Events().At(0).Attributes().AsRaw())
	}
	if v, _ := rot.Attributes().Get("outrider.audit.version"); v.Int() != 3 {
		t.Errorf("version attribute %v", rot.Attributes().AsRaw())
	}
	if rel.Status().Code() != ptrace.StatusCodeError || rel.Status().Message() != "app answered 500" {
		t.Errorf("failed reload span status %v %q", rel.Status().Code(), rel.Status().Message())
	}
	if rot.TraceID().IsEmpty() || rot.SpanID().IsEmpty() || rot.TraceID() == rel.TraceID() {
		t.Error("audit spans need their own valid IDs")
	}
}
