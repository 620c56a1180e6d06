package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
	"github.com/outrider-dev/outrider/test/monitoring"
)

// TestDashboardAndAlertMetricsExist runs the real agent with every component — a
// file source, the OTLP and Sentry receivers, the Loki, OTLP and Sentry exporters
// against a real Loki, a real Jaeger and the strict Sentry receiver, and a
// certificate from a real Vault that is re-issued, reloaded and revoked — sends it a
// log line, an error with its stack trace, a failing span and a Sentry SDK event, and
// then holds every metric that a panel of examples/grafana/dashboards or an alert of
// deploy/monitoring reads against the agent's /metrics: each must be there (a
// histogram's _bucket, _sum and _count under its name). It also runs the service
// dashboard's LogQL queries against the real Loki: each must be accepted, and the log
// volume must count the lines sent.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	queries, err := monitoring.AllQueries(monitoring.Root())
	if err != nil {
		t.Fatal(err)
	}
	// metric name → where it is used
	used := map[string][]string{}
	for _, q := range queries {
		names, err := monitoring.MetricNames(q.Expr)
		if err != nil {
			t.Fatalf("%s: %q: %v", q.Where, q.Expr, err)
		}
		for _, n := range names {
			used[n] = append(used[n], q.Where)
		}
	}
	if len(used) < 30 {
		t.Fatalf("the dashboards and alerts read only %d metrics; the files were not found or not parsed", len(used))
	}

	loki := sharedLoki(t)
	j := jaegertest.Shared(t)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("upstream-key"), sentrytest.WithProject(7))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, err := vaulttest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("real Vault is required: %v", err)
	}
	t.Cleanup(v.Stop)
	for _, w := range []struct {
		path string
		data map[string]any
	}{
		{"sys/mounts/pki", map[string]any{"type": "pki", "config": map[string]any{"max_lease_ttl": "2h"}}},
		{"pki/root/generate/internal", map[string]any{"common_name": "outrider e2e CA", "ttl": "2h"}},
		{"pki/roles/app", map[string]any{"allow_any_name": true, "generate_lease": true, "max_ttl": "1h", "key_type": "ec", "key_bits": 256}},
	} {
		if _, err := v.Client.Logical().WriteWithContext(ctx, w.path, w.data); err != nil {
			t.Fatalf("vault write %s: %v", w.path, err)
		}
	}

	const service = "metricnames-e2e"
	// The secrets' side lives outside the agent's folder, which errorsAgent makes.
	sdir := t.TempDir()
	tokenFile := filepath.Join(sdir, "vault-token")
	writeFile(t, tokenFile, v.RootToken)
	reloadMark := filepath.Join(sdir, "reloaded")
	dir, cfgPath, otlpGRPC, sentryAddr := errorsAgent(t, service, loki.URL, j.OTLPGRPCEndpoint(), sentrySrv.DSN("upstream-key", 7), fmt.Sprintf(`secrets:
  vault:
    address: %[1]s
    auth: {method: token, token_file: %[2]s}
  poll_interval: 1s
  revoke_grace: 100ms
  reload: {method: exec, command: ["/bin/sh", "-c", "echo reloaded >> %[3]s"]}
  files:
    - path: %[4]s/tls.pem
      template: '{{ with pkiCert "pki/issue/app" "common_name=app.e2e.test" "ttl=6s" }}{{ .Cert }}{{ end }}'
`, v.Addr, tokenFile, reloadMark, sdir))
	mkdirs(t, filepath.Join(dir, "logs"))

	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)
	metricsURL := "http://" + waitListen(t, agent) + "/metrics"
	waitFor(t, 30*time.Second, "the agent ready", func() bool {
		resp, err := http.Get(strings.TrimSuffix(metricsURL, "/metrics") + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// The application: log lines (one an error with its stack trace), a failing span,
	// and an exception through its Sentry SDK.
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	for i := range 20 {
		w.line(`{"time":%q,"level":"info","msg":"request %d served"}`, time.Now().UTC().Format(time.RFC3339Nano), i)
	}
	line, _ := json.Marshal(map[string]string{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": "error",
		"msg": "payment declined", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "stack": javaStack})
	w.line("%s", line)
	w.flush()

	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(sdkresource.NewSchemaless(semconv.ServiceName(service))))
	_, span := tp.Tracer("e2e").Start(ctx, "POST /pay")
	span.RecordError(errors.New("card expired"))
	span.SetStatus(otelcodes.Error, "card expired")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: fmt.Sprintf("http://e2e-public-key@%s/1", sentryAddr)})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	if id := hub.CaptureException(errors.New("payment declined: card expired")); id == nil || !hub.Flush(10*time.Second) {
		t.Fatal("the SDK did not send its event")
	}

	if _, err := sentrySrv.WaitEvents(ctx, 3); err != nil {
		t.Fatalf("events at the Sentry receiver: %v", err)
	}
	if _, err := loki.WaitCount(ctx, `{service="`+service+`"} |= "payment declined"`, start, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The certificate is re-issued at 2/3 of its 6 s: a rotation, a reload and a
	// revocation of the old lease.
	waitFor(t, 45*time.Second, "a certificate rotation with its reload", func() bool {
		data, _ := os.ReadFile(reloadMark)
		return strings.Count(string(data), "reloaded") >= 2
	})

	families := scrape(t, metricsURL)
	var missing []string
	for name, where := range used {
		if !exposed(families, name) {
			missing = append(missing, fmt.Sprintf("%s (read by %s)", name, strings.Join(where, "; ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not in the agent's /metrics: %s", m)
	}
	// The labels a query matches on or groups by must be the metric's own, or ones
	// the scrape adds (Prometheus: job, instance; the PodMonitor: namespace, pod,
	// container, endpoint, service).
	scrapeLabels := map[string]bool{"job": true, "instance": true, "namespace": true, "pod": true, "container": true, "endpoint": true, "service": true}
	for _, q := range queries {
		uses, err := monitoring.LabelUses(q.Expr)
		if err != nil {
			t.Fatalf("%s: %v", q.Where, err)
		}
		for name, labels := range uses {
			have := familyLabels(families, name)
			if have == nil {
				continue // reported above
			}
			for _, l := range labels {
				if !scrapeLabels[l] && !have[l] {
					t.Errorf("%s: %q uses label %s, which %s does not have (it has %v)", q.Where, q.Expr, l, name, have)
				}
			}
		}
	}
	t.Logf("%d metric names read by the dashboards and alerts, all checked against %d families in /metrics", len(used), len(families))

	checkLokiQueries(t, ctx, loki.URL, service, start)
}

// scrape reads the agent's /metrics as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// exposed says whether a query's metric name is in /metrics: a family of that name
// with at least one series, or a histogram's (or summary's) _bucket, _sum or _count.
func exposed(families map[string]*dto.MetricFamily, name string) bool {
	if f, ok := families[name]; ok {
		return len(f.GetMetric()) > 0
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := families[base]
		if !ok || len(f.GetMetric()) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

// familyLabels returns the label names of the series of a query's metric name (le
// for a histogram's _bucket), or nil when /metrics does not have it.
func familyLabels(families map[string]*dto.MetricFamily, name string) map[string]bool {
	f, ok := families[name]
	bucket := false
	if !ok {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, cut := strings.CutSuffix(name, suffix); cut && families[base] != nil {
				f, bucket = families[base], suffix == "_bucket"
				break
			}
		}
	}
	if f == nil {
		return nil
	}
	have := map[string]bool{}
	if bucket {
		have["le"] = true
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			have[l.GetName()] = true
		}
	}
	return have
}

// checkLokiQueries runs each LogQL query of the service dashboard against Loki for
// the service, as Grafana would: Loki must accept every one, and the log volume must
// count the lines sent.
func checkLokiQueries(t *testing.T, ctx context.Context, lokiURL, service string, start time.Time) {
	t.Helper()
	ds, err := monitoring.Dashboards(monitoring.Root())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range ds {
		for _, p := range d.Panels {
			if p.Datasource == nil || p.Datasource.Type != "loki" {
				continue
			}
			for _, tg := range p.Targets {
				expr := strings.NewReplacer(`$service`, service, `$__interval`, "1m", `$__auto`, "1m").Replace(tg.Expr)
				params := url.Values{"query": {expr}, "start": {fmt.Sprint(start.UnixNano())},
					"end": {fmt.Sprint(time.Now().Add(time.Minute).UnixNano())}, "step": {"60"}, "limit": {"100"}}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lokiURL+"/loki/api/v1/query_range?"+params.Encode(), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var body struct {
					Status string `json:"status"`
					Data   struct {
						Result []struct {
							Values [][2]any `json:"values"`
						} `json:"result"`
					} `json:"data"`
				}
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || err != nil || body.Status != "success" {
					t.Errorf("%s: panel %q: Loki refused %q: %d %v", d.File, p.Title, expr, resp.StatusCode, err)
					continue
				}
				n++
				if p.Title == "Log volume by level" {
					total := 0.0
					for _, r := range body.Data.Result {
						for _, v := range r.Values {
							var f float64
							fmt.Sscan(fmt.Sprint(v[1]), &f)
							total += f
						}
					}
					if total < 21 {
						t.Errorf("panel %q counts %v lines of %s, want at least the 21 sent", p.Title, total, service)
					}
				}
			}
		}
	}
	if n < 4 {
		t.Errorf("ran %d LogQL queries of the dashboards, want at least 4", n)
	}
}
