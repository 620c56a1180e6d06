package otlpreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrider-dev/outrider/pipeline"
)

func grpcClient(t *testing.T, r *Receiver) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGRPCTracesStoredEnrichedWithPartialSuccess(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Traces: q, Resource: map[string]string{
		"service.name": "checkout", "k8s.pod.name": "checkout-7d9", "k8s.namespace.name": "shop",
	}})
	client := ptraceotlp.NewGRPCClient(grpcClient(t, r))
	td := testTraces(3, 2, map[string]string{"service.name": "unknown_service:java", "k8s.namespace.name": "app-set"})
	resp, err := client.Export(ctxT(t), ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.PartialSuccess().RejectedSpans(); got != 2 {
		t.Errorf("rejected_spans = %d, want 2", got)
	}
	if msg := resp.PartialSuccess().ErrorMessage(); !strings.Contains(msg, "trace_id") {
		t.Errorf("partial success message %q does not say why", msg)
	}
	stored := q.traces(t)
	if len(stored) != 1 || stored[0].SpanCount() != 3 {
		t.Fatalf("stored %d entries, want 1 with 3 spans", len(stored))
	}
	attrs := stored[0].ResourceSpans().At(0).Resource().Attributes()
	for k, want := range map[string]string{
		"service.name":       "checkout", // the SDK placeholder is replaced
		"k8s.pod.name":       "checkout-7d9",
		"k8s.namespace.name": "app-set", // what the app set wins
	} {
		if v, _ := attrs.Get(k); v.AsString() != want {
			t.Errorf("resource %s = %q, want %q", k, v.AsString(), want)
		}
	}
}

func TestOverwriteResource(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{Resource: ResourceConfig{Overwrite: true, Attributes: map[string]string{"deployment.environment": "prod"}}},
		Settings{Traces: q, Resource: map[string]string{"k8s.namespace.name": "shop", "deployment.environment": "dev"}})
	client := ptraceotlp.NewGRPCClient(grpcClient(t, r))
	if _, err := client.Export(ctxT(t), ptraceotlp.NewExportRequestFromTraces(testTraces(1, 0, map[string]string{"k8s.namespace.name": "app-set"}))); err != nil {
		t.Fatal(err)
	}
	attrs := q.traces(t)[0].ResourceSpans().At(0).Resource().Attributes()
	if v, _ := attrs.Get("k8s.namespace.name"); v.Str() != "shop" {
		t.Errorf("overwrite: namespace = %q, want shop", v.Str())
	}
	if v, _ := attrs.Get("deployment.environment"); v.Str() != "prod" {
		t.Errorf("config attribute = %q, want prod (config wins over identity)", v.Str())
	}
}

func TestGRPCRefusals(t *testing.T) {
	tests := []struct {
		name      string
		queueErr  error
		noTraces  bool
		want      codes.Code
		wantRetry bool
	}{
		{"full", fmt.Errorf("queue traces: %w", pipeline.ErrFull), false, codes.ResourceExhausted, true},
		{"store failed", errors.New("write: no space left on device"), false, codes.Unavailable, true},
		{"no exporter", nil, true, codes.Unimplemented, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &memQueue{err: tt.queueErr}
			set := Settings{Traces: q, RetryAfter: 7 * time.Second}
			if tt.noTraces {
				set.Traces = nil
			}
			r := startReceiver(t, Config{}, set)
			_, err := ptraceotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), ptraceotlp.NewExportRequestFromTraces(testTraces(2, 0, nil)))
			st := status.Convert(err)
			if st.Code() != tt.want {
				t.Fatalf("code = %v (%s), want %v", st.Code(), st.Message(), tt.want)
			}
			var ri *errdetails.RetryInfo
			for _, d := range st.Details() {
				if x, ok := d.(*errdetails.RetryInfo); ok {
					ri = x
				}
			}
			if tt.wantRetry != (ri != nil) {
				t.Fatalf("RetryInfo present = %v, want %v", ri != nil, tt.wantRetry)
			}
			if tt.name == "full" && ri.RetryDelay.AsDuration() != 7*time.Second {
				t.Errorf("retry delay = %v, want 7s", ri.RetryDelay.AsDuration())
			}
		})
	}
}

func TestGRPCMalformedIsInvalidArgumentAndOthersUnaffected(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Traces: q})
	cc := grpcClient(t, r)
	var out []byte
	err := cc.Invoke(ctxT(t), "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		[]byte{0x0a, 0xff, 0xff, 0xff}, &out, grpc.ForceCodecV2(rawForTest{}))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "cannot decode") {
		t.Fatalf("malformed request: %v, want InvalidArgument with the reason", err)
	}
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctxT(t), ptraceotlp.NewExportRequestFromTraces(testTraces(1, 0, nil))); err != nil {
		t.Fatalf("a good request after a bad one: %v", err)
	}
}

