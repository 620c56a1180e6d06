package otlpexporter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/pipeline"
)

// Integration tests against a real Jaeger v2 (internal/jaegertest; `make backends`
// builds it), which ingests OTLP with the same receiver as Tempo.

// crossServiceTrace returns one trace across two resources, as two separate batches:
// checkout's root span with a child, and payments' span that is a child of the root.
func crossServiceTrace(trace uint64) (checkout, payments ptrace.Traces) {
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	span := func(ss ptrace.ScopeSpans, id, parent uint64, name string, kind ptrace.SpanKind, at time.Duration) {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(traceID(trace))
		s.SetSpanID(spanID(id))
		if parent != 0 {
			s.SetParentSpanID(spanID(parent))
		}
		s.SetName(name)
		s.SetKind(kind)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(at)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(at + 5*time.Millisecond)))
		s.Attributes().PutInt("seq", int64(id))
	}
	resource := func(td ptrace.Traces, service string) ptrace.ScopeSpans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		rs.Resource().Attributes().PutStr("k8s.pod.name", service+"-0")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("outrider.test")
		return ss
	}
	checkout, payments = ptrace.NewTraces(), ptrace.NewTraces()
	ss := resource(checkout, "checkout")
	span(ss, 1, 0, "POST /orders", ptrace.SpanKindServer, 0)
	span(ss, 2, 1, "INSERT orders", ptrace.SpanKindClient, time.Millisecond)
	ss = resource(payments, "payments")
	span(ss, 3, 1, "charge", ptrace.SpanKindServer, 2*time.Millisecond)
	return checkout, payments
}

// checkJaegerTrace waits for the trace in Jaeger and checks its spans, parent links
// and resources.
func checkJaegerTrace(t *testing.T, j *jaegertest.Jaeger, trace uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := traceID(trace).String()
	spans, err := j.WaitForTrace(ctx, id, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 3 {
		t.Fatalf("jaeger has %d spans of trace %s, want 3: %+v", len(spans), id, spans)
	}
	root := spanID(1).String()
	want := []struct{ name, service, parent string }{
		{"POST /orders", "checkout", ""},
		{"INSERT orders", "checkout", root},
		{"charge", "payments", root},
	}
	for i, w := range want {
		s := spans[i]
		if s.Name != w.name || s.Service != w.service || s.ParentSpanID != w.parent || s.TraceID != id {
			t.Errorf("span %d = %s of %s, parent %q, trace %s; want %s of %s, parent %q", i, s.Name, s.Service, s.ParentSpanID, s.TraceID, w.name, w.service, w.parent)
		}
		if s.Resource["k8s.pod.name"] != w.service+"-0" || s.Scope != "outrider.test" {
			t.Errorf("span %s: resource %v, scope %q", s.Name, s.Resource, s.Scope)
		}
	}
	if spans[0].SpanID != root {
		t.Errorf("root span ID %s, want %s", spans[0].SpanID, root)
	}
}

func TestJaegerReceivesSpans(t *testing.T) {
	j := jaegertest.Shared(t)
	tests := []struct {
		name, protocol, endpoint, compression string
	}{
		{"grpc gzip", ProtocolGRPC, "http://" + j.OTLPGRPCEndpoint(), CompressionGzip},
		{"grpc none", ProtocolGRPC, "http://" + j.OTLPGRPCEndpoint(), CompressionNone},
		{"http gzip", ProtocolHTTP, j.OTLPHTTPEndpoint(), CompressionGzip},
		{"http none", ProtocolHTTP, j.OTLPHTTPEndpoint(), CompressionNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trace := rand.Uint64() // the shared Jaeger outlives a test run (-count)
			cfg := testConfig(tt.endpoint, tt.protocol)
			cfg.Compression = tt.compression
			cfg.Batch.MaxWait = time.Hour // both batches in one request, cut by Flush
			cfg.Headers = map[string]confval.Secret{"X-Scope-OrgID": "team-a"}
			h := newHarness(t, cfg)
			checkout, payments := crossServiceTrace(trace)
			a := exportertest.NewAcks()
			for n, td := range []ptrace.Traces{checkout, payments} {
				if err := h.exp.ExportTraces(context.Background(), batch(t, td, a.Func(n))); err != nil {
					t.Fatal(err)
				}
			}
			h.exp.Flush()
			for n := range 2 {
				if err := a.Wait(t, n); err != nil {
					t.Fatalf("ack %d = %v", n, err)
				}
			}
			if v := h.sent(t); v != 3 {
				t.Errorf("sent %v spans, want 3", v)
			}
			if v := h.metric(t, "outrider_exporter_requests_total", map[string]string{"exporter": "tempo", "result": "success"}); v != 1 {
				t.Errorf("%v successful requests, want the two batches in one", v)
			}
			checkJaegerTrace(t, j, trace)
		})
	}
}

