package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// errorsToLokiAgent writes a config with a plain log file source (crash output), the
// OTLP and Sentry receivers, Loki and Jaeger, errors.to_loki, and exporters.sentry
// only when sentryDSN is set.
func errorsToLokiAgent(t *testing.T, service, lokiURL, jaegerGRPC, sentryDSN string) (dir, cfgPath, otlpGRPC, sentryAddr string) {
	t.Helper()
	ports, err := backendtest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	otlpGRPC = fmt.Sprintf("127.0.0.1:%d", ports[0])
	sentryAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	sentryExp := ""
	if sentryDSN != "" {
		sentryExp = fmt.Sprintf("  sentry: {dsn: %q}\n", sentryDSN)
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app, environment: e2e}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
logs:
  sources:
    - name: crash
      path: %[1]s/logs/*.log
      parser: {format: plain}
receivers:
  otlp: {grpc: {listen: "%[3]s"}, http: {listen: "127.0.0.1:%[4]d"}}
  sentry: {listen: "%[5]s", public_key: e2e-public-key}
exporters:
  loki: {url: %[6]s, batch: {max_wait: 200ms}}
  otlp: {endpoint: "http://%[7]s", batch: {max_wait: 200ms}}
%[8]serrors: {to_loki: true, environment: e2e-env, release: shop@1.2.3}
grafana: {url: "https://grafana.example.com", tempo_datasource_uid: tempo, loki_datasource_uid: loki}
`, dir, service, otlpGRPC, ports[1], sentryAddr, lokiURL, jaegerGRPC, sentryExp)
	cfgPath = filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, cfg)
	mkdirs(t, filepath.Join(dir, "logs"))
	return dir, cfgPath, otlpGRPC, sentryAddr
}

// sdkCapture sends one exception through a real sentry-go client whose DSN points at
// the sidecar, in the trace tid, and returns its event ID (32 hex digits).
func sdkCapture(t *testing.T, sentryAddr, tid, parentSpan, requestID, msg string) string {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: fmt.Sprintf("http://e2e-public-key@%s/1", sentryAddr)})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	pc, err := sentry.PropagationContextFromHeaders(tid+"-"+parentSpan+"-1", "")
	if err != nil {
		t.Fatal(err)
	}
	hub.ConfigureScope(func(s *sentry.Scope) {
		s.SetPropagationContext(pc)
		s.SetTag("request_id", requestID)
	})
	id := hub.CaptureException(errors.New(msg))
	if id == nil || !hub.Flush(10*time.Second) {
		t.Fatal("the SDK did not send its event")
	}
	return strings.ReplaceAll(string(*id), "-", "")
}

// writeGoPanic appends a Go runtime panic, as a crashing program prints it, to the
// plain log, followed by a line that closes the multi-line record.
func writeGoPanic(t *testing.T, path string) {
	t.Helper()
	w := openAppend(t, path)
	w.line("%s INFO  serving", stamp())
	w.line("panic: runtime error: index out of range [3] with length 3")
	w.line("")
	w.line("goroutine 1 [running]:")
	w.line("main.checkout(...)")
	w.line("\t/app/checkout.go:31")
	w.line("main.main()")
	w.line("\t/app/main.go:12 +0x1d")
	w.line("exit status 2")
	w.line("%s INFO  restarted", stamp())
	w.flush()
}

// sendErrorSpan exports one span with status ERROR and an exception event, in the trace
// traceID under parent, to the agent's OTLP receiver, and returns its span ID.
func sendErrorSpan(ctx context.Context, t *testing.T, otlpGRPC string, traceID trace.TraceID, parent trace.SpanID) string {
	t.Helper()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pctx := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: parent, TraceFlags: trace.FlagsSampled}))
	_, span := tp.Tracer("e2e").Start(pctx, "POST /checkout")
	span.RecordError(errors.New("stock service unavailable"))
	span.SetStatus(otelcodes.Error, "stock service unavailable")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return span.SpanContext().SpanID().String()
}

// errorLine is one line of the {source="outrider-errors"} stream, decoded.
type errorLine struct {
	lokitest.Entry
	summary map[string]any
}

func (l errorLine) field(k string) string { s, _ := l.summary[k].(string); return s }

// waitErrorLines waits for want lines in the service's error stream, then a little
// longer to see that no more come, and returns them by their "source" field.
func waitErrorLines(ctx context.Context, t *testing.T, loki *lokitest.Loki, service string, start time.Time, want int) map[string]errorLine {
	t.Helper()
	query := fmt.Sprintf(`{service=%q, source="outrider-errors"}`, service)
	if _, err := loki.WaitCount(ctx, query, start, want, 60*time.Second); err != nil {
		t.Fatalf("error events in Loki: %v", err)
	}
	time.Sleep(3 * time.Second) // a duplicate would arrive within the batch wait
	entries, err := loki.Query(ctx, query, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != want {
		var lines []string
		for _, e := range entries {
			lines = append(lines, e.Line)
		}
		t.Fatalf("%d lines in %s, want exactly %d:\n%s", len(entries), query, want, strings.Join(lines, "\n"))
	}
	out := map[string]errorLine{}
	for _, e := range entries {
		l := errorLine{Entry: e}
		if err := json.Unmarshal([]byte(e.Line), &l.summary); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, e.Line)
		}
		src := l.field("source")
		if _, dup := out[src]; dup {
			t.Errorf("two lines from the %s path", src)
		}
		out[src] = l
		if l.Metadata["sentry_event_id"] != l.field("event_id") || !eventIDPattern.MatchString(l.field("event_id")) {
			t.Errorf("%s line: sentry_event_id %q, line's event_id %q", src, l.Metadata["sentry_event_id"], l.field("event_id"))
		}
		if l.Metadata["exception_type"] == "" || l.Metadata["exception_type"] != l.field("type") {
			t.Errorf("%s line: exception_type %q, line's type %q", src, l.Metadata["exception_type"], l.field("type"))
		}
		if l.Metadata["fingerprint"] == "" || l.Metadata["fingerprint"] != l.field("fingerprint") {
			t.Errorf("%s line: fingerprint %q, line's %q", src, l.Metadata["fingerprint"], l.field("fingerprint"))
		}
		for k, v := range map[string]string{"namespace": "e2e", "pod": service + "-0", "container": "app"} {
			if e.Labels[k] != v {
				t.Errorf("%s line: label %s=%q, want %q (labels %v)", src, k, e.Labels[k], v, e.Labels)
			}
		}
		for _, id := range []string{"trace_id", "span_id", "request_id", "sentry_event_id", "fingerprint", "exception_type"} {
			if _, isLabel := e.Labels[id]; isLabel {
				t.Errorf("%s line: %s is a label, want structured metadata", src, id)
			}
		}
		if l.field("environment") == "" {
			t.Errorf("%s line without environment: %s", src, e.Line)
		}
	}
	return out
}

var eventIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestErrorEventsToLokiWithoutSentry runs the agent with errors.to_loki and no
// exporters.sentry: an app's Sentry SDK event, a Go panic in a log file and an error
// span each become exactly one line in {source="outrider-errors"} with their event ID,
// exception type, fingerprint and correlation IDs as structured metadata; the panic's
// own log line carries the same event ID.
func TestErrorEventsToLokiWithoutSentry(t *testing.T) {
	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	const service = "errors-to-loki"
	dir, cfgPath, otlpGRPC, sentryAddr := errorsToLokiAgent(t, service, loki.URL, j.OTLPGRPCEndpoint(), "")
	p := startAgent(t, cfgPath)
	waitLog(t, p, "otlp receiver listening")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute)

	traceID := trace.TraceID{0x10, 0xc1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	parent := trace.SpanID{0xbb, 1, 2, 3, 4, 5, 6, 7}
	tid := traceID.String()

	sdkID := sdkCapture(t, sentryAddr, tid, parent.String(), "req-loki-1", "payment declined: card expired")
	writeGoPanic(t, filepath.Join(dir, "logs", "crash.log"))
	spanID := sendErrorSpan(ctx, t, otlpGRPC, traceID, parent)

	lines := waitErrorLines(ctx, t, loki, service, start, 3)
	sdk, log, span := lines["sdk"], lines["log"], lines["span"]
	if sdk.Line == "" || log.Line == "" || span.Line == "" {
		t.Fatalf("want one line from each of sdk, log and span; got %v", lines)
	}
	if sdk.Metadata["sentry_event_id"] != sdkID {
		t.Errorf("SDK line sentry_event_id %q, want the SDK's event ID %q", sdk.Metadata["sentry_event_id"], sdkID)
	}
	if sdk.Metadata["exception_type"] != "*errors.errorString" || sdk.field("value") != "payment declined: card expired" {
		t.Errorf("SDK line: %s", sdk.Line)
	}
	if sdk.Metadata["trace_id"] != tid || sdk.Metadata["request_id"] != "req-loki-1" || sdk.Labels["level"] != "error" {
		t.Errorf("SDK line metadata %v labels %v", sdk.Metadata, sdk.Labels)
	}
	// sentry-go sets the release from the build's VCS revision; the agent's is for
	// events without one.
	if sdk.field("platform") != "go" || sdk.field("release") == "" || log.field("release") != "shop@1.2.3" {
		t.Errorf("SDK line platform/release: %s", sdk.Line)
	}
	if links, _ := sdk.summary["links"].(map[string]any); links["tempo_trace"] == nil {
		t.Errorf("SDK line has no Grafana link to the trace: %s", sdk.Line)
	}

	if log.Labels["level"] != "fatal" || log.field("platform") != "go" || !strings.Contains(log.field("value"), "index out of range") {
		t.Errorf("panic line labels %v: %s", log.Labels, log.Line)
	}
	if n, _ := log.summary["frames"].(float64); n < 2 || !strings.Contains(log.field("culprit"), "checkout") {
		t.Errorf("panic line: frames %v culprit %q, want the goroutine's frames with main.checkout on top", log.summary["frames"], log.field("culprit"))
	}
	crash, err := loki.WaitCount(ctx, fmt.Sprintf(`{service=%q, source="crash"} |= "goroutine 1"`, service), start, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if crash[0].Metadata["sentry_event_id"] != log.Metadata["sentry_event_id"] {
		t.Errorf("the panic's log line carries sentry_event_id %q, its error line %q", crash[0].Metadata["sentry_event_id"], log.Metadata["sentry_event_id"])
	}

	if span.Metadata["trace_id"] != tid || span.Metadata["span_id"] != spanID || span.field("transaction") != "POST /checkout" {
		t.Errorf("span line metadata %v: %s (want trace %s span %s)", span.Metadata, span.Line, tid, spanID)
	}
	if span.field("value") != "stock service unavailable" {
		t.Errorf("span line: %s", span.Line)
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// TestErrorEventsToLokiAndSentryShareTheEventID runs with both exporters: every event
// reaches the strict Sentry receiver and Loki once, and each Loki line's
// sentry_event_id is the ID of an event Sentry received, from the same path.
func TestErrorEventsToLokiAndSentryShareTheEventID(t *testing.T) {
	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("upstream-key"), sentrytest.WithProject(9))
	const service = "errors-to-both"
	dir, cfgPath, otlpGRPC, sentryAddr := errorsToLokiAgent(t, service, loki.URL, j.OTLPGRPCEndpoint(), sentrySrv.DSN("upstream-key", 9))
	p := startAgent(t, cfgPath)
	waitLog(t, p, "otlp receiver listening")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now().Add(-time.Minute)

	traceID := trace.TraceID{0x20, 0xc2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	parent := trace.SpanID{0xcc, 1, 2, 3, 4, 5, 6, 7}
	sdkID := sdkCapture(t, sentryAddr, traceID.String(), parent.String(), "req-both-1", "inventory out of sync")
	writeGoPanic(t, filepath.Join(dir, "logs", "crash.log"))
	sendErrorSpan(ctx, t, otlpGRPC, traceID, parent)

	events, err := sentrySrv.WaitEvents(ctx, 3)
	if err != nil {
		t.Fatalf("events at the Sentry receiver: %v (got %v)", err, sentrySrv.Events())
	}
	lines := waitErrorLines(ctx, t, loki, service, start, 3)
	var atSentry, inLoki []string
	for _, e := range events {
		src, _ := e.Tag("outrider.source")
		atSentry = append(atSentry, src+":"+e.EventID())
		if l := lines[src]; l.Metadata["sentry_event_id"] != e.EventID() {
			t.Errorf("%s: Loki line sentry_event_id %q, Sentry event %q", src, l.Metadata["sentry_event_id"], e.EventID())
		}
	}
	for src, l := range lines {
		inLoki = append(inLoki, src+":"+l.Metadata["sentry_event_id"])
	}
	sort.Strings(atSentry)
	sort.Strings(inLoki)
	if strings.Join(atSentry, " ") != strings.Join(inLoki, " ") {
		t.Errorf("events at Sentry %v, lines in Loki %v: want the same IDs from the same paths", atSentry, inLoki)
	}
	if lines["sdk"].Metadata["sentry_event_id"] != sdkID {
		t.Errorf("SDK line sentry_event_id %q, the SDK's %q", lines["sdk"].Metadata["sentry_event_id"], sdkID)
	}
	if n := len(sentrySrv.Events()); n != 3 {
		t.Errorf("%d events at Sentry, want 3", n)
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// TestErrorEventsToLokiWaitOnDiskWhileLokiIsDown: an SDK event accepted while Loki is
// down stays in the errors queue across an agent restart and reaches Loki once, when
// Loki is back.
func TestErrorEventsToLokiWaitOnDiskWhileLokiIsDown(t *testing.T) {
	loki := startLoki(t)
	j := jaegertest.Shared(t)
	const service = "errors-to-loki-down"
	_, cfgPath, _, sentryAddr := errorsToLokiAgent(t, service, loki.URL, j.OTLPGRPCEndpoint(), "")
	loki.Stop()
	p := startAgent(t, cfgPath)
	waitLog(t, p, "sentry endpoint listening")
	start := time.Now().Add(-time.Minute)
	traceID := trace.TraceID{0x30, 0xc3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	sdkID := sdkCapture(t, sentryAddr, traceID.String(), "dd01020304050607", "req-down-1", "ledger unreachable")
	time.Sleep(time.Second)      // the pump hands it to the Loki exporter, which cannot send it
	_ = p.stop(30 * time.Second) // the exporter's flush fails: Loki is down

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := loki.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	p2 := startAgent(t, cfgPath)
	lines := waitErrorLines(ctx, t, loki, service, start, 1)
	if l := lines["sdk"]; l.Metadata["sentry_event_id"] != sdkID || l.Metadata["trace_id"] != traceID.String() {
		t.Errorf("line after the restart: metadata %v, want sentry_event_id %s", l.Metadata, sdkID)
	}
	if err := p2.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}
