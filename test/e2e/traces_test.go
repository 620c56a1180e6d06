package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
)

// otlpAgent is an agent with an OTLP receiver on known ports.
type otlpAgent struct {
	dir, config  string
	grpc, http   string // host:port
	jaegerTarget string
	started      bool // the agent has run on these ports; clients may know them
}

// traceConfig writes an agent config receiving OTLP on free ports and sending traces
// to jaegerGRPC (host:port) and logs to lokiURL (empty: no Loki). extra is appended.
func traceConfig(t *testing.T, service, jaegerGRPC, lokiURL, extra string) *otlpAgent {
	t.Helper()
	ports, err := backendtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	a := &otlpAgent{
		dir:          t.TempDir(),
		grpc:         fmt.Sprintf("127.0.0.1:%d", ports[0]),
		http:         fmt.Sprintf("127.0.0.1:%d", ports[1]),
		jaegerTarget: jaegerGRPC,
	}
	loki := ""
	if lokiURL != "" {
		loki = fmt.Sprintf("  loki:\n    url: %s\n    batch: {max_wait: 200ms}\n", lokiURL)
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, pod_uid: 6f1c-uid, container: app, node: node-1, environment: test}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
receivers:
  otlp:
    grpc: {listen: "%[3]s"}
    http: {listen: "%[4]s"}
    max_request_bytes: 256KiB
exporters:
  otlp:
    endpoint: http://%[5]s
    batch: {max_wait: 200ms}
    retry: {initial_interval: 100ms, max_interval: 1s}
%[6]s%[7]s
`, a.dir, service, a.grpc, a.http, jaegerGRPC, loki, extra)
	a.config = filepath.Join(a.dir, "outrider.yaml")
	writeFile(t, a.config, cfg)
	return a
}

func (a *otlpAgent) start(t *testing.T) *agentProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := startAgent(t, a.config)
		if a.started || attempt == 3 || !exitedOnBusyPort(p) {
			waitLog(t, p, "otlp receiver listening")
			a.started = true
			return p
		}
		// Another process (a client's ephemeral port, a backend of a test package
		// running beside this one) took a port between FreePorts and the agent's
		// bind. Before the first start no client knows the ports: pick new ones.
		ports, err := backendtest.FreePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		grpc, http := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
		data, err := os.ReadFile(a.config)
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.Replace(strings.Replace(string(data), `"`+a.grpc+`"`, `"`+grpc+`"`, 1), `"`+a.http+`"`, `"`+http+`"`, 1)
		writeFile(t, a.config, cfg)
		t.Logf("a port of %s or %s was taken before the agent bound it; retrying on %s and %s", a.grpc, a.http, grpc, http)
		a.grpc, a.http = grpc, http
	}
}

// exitedOnBusyPort reports whether the agent exited at start because a listen
// address was in use, waiting for either that or its receivers to listen.
func exitedOnBusyPort(p *agentProc) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.log)
		if strings.Contains(string(data), `"msg":"otlp receiver listening`) {
			return false
		}
		select {
		case <-p.exited:
			data, _ = os.ReadFile(p.log)
			return strings.Contains(string(data), "address already in use")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

func sdkProvider(t *testing.T, exp sdktrace.SpanExporter, attrs ...attribute.KeyValue) *sdktrace.TracerProvider {
	t.Helper()
	res, err := resource.New(context.Background(), resource.WithAttributes(attrs...))
	if err != nil {
		t.Fatal(err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
}

// TestTracesToJaegerWithSDK sends spans with the OpenTelemetry Go SDK over gRPC and
// HTTP through the agent and reads them back from a real Jaeger by trace ID: span
// count, parent/child links and the resource attributes the agent added.
func TestTracesToJaegerWithSDK(t *testing.T) {
	j := jaegertest.Shared(t)
	a := traceConfig(t, "sdk-e2e", j.OTLPGRPCEndpoint(), "", "")
	a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.grpc), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.http), otlptracehttp.WithInsecure(), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{{"grpc", grpcExp}, {"http", httpExp}} {
		t.Run(tc.name, func(t *testing.T) {
			// The SDK's own default service.name is "unknown_service:<exe>": the agent's
			// identity replaces it; the namespace the app set wins over the agent's.
			tp := sdkProvider(t, tc.exp, attribute.String("k8s.namespace.name", "app-set"))
			tr := tp.Tracer("e2e")
			rctx, root := tr.Start(ctx, "GET /checkout")
			for i := range 3 {
				_, child := tr.Start(rctx, fmt.Sprintf("db.query-%d", i))
				child.SetAttributes(attribute.Int("row", i))
				child.End()
			}
			root.End()
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatalf("SDK export through the agent: %v", err)
			}
			traceID := root.SpanContext().TraceID().String()
			spans, err := j.WaitForTrace(ctx, traceID, 4)
			if err != nil {
				t.Fatalf("trace %s in Jaeger: %v", traceID, err)
			}
			if len(spans) != 4 {
				t.Fatalf("Jaeger has %d spans of trace %s, want 4", len(spans), traceID)
			}
			rootID := root.SpanContext().SpanID().String()
			children := 0
			for _, s := range spans {
				if s.ParentSpanID == rootID {
					children++
				}
				for k, want := range map[string]string{
					"service.name": "sdk-e2e", "k8s.namespace.name": "app-set", "k8s.pod.name": "sdk-e2e-0",
					"k8s.pod.uid": "6f1c-uid", "k8s.container.name": "app", "k8s.node.name": "node-1", "deployment.environment": "test",
				} {
					if got := s.Resource[k]; got != want {
						t.Errorf("span %s: resource %s = %q, want %q", s.Name, k, got, want)
					}
				}
			}
			if children != 3 {
				t.Errorf("%d spans have the root as parent, want 3", children)
			}
		})
	}
}

