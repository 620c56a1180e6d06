package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// TestLokiWithoutStructuredMetadata runs the agent binary (structured_metadata left
// at its default, auto) against a real Loki started with
// limits_config.allow_structured_metadata false, and the strict Sentry receiver. A file
// of logfmt lines with trace IDs and a Java error with its stack trace, and an OTLP
// log record with a trace ID, must all land in Loki exactly once without structured
// metadata: the IDs the line holds stay as they are, the others (the OTLP record's
// trace and span IDs, the error's Sentry event ID) are added to the line. The agent
// says once that Loki refuses structured metadata, its gauge is 1 and it dropped
// nothing. After a restart more lines land, still exactly once: the file positions
// were saved only once the resent lines were stored.
func TestLokiWithoutStructuredMetadata(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	loki, err := lokitest.Start(ctx, t.TempDir(), lokitest.WithoutStructuredMetadata())
	if err != nil {
		t.Fatalf("real Loki is required: %v", err)
	}
	t.Cleanup(loki.Stop)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("nosm-key"), sentrytest.WithProject(4))

	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"))
	service := fmt.Sprintf("nosm-%d", time.Now().UnixNano())
	ports, err := backendtest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	otlpHTTP := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
receivers:
  otlp: {grpc: {listen: "off"}, http: {listen: "%[3]s"}}
exporters:
  loki: {url: %[4]s, batch: {max_wait: 200ms}}
  sentry: {dsn: "%[5]s"}
`, dir, service, otlpHTTP, loki.URL, sentrySrv.DSN("nosm-key", 4)))

	const n = 300
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	writeLines := func(from, to int) {
		for i := from; i < to; i++ {
			w.line("%s level=info msg=\"order done\" seq=%d trace_id=%032x", time.Now().UTC().Format(time.RFC3339Nano), i, i+1)
		}
		w.flush()
	}
	writeLines(0, n)
	w.line("%s ERROR payment failed seq=%d", time.Now().UTC().Format("2006-01-02 15:04:05.000"), n)
	w.line("%s", strings.TrimSuffix(javaStack, "\n"))
	w.flush()

	p := startAgent(t, cfgPath)
	waitLog(t, p, "otlp receiver listening")
	const otlpTrace, otlpSpan = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	body := fmt.Sprintf(`{"resourceLogs":[{"resource":{},"scopeLogs":[{"logRecords":[{"timeUnixNano":"%d","severityText":"INFO","body":{"stringValue":"otlp record seq=%d"},"traceId":"%s","spanId":"%s"}]}]}]}`,
		time.Now().UnixNano(), n+1, otlpTrace, otlpSpan)
	resp, err := http.Post("http://"+otlpHTTP+"/v1/logs", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP logs answered %s", resp.Status)
	}

	events, err := sentrySrv.WaitEvents(ctx, 1)
	if err != nil {
		t.Fatalf("the Java error's event: %v", err)
	}
	eventID := events[0].EventID()
	query := fmt.Sprintf(`{service=%q}`, service)
	start := time.Now().Add(-time.Hour)
	entries, err := loki.WaitCount(ctx, query, start, n+2, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkNoMetadata := func(entries []lokitest.Entry) {
		t.Helper()
		for _, e := range entries {
			for name := range e.Metadata {
				if name != "detected_level" { // Loki's own; absent while it refuses metadata
					t.Errorf("entry %q has structured metadata %v", firstLine(e.Line), e.Metadata)
				}
			}
		}
	}
	checkNoMetadata(entries)
	var lines []string
	var javaEntry, otlpEntry string
	for _, e := range entries {
		lines = append(lines, e.Line)
		switch {
		case strings.Contains(e.Line, "ERROR payment failed"):
			javaEntry = e.Line
		case strings.Contains(e.Line, "otlp record"):
			otlpEntry = e.Line
		}
	}
	if missing, dups := countSeq(t, lines, n+2); missing != 0 || dups != 0 {
		t.Fatalf("first run: %d lines missing, %d duplicated of %d", missing, dups, n+2)
	}
	if !strings.Contains(firstLine(javaEntry), " sentry_event_id="+eventID) || !strings.Contains(javaEntry, "\tat com.shop.Orders.place(Orders.java:42)") {
		t.Errorf("the Java error entry does not keep its event ID on its first line and its trace under it:\n%s", javaEntry)
	}
	if want := fmt.Sprintf("otlp record seq=%d trace_id=%s span_id=%s", n+1, otlpTrace, otlpSpan); otlpEntry != want {
		t.Errorf("OTLP entry %q, want %q", otlpEntry, want)
	}
	for _, l := range lines {
		if strings.Contains(l, "msg=\"order done\"") && strings.Count(l, "trace_id=") != 1 {
			t.Errorf("a line that holds its trace ID got it again: %q", l)
		}
	}

	addr := waitListen(t, p)
	metrics := scrapeText(t, "http://"+addr+"/metrics")
	for _, want := range []string{`outrider_loki_structured_metadata_disallowed{exporter="loki"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "outrider_exporter_dropped_records_total{") && !strings.HasSuffix(l, " 0") {
			t.Errorf("the agent dropped records: %s", l)
		}
	}

	if err := p.stop(30 * time.Second); err != nil {
		t.Fatalf("agent stop: %v", err)
	}
	log, _ := os.ReadFile(p.log)
	if c := strings.Count(string(log), "loki refuses structured metadata"); c != 1 {
		t.Errorf("the agent log says %d times that Loki refuses structured metadata, want once", c)
	}

	writeLines(n+2, 2*n)
	p2 := startAgent(t, cfgPath)
	if _, err := loki.WaitCount(ctx, query, start, 2*n, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // a line sent twice would arrive with the others
	entries, err = loki.Query(ctx, query, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkNoMetadata(entries)
	lines = lines[:0]
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	if missing, dups := countSeq(t, lines, 2*n); missing != 0 || dups != 0 {
		t.Errorf("after a restart: %d lines missing, %d duplicated of %d", missing, dups, 2*n)
	}
	if len(entries) != 2*n {
		t.Errorf("Loki holds %d entries, want %d", len(entries), 2*n)
	}
	_ = p2.stop(30 * time.Second)
}

// scrapeText returns the text of a /metrics page.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
