package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// errorsAgent writes a config with a log file source, the OTLP and Sentry receivers,
// and Loki, Jaeger and the strict Sentry receiver as backends.
func errorsAgent(t *testing.T, service, lokiURL, jaegerGRPC, sentryDSN, errorsExtra string) (dir, cfgPath, otlpGRPC, sentryAddr string) {
	t.Helper()
	ports, err := backendtest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	otlpGRPC = fmt.Sprintf("127.0.0.1:%d", ports[0])
	sentryAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app, environment: e2e}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
      parser: {format: json}
receivers:
  otlp: {grpc: {listen: "%[3]s"}, http: {listen: "127.0.0.1:%[4]d"}}
  sentry: {listen: "%[5]s", public_key: e2e-public-key}
exporters:
  loki: {url: %[6]s, batch: {max_wait: 200ms}}
  otlp: {endpoint: "http://%[7]s", batch: {max_wait: 200ms}}
  sentry: {dsn: "%[8]s"}
grafana: {url: "https://grafana.example.com", tempo_datasource_uid: tempo, loki_datasource_uid: loki}
%[9]s`, dir, service, otlpGRPC, ports[1], sentryAddr, lokiURL, jaegerGRPC, sentryDSN, errorsExtra)
	cfgPath = filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, cfg)
	return dir, cfgPath, otlpGRPC, sentryAddr
}

const javaStack = "java.lang.IllegalStateException: payment declined\n\tat com.shop.Payments.charge(Payments.java:88)\n\tat com.shop.Orders.place(Orders.java:42)\n"

// TestErrorsFromAllThreePathsShareTheTraceID runs one failing "request": the app's
// Sentry SDK reports an exception, the app logs the error with its stack trace, and an
// OpenTelemetry span records it. All three become Sentry events at a strict Sentry
// receiver with the request's trace ID, the log line in Loki carries that trace ID and
// the log-derived event's ID, and the span in Jaeger carries the trace ID.
func TestErrorsFromAllThreePathsShareTheTraceID(t *testing.T) {
	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("upstream-key"), sentrytest.WithProject(7))
	dir, cfgPath, otlpGRPC, sentryAddr := errorsAgent(t, "errors-e2e", loki.URL, j.OTLPGRPCEndpoint(), sentrySrv.DSN("upstream-key", 7), "")
	mkdirs(t, filepath.Join(dir, "logs"))
	p := startAgent(t, cfgPath)
	waitLog(t, p, "otlp receiver listening")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute)

	traceID := trace.TraceID{0x5e, 0x17, 0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	parentSpan := trace.SpanID{0xaa, 1, 2, 3, 4, 5, 6, 7}
	tid := traceID.String()

	// 1. The app's Sentry SDK, its DSN pointing at the sidecar.
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: fmt.Sprintf("http://e2e-public-key@%s/1", sentryAddr)})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	// The app continues the request's trace (sentry-trace header from upstream).
	pc, err := sentry.PropagationContextFromHeaders(tid+"-"+parentSpan.String()+"-1", "")
	if err != nil {
		t.Fatal(err)
	}
	hub.ConfigureScope(func(s *sentry.Scope) {
		s.SetPropagationContext(pc)
		s.SetTag("request_id", "req-e2e-1")
	})
	sdkID := hub.CaptureException(errors.New("payment declined: card expired"))
	if sdkID == nil || !hub.Flush(10*time.Second) {
		t.Fatal("the SDK did not send its event")
	}

	// 2. The app logs the error with its stack trace.
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	line, _ := json.Marshal(map[string]string{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": "error",
		"msg": "payment declined", "trace_id": tid, "span_id": parentSpan.String(), "request_id": "req-e2e-1", "stack": javaStack})
	w.line("%s", line)
	w.flush()

	// 3. An OpenTelemetry span records the error in the same trace.
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pctx := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: parentSpan, TraceFlags: trace.FlagsSampled}))
	_, span := tp.Tracer("e2e").Start(pctx, "POST /pay")
	span.RecordError(errors.New("card expired"), trace.WithStackTrace(true), trace.WithAttributes(attribute.String("payment", "visa")))
	span.SetStatus(otelcodes.Error, "card expired")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	events, err := sentrySrv.WaitEvents(ctx, 3)
	if err != nil {
		t.Fatalf("events at the Sentry receiver: %v (got %v)", err, sentrySrv.Events())
	}
	bySource := map[string]sentrytest.Event{}
	for _, e := range events {
		src, _ := e.Tag("outrider.source")
		bySource[src] = e
		if e.TraceID() != tid {
			t.Errorf("%s event: trace_id %q, want %q", src, e.TraceID(), tid)
		}
		if pod, _ := e.Tag("k8s.pod.name"); pod != "errors-e2e-0" {
			t.Errorf("%s event: k8s.pod.name tag %q", src, pod)
		}
		if !strings.Contains(string(e.Raw), "grafana.example.com") {
			t.Errorf("%s event has no Grafana links", src)
		}
	}
	for _, src := range []string{"sdk", "log", "span"} {
		if _, ok := bySource[src]; !ok {
			t.Errorf("no event from the %s path; got %v", src, events)
		}
	}
	if e := bySource["log"]; len(e.Exceptions()) == 0 || len(e.Exceptions()[len(e.Exceptions())-1].Frames) < 2 {
		t.Errorf("log event lacks the parsed Java frames: %s", e.Raw)
	}
	if e := bySource["sdk"]; e.EventID() != strings.ReplaceAll(string(*sdkID), "-", "") {
		t.Errorf("SDK event id %q, want the SDK's %q", e.EventID(), *sdkID)
	}
	if rid, _ := bySource["sdk"].Tag("request_id"); rid != "req-e2e-1" {
		t.Errorf("request_id tag %q", rid)
	}

	entries, err := loki.WaitCount(ctx, `{service="errors-e2e", source="app"}`, start, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if md := entries[0].Metadata; md["trace_id"] != tid || md["sentry_event_id"] != bySource["log"].EventID() {
		t.Errorf("Loki line metadata %v: want trace_id %s and sentry_event_id %s", md, tid, bySource["log"].EventID())
	}
	spans, err := j.WaitForTrace(ctx, tid, 1)
	if err != nil || len(spans) != 1 || spans[0].Name != "POST /pay" {
		t.Fatalf("span in Jaeger: %v %v", spans, err)
	}
	if spanEv := bySource["span"]; spanEv.SpanID() != spans[0].SpanID {
		t.Errorf("span event span_id %q, Jaeger's span %q", spanEv.SpanID(), spans[0].SpanID)
	}
}

// TestCrashLoopYieldsBoundedEvents writes 500 identical error lines with a stack trace
// per second for 6 s: the agent sends at most per_window events per window, later
// events carry how many they stand for, and /healthz keeps answering quickly.
func TestCrashLoopYieldsBoundedEvents(t *testing.T) {
	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("k"), sentrytest.WithProject(3))
	dir, cfgPath, _, _ := errorsAgent(t, "crashloop-e2e", loki.URL, j.OTLPGRPCEndpoint(), sentrySrv.DSN("k", 3),
		"errors: {window: 2s, per_window: 3}\n")
	mkdirs(t, filepath.Join(dir, "logs"))
	p := startAgent(t, cfgPath)
	addr := waitListen(t, p)
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	const seconds, perSecond = 6, 500
	var slowest time.Duration
	for s := 0; s < seconds; s++ {
		tick := time.Now()
		for i := 0; i < perSecond; i++ {
			line, _ := json.Marshal(map[string]string{"level": "error", "msg": fmt.Sprintf("crash %d", s*perSecond+i), "stack": javaStack})
			w.line("%s", line)
		}
		w.flush()
		hs := time.Now()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/healthz during the crash loop: %v %v", resp, err)
		}
		resp.Body.Close()
		slowest = max(slowest, time.Since(hs))
		time.Sleep(time.Second - time.Since(tick))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := loki.WaitCount(ctx, `{service="crashloop-e2e"}`, time.Now().Add(-2*time.Minute), seconds*perSecond, 60*time.Second); err != nil {
		t.Fatalf("the crash loop's lines in Loki: %v", err)
	}
	time.Sleep(3 * time.Second) // let the last events through
	events := sentrySrv.Events()
	windows := seconds/2 + 2 // window boundaries the loop can straddle, plus the drain
	if len(events) == 0 || len(events) > 3*windows {
		t.Fatalf("%d events for %d identical errors, want 1..%d (per_window 3 per 2s window)", len(events), seconds*perSecond, 3*windows)
	}
	carried := 0
	for _, e := range events {
		if c, ok := e.Payload["contexts"].(map[string]any); ok {
			if o, ok := c["outrider"].(map[string]any); ok {
				if n, ok := o["suppressed_events"].(float64); ok {
					carried += int(n)
				}
			}
		}
	}
	if carried == 0 {
		t.Error("no event says how many it stands for")
	}
	t.Logf("%d lines -> %d events carrying %d suppressed; slowest /healthz %v", seconds*perSecond, len(events), carried, slowest)
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