func TestGRPCTooLarge(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{MaxRequestBytes: 2048}, Settings{Traces: q})
	_, err := ptraceotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), ptraceotlp.NewExportRequestFromTraces(testTraces(100, 0, nil)))
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("too large: %v, want ResourceExhausted", err)
	}
	if len(q.entries) != 0 {
		t.Fatal("an over-size request was stored")
	}
}

func TestGRPCLogs(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Logs: q, Resource: map[string]string{"k8s.pod.name": "p1"}})
	if _, err := plogotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), plogotlp.NewExportRequestFromLogs(testLogs("a", "b"))); err != nil {
		t.Fatal(err)
	}
	lds := q.logs(t)
	if len(lds) != 1 || lds[0].LogRecordCount() != 2 {
		t.Fatalf("stored %v", lds)
	}
	if v, _ := lds[0].ResourceLogs().At(0).Resource().Attributes().Get("k8s.pod.name"); v.Str() != "p1" {
		t.Errorf("logs not enriched: pod %q", v.Str())
	}
}

func TestScrubbedBeforeStored(t *testing.T) {
	const secret = "s3cr3t-passw0rd"
	q := &memQueue{}
	lq := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Traces: q, Logs: lq, Redactor: fakeRedactor{secret}})
	td := testTraces(1, 0, map[string]string{"db.conn": "postgres://u:" + secret + "@db"})
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.Attributes().PutStr("db.statement", "SET password='"+secret+"'")
	sp.Attributes().PutEmptySlice("list").AppendEmpty().SetStr(secret)
	sp.Attributes().PutEmptyMap("nested").PutStr("k", secret)
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.Attributes().PutStr("exception.message", "login failed for "+secret)
	sp.Status().SetMessage("bad " + secret)
	sp.Links().AppendEmpty().Attributes().PutStr("l", secret)
	if _, err := ptraceotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatal(err)
	}
	ld := testLogs("connecting with " + secret)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr("pw", secret)
	if _, err := plogotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), plogotlp.NewExportRequestFromLogs(ld)); err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]string{"traces": q.raw(), "logs": lq.raw()} {
		if strings.Contains(raw, secret) {
			t.Errorf("%s: the secret value reached the queue", name)
		}
		if !strings.Contains(raw, "[REDACTED]") {
			t.Errorf("%s: nothing was redacted", name)
		}
	}
}

// postHTTP sends body to path with the given headers and returns the response.
func postHTTP(t *testing.T, r *Receiver, path, contentType, encoding string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+r.HTTPAddr().String()+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestHTTPTraces(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{MaxRequestBytes: 64 << 10}, Settings{Traces: q, Logs: q})
	req := ptraceotlp.NewExportRequestFromTraces(testTraces(2, 1, nil))
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	huge := bytes.Repeat([]byte{0}, 1<<20) // compresses far below the limit, decompresses above it

	tests := []struct {
		name, ct, enc string
		body          []byte
		want          int
		wantBody      string
	}{
		{"protobuf", contentProtobuf, "", pb, 200, ""},
		{"json", contentJSON, "", js, 200, "rejectedSpans"},
		{"gzip protobuf", contentProtobuf, "gzip", gz(pb), 200, ""},
		{"bad protobuf", contentProtobuf, "", []byte{0x0a, 0xff, 0xff}, 400, "cannot decode"},
		{"bad json", contentJSON, "", []byte(`{"resourceSpans": [`), 400, "cannot decode"},
		{"bad gzip", contentProtobuf, "gzip", []byte("not gzip"), 400, "gzip"},
		{"unknown type", "text/plain", "", pb, 415, "application/x-protobuf"},
		{"unknown encoding", contentProtobuf, "br", pb, 415, "Content-Encoding"},
		{"too large", contentProtobuf, "", make([]byte, 65<<10), 413, "max_request_bytes"},
		{"gzip bomb", contentProtobuf, "gzip", gz(huge), 413, "max_request_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := postHTTP(t, r, TracesPath, tt.ct, tt.enc, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body %q does not contain %q", body, tt.wantBody)
			}
			if tt.want == 200 && tt.ct == contentProtobuf {
				out := ptraceotlp.NewExportResponse()
				if err := out.UnmarshalProto(body); err != nil || out.PartialSuccess().RejectedSpans() != 1 {
					t.Errorf("response %v rejected=%d, want a partial success with 1", err, out.PartialSuccess().RejectedSpans())
				}
			}
			if tt.want != 200 && tt.ct == contentProtobuf {
				var st spb.Status
				if err := proto.Unmarshal(body, &st); err != nil || st.Message == "" {
					t.Errorf("error body is not a google.rpc.Status: %v", err)
				}
			}
		})
	}
	if got := len(q.traces(t)); got != 3 {
		t.Errorf("stored %d requests, want the 3 good ones", got)
	}
}

