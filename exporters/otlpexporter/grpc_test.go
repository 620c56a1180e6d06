package otlpexporter

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// grpcCall is one Export as the fake backend saw it.
type grpcCall struct {
	at          time.Time
	md          metadata.MD
	compression string
	traces      ptrace.Traces
	err         error
}

// fakeGRPC is an OTLP gRPC backend on 127.0.0.1 that answers each call as scripted.
type fakeGRPC struct {
	ptraceotlp.UnimplementedGRPCServer
	answer func(call int, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error)
	addr   string
	srv    *grpc.Server

	mu    sync.Mutex
	calls []grpcCall
}

type compressionKey struct{}

// compressionSeen records each call's grpc-encoding, which gRPC keeps out of metadata.
type compressionSeen struct{}

func (*compressionSeen) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, compressionKey{}, new(string))
}

func (*compressionSeen) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok {
		if p, ok := ctx.Value(compressionKey{}).(*string); ok {
			*p = h.Compression
		}
	}
}
func (*compressionSeen) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (*compressionSeen) HandleConn(context.Context, stats.ConnStats) {}

func newFakeGRPC(t *testing.T, tlsCfg *tls.Config, answer func(int, ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error), extra ...grpc.ServerOption) *fakeGRPC {
	t.Helper()
	f := &fakeGRPC{answer: answer}
	opts := append([]grpc.ServerOption{grpc.StatsHandler(&compressionSeen{})}, extra...)
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	f.srv = grpc.NewServer(opts...)
	ptraceotlp.RegisterGRPCServer(f.srv, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	go func() { _ = f.srv.Serve(lis) }()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeGRPC) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := grpcCall{at: time.Now(), md: md, traces: ptrace.NewTraces()}
	if p, ok := ctx.Value(compressionKey{}).(*string); ok {
		c.compression = *p
	}
	req.Traces().CopyTo(c.traces)
	f.mu.Lock()
	n := len(f.calls) + 1
	f.mu.Unlock()
	resp, err := ptraceotlp.NewExportResponse(), error(nil)
	if f.answer != nil {
		resp, err = f.answer(n, req)
	}
	c.err = err
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	return resp, err
}

func (f *fakeGRPC) got() []grpcCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]grpcCall(nil), f.calls...)
}

func ok() (ptraceotlp.ExportResponse, error) { return ptraceotlp.NewExportResponse(), nil }

func fail(code codes.Code, msg string) (ptraceotlp.ExportResponse, error) {
	return ptraceotlp.NewExportResponse(), status.Error(code, msg)
}

func throttle(d time.Duration) (ptraceotlp.ExportResponse, error) {
	st, err := status.New(codes.ResourceExhausted, "ingestion rate limit").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	if err != nil {
		panic(err)
	}
	return ptraceotlp.NewExportResponse(), st.Err()
}

func partial(n int64, msg string) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(n)
	resp.PartialSuccess().SetErrorMessage(msg)
	return resp, nil
}

func TestGRPCConcatenatesChunksWithHeadersAndGzip(t *testing.T) {
	for _, compression := range []string{CompressionGzip, CompressionNone} {
		t.Run(compression, func(t *testing.T) {
			f := newFakeGRPC(t, nil, nil)
			cfg := testConfig("http://"+f.addr, ProtocolGRPC)
			cfg.Compression = compression
			cfg.Batch.MaxWait = time.Hour // one request, cut by Flush
			cfg.Headers = map[string]confval.Secret{"X-Scope-OrgID": "tenant-a", "Authorization": "Bearer s3cret"}
			h := newHarness(t, cfg)
			a := exportertest.NewAcks()
			var want []string
			for i, svc := range []string{"checkout", "payments", "checkout"} {
				td := makeTraces(svc, uint64(i), i*10, 3+i)
				want = append(want, spanSummary(td)...)
				if err := h.exp.ExportTraces(context.Background(), batch(t, td, a.Func(i))); err != nil {
					t.Fatal(err)
				}
			}
			h.exp.Flush()
			for i := range 3 {
				if err := a.Wait(t, i); err != nil {
					t.Fatalf("ack %d = %v", i, err)
				}
			}
			calls := f.got()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want one request carrying all three batches", len(calls))
			}
			c := calls[0]
			if c.traces.ResourceSpans().Len() != 3 {
				t.Errorf("request holds %d resources, want 3 (one per batch)", c.traces.ResourceSpans().Len())
			}
			if got := spanSummary(c.traces); strings.Join(got, ",") != strings.Join(sorted(want), ",") {
				t.Errorf("backend saw spans %v, want %v", got, sorted(want))
			}
			if v := c.md.Get("x-scope-orgid"); len(v) != 1 || v[0] != "tenant-a" {
				t.Errorf("x-scope-orgid = %v", v)
			}
			if v := c.md.Get("authorization"); len(v) != 1 || v[0] != "Bearer s3cret" {
				t.Errorf("authorization = %v", v)
			}
			if v := c.md.Get("user-agent"); len(v) != 1 || !strings.HasPrefix(v[0], UserAgent) {
				t.Errorf("user-agent = %v", v)
			}
			wantComp := map[string]string{CompressionGzip: "gzip", CompressionNone: ""}[compression]
			if c.compression != wantComp {
				t.Errorf("grpc-encoding %q, want %q", c.compression, wantComp)
			}
			if v := h.sent(t); v != 3+4+5 {
				t.Errorf("sent records %v, want 12 spans", v)
			}
		})
	}
}

