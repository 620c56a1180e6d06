package otlpreceiver

import (
	"bytes"
	"context"
	"google.golang.org/grpc/tap"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func fuzzReceiver() (*Receiver, *memQueue) {
	q := &memQueue{}
	cfg := Config{}
	cfg.ApplyDefaults()
	return New(cfg, Settings{Traces: q, Logs: q, MetricData: q, Redactor: fakeRedactor{"secret"}, Resource: map[string]string{"service.name": "svc"}}), q
}

func checkHTTP(t *testing.T, r *Receiver, path, ct string, body []byte) {
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	r.newHTTPServer().Handler.ServeHTTP(w, req)
	if w.Code != 200 && w.Code != 400 && w.Code != 413 {
		t.Fatalf("status %d for %d bytes: %s", w.Code, len(body), w.Body.String())
	}
}

func seeds(f *testing.F) {
	td, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(3, 1, map[string]string{"a": "secret"})).MarshalProto()
	tj, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(2, 0, nil)).MarshalJSON()
	ld, _ := plogotlp.NewExportRequestFromLogs(testLogs("x secret y")).MarshalProto()
	lj, _ := plogotlp.NewExportRequestFromLogs(testLogs("x")).MarshalJSON()
	sm := testMetrics(1)
	sm.ResourceMetrics().At(0).Resource().Attributes().PutStr("db", "x secret y")
	md, _ := pmetricotlp.NewExportRequestFromMetrics(sm).MarshalProto()
	mj, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(1)).MarshalJSON()
	for _, s := range [][]byte{td, tj, ld, lj, md, mj, nil, []byte("{}"), []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`)} {
		f.Add(s)
	}
}

func FuzzHTTPProtobuf(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, q := fuzzReceiver()
		checkHTTP(t, r, TracesPath, contentProtobuf, body)
		checkHTTP(t, r, LogsPath, contentProtobuf, body)
		checkHTTP(t, r, MetricsPath, contentProtobuf, body)
		for _, e := range q.entries {
			if _, _, _, err := DecodeEntry(e); err != nil {
				t.Fatalf("stored an undecodable entry: %v", err)
			}
			if bytes.Contains(e, []byte("secret")) {
				t.Fatal("stored a secret value")
			}
		}
	})
}

func FuzzHTTPJSON(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := fuzzReceiver()
		checkHTTP(t, r, TracesPath, contentJSON, body)
		checkHTTP(t, r, LogsPath, contentJSON, body)
		checkHTTP(t, r, MetricsPath, contentJSON, body)
	})
}

func FuzzGRPCTraces(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := fuzzReceiver()
		ctx, done := tapped(t, r, KindTraces)
		_, _ = r.exportTracesGRPC(ctx, body)
		done()
		ctx, done = tapped(t, r, KindLogs)
		_, _ = r.exportLogsGRPC(ctx, body)
		done()
		ctx, done = tapped(t, r, KindMetrics)
		_, _ = r.exportMetricsGRPC(ctx, body)
		done()
	})
}

// tapped returns the context of a gRPC export of kind k admitted by r's tap, as the
// server would give it to the handler, and the function that ends the stream.
func tapped(t testing.TB, r *Receiver, k Kind) (context.Context, context.CancelFunc) {
	t.Helper()
	method := "/" + traceServiceDesc.ServiceName + "/Export"
	switch k {
	case KindLogs:
		method = "/" + logsServiceDesc.ServiceName + "/Export"
	case KindMetrics:
		method = "/" + metricsServiceDesc.ServiceName + "/Export"
	}
	ctx, cancel := context.WithCancel(context.Background())
	ctx, err := r.tapGRPC(ctx, &tap.Info{FullMethodName: method})
	if err != nil {
		cancel()
		t.Fatalf("tap: %v", err)
	}
	a := ctx.Value(admissionKey{}).(*grpcAdmission)
	return ctx, func() {
		cancel()
		for a.res.Bytes() > 0 { // released by a context.AfterFunc goroutine
			time.Sleep(time.Millisecond)
		}
	}
}