func TestHTTPRefusals(t *testing.T) {
	q := &memQueue{err: fmt.Errorf("queue: %w", pipeline.ErrFull)}
	r := startReceiver(t, Config{}, Settings{Traces: q, RetryAfter: 3 * time.Second})
	pb, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(1, 0, nil)).MarshalProto()
	resp, body := postHTTP(t, r, TracesPath, contentProtobuf, "", pb)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("full: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	q.setErr(errors.New("disk broken"))
	if resp, _ := postHTTP(t, r, TracesPath, contentProtobuf, "", pb); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store error: %d, want 503 with Retry-After", resp.StatusCode)
	}
	if resp, body := postHTTP(t, r, LogsPath, contentProtobuf, "", pb); resp.StatusCode != 404 || !strings.Contains(string(body), "exporters.loki") {
		t.Fatalf("logs without exporter: %d %s", resp.StatusCode, body)
	}
	if resp, body := postHTTP(t, r, "/v1/profiles", contentProtobuf, "", pb); resp.StatusCode != 404 || !strings.Contains(string(body), MetricsPath) {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.HTTPAddr().String()+TracesPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	cfg := Config{}
	cfg.ApplyDefaults()
	r := New(cfg, Settings{})
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestPortInUse(t *testing.T) {
	r1 := startReceiver(t, Config{HTTP: Endpoint{Listen: Off}}, Settings{})
	cfg := Config{GRPC: Endpoint{Listen: r1.GRPCAddr().String()}, HTTP: Endpoint{Listen: "127.0.0.1:0"}}
	cfg.ApplyDefaults()
	err := New(cfg, Settings{}).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "receivers.otlp.grpc.listen") {
		t.Fatalf("err = %v, want one naming receivers.otlp.grpc.listen", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{GRPC: Endpoint{Listen: "4317"}}, "grpc.listen"},
		{Config{GRPC: Endpoint{Listen: Off}, HTTP: Endpoint{Listen: Off}}, "both grpc and http are off"},
		{Config{GRPC: Endpoint{Listen: "127.0.0.1:9"}, HTTP: Endpoint{Listen: "127.0.0.1:9"}}, "same address"},
		{Config{MaxRequestBytes: 10}, "max_request_bytes"},
	} {
		tt.cfg.ApplyDefaults()
		p := &problemsT{}
		tt.cfg.Validate(p.p())
		if err := p.err(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
	ok := Config{}
	ok.ApplyDefaults()
	p := &problemsT{}
	ok.Validate(p.p())
	if err := p.err(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

var _ = ptrace.NewTraces

// TestGRPCMessageBuffers sends the same trace requests over gRPC plain (one buffer,
// handed to the handler without a copy) and gzip-compressed (decompressed into
// several buffers, joined), small and larger than gRPC's buffers: every one is
// stored as the same entry.
func TestGRPCMessageBuffers(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Traces: q, Resource: map[string]string{"k8s.pod.name": "web-0"}})
	cc := grpcClient(t, r)
	method := "/" + traceServiceDesc.ServiceName + "/Export"
	for _, n := range []int{1, 300, 5000} {
		body, err := ptraceotlp.NewExportRequestFromTraces(testTraces(n, 0, nil)).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		if err := cc.Invoke(ctxT(t), method, body, &out, grpc.ForceCodecV2(rawForTest{})); err != nil {
			t.Fatalf("%d spans, plain: %v", n, err)
		}
		if err := cc.Invoke(ctxT(t), method, body, &out, grpc.ForceCodecV2(rawForTest{}), grpc.UseCompressor(grpcgzip.Name)); err != nil {
			t.Fatalf("%d spans, gzip: %v", n, err)
		}
		q.mu.Lock()
		plain, zipped := q.entries[len(q.entries)-2], q.entries[len(q.entries)-1]
		q.mu.Unlock()
		if string(plain) != string(zipped) {
			t.Fatalf("%d spans (%d bytes): the gzip request was stored otherwise than the plain one", n, len(body))
		}
		_, count, _, err := DecodeEntry(plain)
		if err != nil || count != n {
			t.Fatalf("%d spans: entry holds %d (%v)", n, count, err)
		}
	}
}

func TestDirtyPool(t *testing.T) {
	var p dirtyPool
	for _, n := range []int{0, 1, 256, 257, 16 << 10, 20000, 1 << 20, 1<<20 + 1} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d) returned %d bytes", n, len(*b))
		}
		p.Put(b)
	}
	b := p.Get(16 << 10)
	(*b)[0] = 'x'
	p.Put(b)
	if c := p.Get(10000); cap(*c) != 16<<10 || len(*c) != 10000 {
		t.Fatalf("Get(10000) after a 16 KiB Put: len %d cap %d", len(*c), cap(*c))
	}
	odd := make([]byte, 3000)
	p.Put(&odd) // not a pooled size: dropped
}