func TestGRPCRetriesUnavailable(t *testing.T) {
	f := newFakeGRPC(t, nil, func(call int, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
		if call < 3 {
			return fail(codes.Unavailable, "ingesters are restarting")
		}
		return ok()
	})
	h := newHarness(t, testConfig("http://"+f.addr, ProtocolGRPC))
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 4), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v, want delivery after retries", err)
	}
	calls := f.got()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	if calls[2].traces.SpanCount() != 4 {
		t.Errorf("the retry carried %d spans, want 4", calls[2].traces.SpanCount())
	}
	if v := h.metric(t, "outrider_exporter_retries_total", map[string]string{"exporter": "tempo"}); v != 2 {
		t.Errorf("retries %v, want 2", v)
	}
	if v := h.sent(t); v != 4 {
		t.Errorf("sent %v, want 4", v)
	}
}

func TestGRPCHonoursRetryInfo(t *testing.T) {
	const delay = 300 * time.Millisecond
	f := newFakeGRPC(t, nil, func(call int, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
		if call == 1 {
			return throttle(delay)
		}
		return ok()
	})
	h := newHarness(t, testConfig("http://"+f.addr, ProtocolGRPC)) // backoff would wait ≤ 5ms
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 2), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	calls := f.got()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	// A lower bound only: the retry must not come before the delay the backend asked for.
	if gap := calls[1].at.Sub(calls[0].at); gap < delay {
		t.Errorf("retried after %s, before the RetryInfo delay of %s", gap, delay)
	}
}

func TestGRPCPermanentErrors(t *testing.T) {
	tests := []struct {
		code   codes.Code
		reason string
		hint   string
	}{
		{codes.InvalidArgument, ReasonBadRequest, "invalid"},
		{codes.Unauthenticated, ReasonUnauthorized, "check headers"},
		{codes.PermissionDenied, ReasonUnauthorized, "X-Scope-OrgID"},
		{codes.Unimplemented, ReasonNotFound, "protocol: http"},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			f := newFakeGRPC(t, nil, func(int, ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
				return fail(tt.code, "nope")
			})
			h := newHarness(t, testConfig("http://"+f.addr, ProtocolGRPC))
			a := exportertest.NewAcks()
			if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 6), a.Func(1))); err != nil {
				t.Fatal(err)
			}
			err := a.Wait(t, 1)
			if reason, ok := pipeline.IsPermanent(err); !ok || reason != tt.reason {
				t.Fatalf("ack = %v, want permanent %q", err, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), "nope") {
				t.Errorf("error %q lacks the backend's message or the hint %q", err, tt.hint)
			}
			if n := len(f.got()); n != 1 {
				t.Errorf("%d calls; a permanent error must not be retried", n)
			}
			if v := h.dropped(t, tt.reason); v != 6 {
				t.Errorf("dropped %v, want 6 spans", v)
			}
			if !strings.Contains(h.log.String(), "dropped records the backend rejected") {
				t.Errorf("no drop log line: %s", h.log.String())
			}
		})
	}
}