// TestOTLPLogsToLoki sends OTLP logs through the agent into a real Loki.
func TestOTLPLogsToLoki(t *testing.T) {
	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	a := traceConfig(t, "otlplogs-e2e", j.OTLPGRPCEndpoint(), loki.URL, "")
	a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute)

	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	tid := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for i := range 20 {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Body().SetStr(fmt.Sprintf("payment failed seq=%d", i))
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetTraceID(tid)
		lr.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
		lr.Attributes().PutStr("request_id", "req-42")
		lr.Attributes().PutInt("http.status_code", 502)
	}
	cc := dial(t, a.grpc)
	if _, err := plogotlp.NewGRPCClient(cc).Export(ctx, plogotlp.NewExportRequestFromLogs(ld)); err != nil {
		t.Fatal(err)
	}
	entries, err := loki.WaitCount(ctx, `{service="otlplogs-e2e", source="otlp"}`, start, 20, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		lines = append(lines, e.Line)
		if e.Labels["level"] != "error" || e.Labels["pod"] != "otlplogs-e2e-0" || e.Labels["namespace"] != "e2e" {
			t.Errorf("labels %v", e.Labels)
		}
		if e.Metadata["trace_id"] != tid.String() || e.Metadata["request_id"] != "req-42" || e.Metadata["http_status_code"] != "502" {
			t.Errorf("structured metadata %v", e.Metadata)
		}
		if _, bad := e.Labels["trace_id"]; bad {
			t.Error("trace_id is a label")
		}
	}
	if missing, dups := countSeq(t, lines, 20); missing+dups > 0 {
		t.Errorf("%d missing, %d duplicated", missing, dups)
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// spanRequest builds one request of n spans in a trace of its own, numbered by seq.
func spanRequest(seq, n int) (ptraceotlp.ExportRequest, string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "loadgen")
	ss := rs.ScopeSpans().AppendEmpty()
	var tid pcommon.TraceID
	copy(tid[:], fmt.Sprintf("%016x", uint64(seq)+1<<40))
	now := time.Now()
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{byte(i + 1), 1, 2, 3, 4, 5, 6, 7})
		if i > 0 {
			s.SetParentSpanID(pcommon.SpanID{1, 1, 2, 3, 4, 5, 6, 7})
		}
		s.SetName("op")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		s.Attributes().PutInt("seq", int64(seq))
		s.Attributes().PutStr("payload", strings.Repeat("x", 200))
	}
	return ptraceotlp.NewExportRequestFromTraces(td), tid.String()
}

