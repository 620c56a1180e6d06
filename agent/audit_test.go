package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/agent/pipeline"
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
	a.setSink(sink)
	a.Record(audit.Event{Kind: audit.KindRotate, Path: "database/creds/app", Outcome: "ok", TTL: time.Minute})
	a.Record(audit.Event{Kind: audit.KindReload, Outcome: "error", Error: "app answered 500"})
	time.Sleep(50 * time.Millisecond)
	sink.mu.Lock()
	sink.fail = false
	sink.mu.Unlock()
	a.setSink(sink)

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