func TestGRPCPartialSuccess(t *testing.T) {
	f := newFakeGRPC(t, nil, func(call int, _ ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
		if call == 1 {
			return partial(3, "3 spans too old")
		}
		return partial(0, "spans have a deprecated attribute")
	})
	h := newHarness(t, testConfig("http://"+f.addr, ProtocolGRPC))
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 10), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	err := a.Wait(t, 1)
	if reason, ok := pipeline.IsPermanent(err); !ok || reason != ReasonPartialSuccess || pipeline.RejectedCount(err) != 3 {
		t.Fatalf("ack = %v, want partial_success rejecting 3", err)
	}
	if !strings.Contains(err.Error(), "3 spans too old") {
		t.Errorf("error %q lacks the backend's error_message", err)
	}
	if d, s := h.dropped(t, ReasonPartialSuccess), h.sent(t); d != 3 || s != 7 {
		t.Errorf("dropped %v, sent %v; want 3 and 7", d, s)
	}
	// A message without rejected spans is a warning: delivered, logged.
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 2, 0, 5), a.Func(2))); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(t, 2); err != nil {
		t.Fatalf("ack = %v, want delivered", err)
	}
	if !strings.Contains(h.log.String(), "deprecated attribute") {
		t.Errorf("the warning was not logged: %s", h.log.String())
	}
	if s := h.sent(t); s != 12 {
		t.Errorf("sent %v, want 12", s)
	}
}

func TestGRPCMessageTooLargeIsPermanent(t *testing.T) {
	f := newFakeGRPC(t, nil, nil, grpc.MaxRecvMsgSize(2048))
	cfg := testConfig("http://"+f.addr, ProtocolGRPC)
	cfg.Compression = CompressionNone
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 50), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	err := a.Wait(t, 1)
	if reason, _ := pipeline.IsPermanent(err); reason != ReasonTooLarge || !strings.Contains(err.Error(), "batch.max_bytes") {
		t.Fatalf("ack = %v, want permanent too_large with a hint", err)
	}
	if v := h.dropped(t, ReasonTooLarge); v != 50 {
		t.Errorf("dropped %v, want 50", v)
	}
}

func TestGRPCMaxSpansCutsRequests(t *testing.T) {
	f := newFakeGRPC(t, nil, nil)
	cfg := testConfig("http://"+f.addr, ProtocolGRPC)
	cfg.MaxSpans = 250
	cfg.Batch.MaxWait = time.Hour
	cfg.Concurrency = 1 // requests arrive in the order they were cut
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	for i := range 5 {
		if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", uint64(i), i*100, 100), a.Func(i))); err != nil {
			t.Fatal(err)
		}
	}
	// A batch over max_spans goes alone.
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("big", 9, 1000, 400), a.Func(5))); err != nil {
		t.Fatal(err)
	}
	h.exp.Flush()
	for i := range 6 {
		if err := a.Wait(t, i); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	for _, c := range f.got() {
		sizes = append(sizes, c.traces.SpanCount())
	}
	if len(sizes) != 4 || sizes[0] != 200 || sizes[1] != 200 || sizes[2] != 100 || sizes[3] != 400 {
		t.Fatalf("requests of %v spans, want [200 200 100 400]", sizes)
	}
}

func TestGRPCShutdownLeavesUndeliveredUnacked(t *testing.T) {
	f := newFakeGRPC(t, nil, func(int, ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
		return fail(codes.Unavailable, "down")
	})
	cfg := testConfig("http://"+f.addr, ProtocolGRPC)
	exp, err := New(cfg, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := exportertest.NewAcks()
	if err := exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 3), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := exp.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "undelivered") {
		t.Fatalf("Shutdown = %v, want an error about undelivered requests", err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	if a.Count() != 0 {
		t.Fatalf("undelivered batch acknowledged: %v", a.Get(1))
	}
	if err := exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 2, 0, 1), nil)); err == nil {
		t.Fatal("ExportTraces after Shutdown succeeded")
	}
}

// flakyListener drops every connection while down, like a backend that is restarting.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	down bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		down := l.down
		l.mu.Unlock()
		if !down {
			return c, nil
		}
		c.Close()
	}
}

func (l *flakyListener) setDown(down bool) {
	l.mu.Lock()
	l.down = down
	l.mu.Unlock()
}