// TestJaegerOutage stops Jaeger with spans in flight: they stay unacknowledged while it
// is down, and arrive once it is back.
func TestJaegerOutage(t *testing.T) {
	j := jaegertest.Start(t)
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			endpoint := "http://" + j.OTLPGRPCEndpoint()
			if proto == ProtocolHTTP {
				endpoint = j.OTLPHTTPEndpoint()
			}
			h := newHarness(t, testConfig(endpoint, proto))
			j.Stop()
			trace := rand.Uint64()
			checkout, payments := crossServiceTrace(trace)
			a := exportertest.NewAcks()
			for n, td := range []ptrace.Traces{checkout, payments} {
				if err := h.exp.ExportTraces(context.Background(), batch(t, td, a.Func(n))); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for h.metric(t, "outrider_exporter_retries_total", map[string]string{"exporter": "tempo"}) < 3 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if a.Count() != 0 {
				t.Fatalf("acknowledged while jaeger was down: %v %v", a.Get(0), a.Get(1))
			}
			ctx, cancel := context.WithTimeout(context.Background(), jaegertest.ReadyTimeout)
			defer cancel()
			if err := j.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			for n := range 2 {
				if err := a.Wait(t, n); err != nil {
					t.Fatalf("ack %d = %v", n, err)
				}
			}
			checkJaegerTrace(t, j, trace)
		})
	}
}

// TestJaegerRefusedBatchDoesNotTakeOthersDown puts a batch the real Jaeger cannot
// decode between two good ones in one request: Jaeger refuses the whole request (HTTP
// 400, gRPC Internal "unmarshalling"), the exporter pushes the batches apart, and
// only the bad batch's spans are dropped, counted once.
func TestJaegerRefusedBatchDoesNotTakeOthersDown(t *testing.T) {
	j := jaegertest.Shared(t)
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			endpoint := "http://" + j.OTLPGRPCEndpoint()
			if proto == ProtocolHTTP {
				endpoint = j.OTLPHTTPEndpoint()
			}
			cfg := testConfig(endpoint, proto)
			cfg.Batch.MaxWait = time.Hour // one request, cut by Flush
			h := newHarness(t, cfg)
			trace := rand.Uint64()
			checkout, payments := crossServiceTrace(trace)
			a := exportertest.NewAcks()
			bad := pipeline.TraceBatch{Data: []byte{0x0f, 0x01}, Spans: 4, Ack: a.Func(1)} // wire type 7: no decoder takes it
			for _, b := range []pipeline.TraceBatch{batch(t, checkout, a.Func(0)), bad, batch(t, payments, a.Func(2))} {
				if err := h.exp.ExportTraces(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			h.exp.Flush()
			for n := range 3 {
				a.Wait(t, n)
			}
			if v := h.dropped(t, ReasonBadRequest); v != 4 {
				t.Errorf("dropped %v spans, want the bad batch's 4:\n%s", v, h.log.String())
			}
			if v := h.sent(t); v != 3 {
				t.Errorf("sent %v spans, want the good batches' 3", v)
			}
			checkJaegerTrace(t, j, trace)
		})
	}
}
