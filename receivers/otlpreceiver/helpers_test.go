package otlpreceiver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/pipeline"
)

// memQueue is an Appender keeping entries in memory; err, when set, is returned.
type memQueue struct {
	mu      sync.Mutex
	entries [][]byte
	err     error
}

func (q *memQueue) Append(_ context.Context, e []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.entries = append(q.entries, append([]byte(nil), e...))
	return nil
}

func (q *memQueue) setErr(err error) { q.mu.Lock(); q.err = err; q.mu.Unlock() }

// traces decodes every stored entry as traces.
func (q *memQueue) traces(t *testing.T) []ptrace.Traces {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []ptrace.Traces
	for _, e := range q.entries {
		k, n, data, err := DecodeEntry(e)
		if err != nil || k != KindTraces {
			t.Fatalf("entry: kind %v err %v", k, err)
		}
		var u ptrace.ProtoUnmarshaler
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			t.Fatalf("stored traces do not decode: %v", err)
		}
		if td.SpanCount() != n {
			t.Fatalf("entry says %d spans, holds %d", n, td.SpanCount())
		}
		out = append(out, td)
	}
	return out
}

func (q *memQueue) logs(t *testing.T) []plog.Logs {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []plog.Logs
	for _, e := range q.entries {
		k, n, data, err := DecodeEntry(e)
		if err != nil || k != KindLogs {
			t.Fatalf("entry: kind %v err %v", k, err)
		}
		var u plog.ProtoUnmarshaler
		ld, err := u.UnmarshalLogs(data)
		if err != nil || ld.LogRecordCount() != n {
			t.Fatalf("stored logs: %v, %d records, entry says %d", err, ld.LogRecordCount(), n)
		}
		out = append(out, ld)
	}
	return out
}

func (q *memQueue) raw() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var b strings.Builder
	for _, e := range q.entries {
		b.Write(e)
	}
	return b.String()
}

// fakeRedactor replaces each listed value with "[REDACTED]".
type fakeRedactor []string

func (f fakeRedactor) Empty() bool { return len(f) == 0 }
func (f fakeRedactor) Redact(s string) (string, bool) {
	out := s
	for _, v := range f {
		out = strings.ReplaceAll(out, v, "[REDACTED]")
	}
	return out, out != s
}

// startReceiver starts a receiver on free loopback ports.
func startReceiver(t *testing.T, cfg Config, set Settings) *Receiver {
	t.Helper()
	if cfg.GRPC.Listen == "" {
		cfg.GRPC.Listen = "127.0.0.1:0"
	}
	if cfg.HTTP.Listen == "" {
		cfg.HTTP.Listen = "127.0.0.1:0"
	}
	cfg.ApplyDefaults()
	r := New(cfg, set)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r
}

var (
	traceA = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanA  = pcommon.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

// testTraces builds n valid spans (a parent and children) under one resource, plus
// invalid spans without IDs.
func testTraces(n, invalid int, resAttrs map[string]string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for k, v := range resAttrs {
		rs.Resource().Attributes().PutStr(k, v)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("test")
	for i := 0; i < n; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(traceA)
		id := spanA
		id[7] = byte(i + 1)
		s.SetSpanID(id)
		if i > 0 {
			s.SetParentSpanID(spanA)
		}
		s.SetName(fmt.Sprintf("op-%d", i))
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Unix(1700000000, 0)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Unix(1700000001, 0)))
		s.Attributes().PutStr("http.method", "GET")
	}
	for i := 0; i < invalid; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetName("no-ids")
	}
	return td
}

func testLogs(bodies ...string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, b := range bodies {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(b)
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetTraceID(traceA)
		lr.SetSpanID(spanA)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(1700000000, 0)))
		lr.Attributes().PutStr("request_id", "req-1")
		lr.Attributes().PutInt("http.status_code", 500)
	}
	return ld
}

var _ = pipeline.ErrFull