func TestGRPCReconnectsAfterOutage(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := &flakyListener{Listener: inner, down: true}
	f := &fakeGRPC{}
	f.srv = grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(f.srv, f)
	go func() { _ = f.srv.Serve(lis) }()
	t.Cleanup(f.srv.Stop)

	h := newHarness(t, testConfig("http://"+inner.Addr().String(), ProtocolGRPC))
	a := exportertest.NewAcks()
	if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 2), a.Func(1))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.metric(t, "outrider_exporter_retries_total", map[string]string{"exporter": "tempo"}) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a.Count() != 0 || len(f.got()) != 0 {
		t.Fatalf("delivered while the backend was down: acks %v", a.Get(1))
	}
	lis.setDown(false)
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack = %v", err)
	}
	if calls := f.got(); len(calls) != 1 || calls[0].traces.SpanCount() != 2 {
		t.Fatalf("backend got %d calls, want one of 2 spans", len(calls))
	}
}

func TestGRPCTLS(t *testing.T) {
	ca := newTestCA(t)
	f := newFakeGRPC(t, ca.serverConfig(), nil)
	t.Run("verified", func(t *testing.T) {
		cfg := testConfig("https://"+f.addr, ProtocolGRPC)
		cfg.TLS.CAFile = ca.caFile
		h := newHarness(t, cfg)
		a := exportertest.NewAcks()
		if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 2), a.Func(1))); err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(t, 1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown CA is retried with a hint", func(t *testing.T) {
		cfg := testConfig("https://"+f.addr, ProtocolGRPC) // system roots do not know the test CA
		exp, err := New(cfg, Settings{})
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(context.Background())
		perr := exp.client.push(context.Background(), []chunk{{data: batch(t, makeTraces("svc", 1, 0, 1), nil).Data, spans: 1}})
		if _, perm := pipeline.IsPermanent(perr); perr == nil || perm || !strings.Contains(perr.Error(), "check tls") {
			t.Fatalf("push = %v, want a retryable error with the TLS hint", perr)
		}
	})
}

func TestNewThenShutdownWithoutStart(t *testing.T) {
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		exp, err := New(testConfig("http://127.0.0.1:4317", proto), Settings{})
		if err != nil {
			t.Fatal(err)
		}
		a := exportertest.NewAcks()
		if err := exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 1, 0, 1), a.Func(1))); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a.Count() != 0 {
			t.Fatal("a batch was acknowledged without being sent")
		}
	}
}

func TestRawCodecRejectsOtherTypes(t *testing.T) {
	if _, err := (rawCodec{}).Marshal("x"); err == nil {
		t.Error("Marshal of a string succeeded")
	}
	if err := (rawCodec{}).Unmarshal(nil, new(int)); err == nil {
		t.Error("Unmarshal into an int succeeded")
	}
}

// TestGRPCRefusedBatchIsIsolated: a backend answering InvalidArgument for any request
// holding one bad batch (a fault Jaeger does not produce for decodable spans) gets the
// batches apart; only the bad one's spans are dropped, counted once.
func TestGRPCRefusedBatchIsIsolated(t *testing.T) {
	var mu sync.Mutex
	var stored []string
	f := newFakeGRPC(t, nil, func(_ int, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
		names := spanSummary(req.Traces())
		for _, n := range names {
			if n == "svc/100" {
				return ptraceotlp.NewExportResponse(), status.Error(codes.InvalidArgument, "span op-100 is invalid")
			}
		}
		mu.Lock()
		stored = append(stored, names...)
		mu.Unlock()
		return ok()
	})
	cfg := testConfig("http://"+f.addr, ProtocolGRPC)
	cfg.Batch.MaxWait = time.Hour
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	for n, first := range []int{1, 100, 200, 300} {
		if err := h.exp.ExportTraces(context.Background(), batch(t, makeTraces("svc", 7, first, 2), a.Func(n))); err != nil {
			t.Fatal(err)
		}
	}
	h.exp.Flush()
	for n := range 4 {
		a.Wait(t, n)
	}
	if v := h.dropped(t, ReasonBadRequest); v != 2 {
		t.Errorf("dropped %v spans, want the bad batch's 2", v)
	}
	if v := h.sent(t); v != 6 {
		t.Errorf("sent %v spans, want 6", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stored) != 6 {
		t.Errorf("backend stored %v, want the 6 spans of the good batches once", stored)
	}
	if logs := h.log.String(); !strings.Contains(logs, "span op-100 is invalid") {
		t.Errorf("drop log lacks the backend's message:\n%s", logs)
	}
}