// sendSpans sends one request of n spans every interval until stop is closed and
// returns the trace IDs the agent accepted and how many requests it refused.
func sendSpans(ctx context.Context, cc *grpc.ClientConn, n int, interval time.Duration, stop <-chan struct{}) (accepted []string, refused map[codes.Code]int) {
	client := ptraceotlp.NewGRPCClient(cc)
	refused = map[codes.Code]int{}
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return accepted, refused
		case <-ctx.Done():
			return accepted, refused
		case <-time.After(interval):
		}
		req, tid := spanRequest(seq, n)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := client.Export(rctx, req)
		cancel()
		if err != nil {
			refused[status.Code(err)]++
			continue
		}
		accepted = append(accepted, tid)
	}
}

// checkDelivered waits until Jaeger has every accepted trace with n spans.
func checkDelivered(t *testing.T, j *jaegertest.Jaeger, traces []string, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	missing := 0
	for _, id := range traces {
		spans, err := j.WaitForTrace(ctx, id, n)
		if err != nil || len(spans) != n {
			missing++
			if missing <= 3 {
				t.Errorf("trace %s: %d spans, want %d (%v)", id, len(spans), n, err)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d accepted traces missing from Jaeger", missing, len(traces))
	}
	t.Logf("all %d accepted traces (%d spans) are in Jaeger", len(traces), len(traces)*n)
}

// TestTraceBackendDownThirtySeconds stops Jaeger for 30 s while spans flow and checks
// that every span the agent accepted is in Jaeger after it returns.
func TestTraceBackendDownThirtySeconds(t *testing.T) {
	j := jaegertest.StartPersistent(t)
	a := traceConfig(t, "outage-e2e", j.OTLPGRPCEndpoint(), "", "")
	a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var (
		accepted []string
		refused  map[codes.Code]int
		wg       sync.WaitGroup
	)
	wg.Go(func() { accepted, refused = sendSpans(ctx, dial(t, a.grpc), 10, 50*time.Millisecond, stop) })
	time.Sleep(5 * time.Second)
	j.Stop()
	t.Log("jaeger stopped")
	time.Sleep(30 * time.Second)
	if err := j.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Log("jaeger restarted")
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	if len(refused) > 0 {
		t.Errorf("the agent refused requests while its queue had room: %v", refused)
	}
	checkDelivered(t, j, accepted, 10, time.Minute)
}

// TestSIGKILLAfterAckBeforeExport kills the agent after it acknowledged spans it could
// not yet export; the next start sends them.
func TestSIGKILLAfterAckBeforeExport(t *testing.T) {
	j := jaegertest.Start(t)
	j.Stop() // known ports, nothing listening: the agent acknowledges and cannot export
	a := traceConfig(t, "sigkill-traces-e2e", j.OTLPGRPCEndpoint(), "", "")
	p := a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := ptraceotlp.NewGRPCClient(dial(t, a.grpc))
	var accepted []string
	for seq := range 50 {
		req, tid := spanRequest(seq, 5)
		if _, err := client.Export(ctx, req); err != nil {
			t.Fatalf("request %d: %v", seq, err)
		}
		accepted = append(accepted, tid)
	}
	p.kill()
	if err := j.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	a.start(t)
	checkDelivered(t, j, accepted, 5, time.Minute)
}

// TestQueueFullRefusesThenDelivers fills a small queue while the trace backend is
// down: clients get RESOURCE_EXHAUSTED (gRPC) and 429 (HTTP), the agent's memory stays
// bounded, and everything accepted is delivered once the backend is back.
func TestQueueFullRefusesThenDelivers(t *testing.T) {
	j := jaegertest.Start(t)
	j.Stop()
	a := traceConfig(t, "full-e2e", j.OTLPGRPCEndpoint(), "",
		"queue: {max_size: 4MiB, segment_size: 1MiB}\n")
	p := a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := ptraceotlp.NewGRPCClient(dial(t, a.grpc))
	var accepted []string
	refusedGRPC := 0
	for seq := 0; seq < 5000 && refusedGRPC < 20; seq++ {
		req, tid := spanRequest(seq, 20) // ~7 KB per request
		_, err := client.Export(ctx, req)
		switch status.Code(err) {
		case codes.OK:
			accepted = append(accepted, tid)
		case codes.ResourceExhausted:
			refusedGRPC++
		default:
			t.Fatalf("request %d: %v, want OK or RESOURCE_EXHAUSTED", seq, err)
		}
	}
	if refusedGRPC == 0 {
		t.Fatal("the queue never filled")
	}
	req, _ := spanRequest(999999, 20)
	body, _ := req.MarshalProto()
	resp, _ := postOTLP(t, "http://"+a.http+"/v1/traces", body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("HTTP with a full queue: %d Retry-After=%q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	rss := rssMB(t, p.cmd.Process.Pid)
	t.Logf("queue full after %d requests (%d spans); agent RSS %.1f MB", len(accepted), len(accepted)*20, rss)
	const rssBound = 64
	if rss > rssBound {
		t.Errorf("agent RSS %.1f MB with a full queue, want under %d MB", rss, rssBound)
	}
	if err := j.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, j, accepted, 20, 2*time.Minute)
}

// rssMB reads a process's resident set size.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func postOTLP(t *testing.T, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// TestOTLPReceiverAcrossReloads sends spans without pause while the configuration is
// reloaded twice: a change that leaves the receiver alone keeps its listeners open (no
// request is refused), and a change of a receiver port moves it; every span accepted
// before, during and after reaches Jaeger.
func TestOTLPReceiverAcrossReloads(t *testing.T) {
	j := jaegertest.Shared(t)
	a := traceConfig(t, "reload-traces-e2e", j.OTLPGRPCEndpoint(), "", "")
	p := a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var (
		accepted []string
		refused  map[codes.Code]int
		wg       sync.WaitGroup
	)
	wg.Go(func() { accepted, refused = sendSpans(ctx, dial(t, a.grpc), 5, 20*time.Millisecond, stop) })
	time.Sleep(time.Second)

	// 1. The exporter's batching changes; the receiver and its queue stay.
	cfg := string(mustReadFile(t, a.config))
	writeFile(t, a.config, strings.Replace(cfg, "batch: {max_wait: 200ms}", "batch: {max_wait: 300ms}", 1))
	waitLogCount(t, p, "config reloaded", 1)
	time.Sleep(time.Second)
	if n := strings.Count(string(mustReadFile(t, p.log)), `"msg":"otlp receiver listening"`); n != 1 {
		t.Errorf("the receiver restarted on a reload that did not change it (%d starts)", n)
	}

	// 2. The HTTP port moves: the receiver is rebuilt, the gRPC clients reconnect.
	ports, err := backendtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	newHTTP := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg = string(mustReadFile(t, a.config))
	writeFile(t, a.config, strings.Replace(cfg, a.http, newHTTP, 1))
	waitLogCount(t, p, "config reloaded", 2)
	waitLogCount(t, p, "otlp receiver listening", 2)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	req, _ := spanRequest(424242, 5)
	body, _ := req.MarshalProto()
	if resp, _ := postOTLP(t, "http://"+newHTTP+"/v1/traces", body); resp.StatusCode != 200 {
		t.Errorf("the moved HTTP receiver answered %d", resp.StatusCode)
	}
	if refused[codes.ResourceExhausted] > 0 || refused[codes.InvalidArgument] > 0 {
		t.Errorf("requests refused across the reloads: %v", refused)
	}
	t.Logf("%d requests accepted, refused while the receiver moved: %v", len(accepted), refused)
	checkDelivered(t, j, accepted, 5, time.Minute)
}
