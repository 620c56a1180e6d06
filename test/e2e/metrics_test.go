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
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/promtest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// metricsSeries is how many series of each instrument the SDK pushes.
const metricsSeries = 100

// startPrometheus starts a real Prometheus with its OTLP receiver, stopped at
// cleanup; k8s.namespace.name and k8s.pod.name become labels of every series.
func startPrometheus(t *testing.T) *promtest.Prometheus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := promtest.Start(ctx, t.TempDir(), promtest.PromoteResourceAttributes("k8s.namespace.name", "k8s.pod.name"))
	if err != nil {
		t.Fatalf("real Prometheus is required: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// metricsConfig writes an agent config that receives OTLP on free ports and sends
// metrics, and only metrics, to Prometheus' OTLP endpoint.
func metricsConfig(t *testing.T, service, otlpURL string) *otlpAgent {
	t.Helper()
	ports, err := backendtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	a := &otlpAgent{
		dir:  t.TempDir(),
		grpc: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		http: fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, pod_uid: 7c2d-uid, container: app, node: node-1, environment: test}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
receivers:
  otlp:
    grpc: {listen: "%[3]s"}
    http: {listen: "%[4]s"}
exporters:
  otlp_metrics:
    endpoint: %[5]s
    batch: {max_wait: 200ms}
    retry: {initial_interval: 100ms, max_interval: 1s}
`, a.dir, service, a.grpc, a.http, otlpURL)
	a.config = filepath.Join(a.dir, "outrider.yaml")
	writeFile(t, a.config, cfg)
	return a
}

// sdkMeters is an OpenTelemetry Go SDK meter provider exporting over OTLP/HTTP to
// the agent, as an application's SDK pointed at the sidecar does; its resource has no
// service.name, which the agent fills in from its identity.
func sdkMeters(t *testing.T, agentHTTP string) *sdkmetric.MeterProvider {
	t.Helper()
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(agentHTTP), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("app.version", "1.4.2"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// recordSeries records metricsSeries series of a counter (orders, value i+1) and
// of a gauge (queue.depth, value i/2), told apart by the attribute series=i, and
// one histogram (request.duration, in seconds, three observations), and exports them
// once.
func recordSeries(t *testing.T, mp *sdkmetric.MeterProvider) {
	t.Helper()
	ctx := context.Background()
	m := mp.Meter("outrider.e2e")
	orders, err := m.Int64Counter("orders")
	if err != nil {
		t.Fatal(err)
	}
	depth, err := m.Float64Gauge("queue.depth")
	if err != nil {
		t.Fatal(err)
	}
	dur, err := m.Float64Histogram("request.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range metricsSeries {
		set := metric.WithAttributes(attribute.String("series", strconv.Itoa(i)))
		orders.Add(ctx, int64(i+1), set)
		depth.Record(ctx, float64(i)/2, set)
	}
	for _, v := range []float64{0.002, 0.3, 4} {
		dur.Record(ctx, v, metric.WithAttributes(attribute.String("http.route", "/orders")))
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := mp.ForceFlush(fctx); err != nil {
		t.Fatalf("the SDK's export to the agent failed: %v", err)
	}
}

// findSeries queries Prometheus for every series recordSeries made under job and
// checks values and labels; it returns how many series it found and how many it
// looked for.
func findSeries(t *testing.T, p *promtest.Prometheus, job string) (found, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, m := range []struct {
		name  string
		value func(i int) float64
	}{
		{"orders_total", func(i int) float64 { return float64(i + 1) }},
		{"queue_depth", func(i int) float64 { return float64(i) / 2 }},
	} {
		want += metricsSeries
		got, err := p.WaitCount(ctx, fmt.Sprintf(`%s{job=%q}`, m.name, job), metricsSeries, time.Minute)
		if err != nil {
			t.Errorf("%s: %v", m.name, err)
		}
		seen := map[int]bool{}
		for _, s := range got {
			i, err := strconv.Atoi(s.Labels["series"])
			if err != nil || i < 0 || i >= metricsSeries || seen[i] {
				t.Errorf("%s: unexpected series %v", m.name, s.Labels)
				continue
			}
			seen[i] = true
			if s.Value != m.value(i) {
				t.Errorf("%s{series=%q} = %v, want %v", m.name, s.Labels["series"], s.Value, m.value(i))
			}
			if s.Labels["k8s_pod_name"] != job+"-0" || s.Labels["k8s_namespace_name"] != "e2e" {
				t.Errorf("%s{series=%q}: labels %v lack the identity's pod and namespace", m.name, s.Labels["series"], s.Labels)
			}
		}
		found += len(seen)
	}
	want++
	if got, err := p.WaitCount(ctx, fmt.Sprintf(`request_duration_seconds_count{job=%q, http_route="/orders"}`, job), 1, time.Minute); err != nil {
		t.Errorf("histogram: %v", err)
	} else if got[0].Value != 3 {
		t.Errorf("histogram count %v, want 3", got[0].Value)
	} else {
		found++
	}
	info, err := p.WaitCount(ctx, fmt.Sprintf(`target_info{job=%q}`, job), 1, time.Minute)
	if err != nil {
		t.Fatalf("target_info: %v", err)
	}
	l := info[0].Labels
	for k, v := range map[string]string{"k8s_pod_uid": "7c2d-uid", "k8s_container_name": "app", "k8s_node_name": "node-1",
		"deployment_environment": "test", "app_version": "1.4.2"} {
		if l[k] != v {
			t.Errorf("target_info %s = %q, want %q (labels %v)", k, l[k], v, l)
		}
	}
	return found, want
}

// TestMetricsToPrometheusWithSDK pushes metrics with the OpenTelemetry Go SDK to the
// real agent over OTLP/HTTP, and a request over gRPC, and finds every series in a
// real Prometheus by PromQL: values, attributes, and the pod identity the agent
// added (promoted labels, and target_info).
func TestMetricsToPrometheusWithSDK(t *testing.T) {
	p := startPrometheus(t)
	const job = "metrics-sdk"
	a := metricsConfig(t, job, p.OTLPURL())
	a.start(t)
	recordSeries(t, sdkMeters(t, a.http))

	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("grpc.pushed")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetIntValue(42)
	cc := dial(t, a.grpc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pmetricotlp.NewGRPCClient(cc).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
		t.Fatalf("gRPC export to the agent: %v", err)
	}

	found, want := findSeries(t, p, job)
	got, err := p.WaitCount(ctx, fmt.Sprintf(`grpc_pushed{job=%q}`, job), 1, time.Minute)
	want++
	if err != nil || got[0].Value != 42 {
		t.Errorf("the gRPC-pushed gauge: %v %v", got, err)
	} else {
		found++
	}
	t.Logf("metrics round trip: %d series sent through the agent, %d found in Prometheus by PromQL", want, found)
	if found != want {
		t.Errorf("found %d of %d series", found, want)
	}
}

// TestMetricsSurvivePrometheusOutageAndAgentKill: with Prometheus down, the SDK's
// push is answered 200 (the metrics are on the agent's disk); the agent is then
// killed with SIGKILL and started again, Prometheus comes back, and every series
// arrives: nothing is lost.
func TestMetricsSurvivePrometheusOutageAndAgentKill(t *testing.T) {
	p := startPrometheus(t)
	const job = "metrics-outage"
	a := metricsConfig(t, job, p.OTLPURL())
	p.Stop()
	agent := a.start(t)
	recordSeries(t, sdkMeters(t, a.http)) // fails the test unless the agent answered 200
	time.Sleep(time.Second)               // a few failed attempts to send
	agent.kill()
	a.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	found, want := findSeries(t, p, job)
	t.Logf("metrics after a Prometheus outage and an agent SIGKILL: %d series sent, %d found by PromQL", want, found)
	if found != want {
		t.Errorf("found %d of %d series", found, want)
	}
}

// nestedPointAttr is an ExportMetricsServiceRequest whose one gauge data point has an
// attribute nested depth lists deep, built back to front in one buffer.
func nestedPointAttr(depth int) []byte {
	buf := make([]byte, 16*depth+16)
	p := len(buf)
	prepend := func(b []byte) { p -= len(b); copy(buf[p:], b) }
	prepend([]byte{0x0a, 1, 'x'}) // AnyValue.string_value
	for range depth {
		prepend(protowire.AppendVarint(nil, uint64(len(buf)-p)))
		prepend([]byte{0x0a}) // ArrayValue.values
		prepend(protowire.AppendVarint(nil, uint64(len(buf)-p)))
		prepend([]byte{0x2a}) // AnyValue.array_value
	}
	v := buf[p:]
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "deep")
	kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), v)
	msg := protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), kv) // NumberDataPoint.attributes
	// Gauge.data_points, Metric.gauge, ScopeMetrics.metrics, ResourceMetrics.scope_metrics,
	// the request's resource_metrics.
	for _, f := range []protowire.Number{1, 5, 2, 2, 1} {
		if f == 5 {
			msg = append(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "deep.metric"), protowire.AppendBytes(protowire.AppendTag(nil, f, protowire.BytesType), msg)...)
			continue
		}
		msg = protowire.AppendBytes(protowire.AppendTag(nil, f, protowire.BytesType), msg)
	}
	return msg
}

// emptyExemplars is an ExportMetricsServiceRequest of one histogram data point with
// about size bytes of empty exemplars: 2 bytes each on the wire, about 380 bytes
// each once decoded.
func emptyExemplars(size int) []byte {
	ex := make([]byte, 0, size)
	for len(ex) < size {
		ex = append(ex, 0x42, 0x00) // HistogramDataPoint.exemplars
	}
	msg := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), ex) // Histogram.data_points
	msg = append(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "bomb"),
		protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), msg)...) // Metric.histogram
	for _, f := range []protowire.Number{2, 2, 1} {
		msg = protowire.AppendBytes(protowire.AppendTag(nil, f, protowire.BytesType), msg)
	}
	return msg
}

// peakRSSMB is the process's peak resident memory (VmHWM) in MiB.
func peakRSSMB(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestMetricsHostileRequestsRefused sends the real agent metrics built to hurt it —
// a data point attribute nested 200,000 lists deep, and 3.9 MB of empty exemplars
// (protobuf and JSON) that would decode to about 700 MB — 8 at a time, 24 in all:
// each is refused with the limit it passed (400 naming max_value_depth, 413 naming
// max_inflight_bytes), the agent's peak RSS stays within a 96 MiB sidecar, and an
// SDK's metrics pushed afterwards arrive in Prometheus.
func TestMetricsHostileRequestsRefused(t *testing.T) {
	p := startPrometheus(t)
	const job = "metrics-hostile"
	a := metricsConfig(t, job, p.OTLPURL())
	agent := a.start(t)
	deep := nestedPointAttr(200_000)
	bomb := emptyExemplars(3_900_000)
	jsonBomb := []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"bomb","histogram":{"dataPoints":[{"exemplars":[` +
		strings.TrimSuffix(strings.Repeat("{},", 1_300_000), ",") + `]}]}}]}]}]}`)
	url := "http://" + a.http + "/v1/metrics"
	type result struct {
		status int
		body   string
	}
	attacks := []struct {
		name, ct string
		body     []byte
		status   int
		says     string
	}{
		{"deep attribute", "application/x-protobuf", deep, 400, "receivers.otlp.max_value_depth"},
		{"exemplar bomb", "application/x-protobuf", bomb, 413, "receivers.otlp.max_inflight_bytes"},
		{"JSON exemplar bomb", "application/json", jsonBomb, 413, "receivers.otlp.max_inflight_bytes"},
	}
	results := make([][]result, len(attacks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, at := range attacks {
		results[i] = make([]result, 8)
		for j := range 8 {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				resp, err := http.Post(url, at.ct, bytes.NewReader(at.body))
				if err != nil {
					results[i][j] = result{0, err.Error()}
					return
				}
				defer resp.Body.Close()
				out, _ := io.ReadAll(resp.Body)
				results[i][j] = result{resp.StatusCode, string(out)}
			})
		}
	}
	start := time.Now()
	wg.Wait()
	t.Logf("24 hostile requests answered in %s", time.Since(start).Round(time.Millisecond))
	for i, at := range attacks {
		refused := 0
		for _, r := range results[i] {
			switch {
			case r.status == at.status && strings.Contains(r.body, at.says):
				refused++
			case r.status == 429: // busy while others hold the in-flight budget
			default:
				t.Errorf("%s: %d %.200q; want %d saying %s", at.name, r.status, r.body, at.status, at.says)
			}
		}
		if refused == 0 {
			t.Errorf("%s: no request was answered %d saying %s", at.name, at.status, at.says)
		}
	}
	peak := peakRSSMB(t, agent.cmd.Process.Pid)
	t.Logf("peak RSS after 24 hostile metrics requests: %.1f MiB", peak)
	if peak > 96 {
		t.Errorf("peak RSS %.1f MiB, more than a 96 MiB sidecar", peak)
	}
	start = time.Now()
	recordSeries(t, sdkMeters(t, a.http))
	t.Logf("SDK push answered in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if found, want := findSeries(t, p, job); found != want {
		t.Errorf("after the attacks: found %d of %d series", found, want)
	}
	t.Logf("found in Prometheus after %s", time.Since(start).Round(time.Millisecond))
}

// TestMetricsSecretScrubbedBeforePrometheus renders a live secret from a real Vault,
// pushes metrics holding it everywhere a request can (resource, scope, metric name,
// description and unit, data point and exemplar attributes, keys and values, over
// HTTP and gRPC), and reads back every series and label of the job from the real
// Prometheus: neither the value nor a piece of it arrives, and the series do,
// scrubbed. (Prometheus keeps no OTLP descriptions to read back; the receiver's
// TestScrubMetricsEverywhere covers them.)
func TestMetricsSecretScrubbedBeforePrometheus(t *testing.T) {
	p := startPrometheus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	v, err := vaulttest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("real Vault is required: %v", err)
	}
	t.Cleanup(v.Stop)
	pw := liveSecret(t)
	if _, err := v.Client.KVv2("secret").Put(ctx, "app", map[string]any{"db_password": pw}); err != nil {
		t.Fatal(err)
	}
	const job = "metrics-scrub"
	a := metricsConfig(t, job, p.OTLPURL())
	tokenFile, secretFile := filepath.Join(a.dir, "vault-token"), filepath.Join(a.dir, "app.json")
	writeFile(t, tokenFile, v.RootToken)
	cfg, err := os.ReadFile(a.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, a.config, string(cfg)+fmt.Sprintf(`secrets:
  vault:
    address: %s
    auth: {method: token, token_file: %s}
  files:
    - {path: %s, source: secret/app, format: json}
`, v.Addr, tokenFile, secretFile))
	a.start(t)
	waitFor(t, 30*time.Second, "the secret file rendered", func() bool { return renderedPassword(secretFile) == pw })

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("db.url", "postgres://shop:"+pw+"@db/shop")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("scope " + pw)
	now := pcommon.NewTimestampFromTime(time.Now())
	g := sm.Metrics().AppendEmpty()
	g.SetName("db.connections")
	g.SetDescription("connections made with " + pw)
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(now)
	dp.SetIntValue(7)
	dp.Attributes().PutStr("dsn", "user=shop password="+pw)
	dp.Attributes().PutStr("pw-"+pw, "key")
	dp.Exemplars().AppendEmpty().FilteredAttributes().PutStr("token", pw)
	c := sm.Metrics().AppendEmpty()
	c.SetName("logins." + pw)
	c.SetUnit(pw)
	c.SetEmptySum().SetIsMonotonic(true)
	c.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	cp := c.Sum().DataPoints().AppendEmpty()
	cp.SetTimestamp(now)
	cp.SetIntValue(3)
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if resp, out := postOTLP(t, "http://"+a.http+"/v1/metrics", body); resp.StatusCode != 200 {
		t.Fatalf("HTTP push: %d %s", resp.StatusCode, out)
	}
	if _, err := pmetricotlp.NewGRPCClient(dial(t, a.grpc)).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
		t.Fatalf("gRPC push: %v", err)
	}

	series, err := p.WaitCount(ctx, fmt.Sprintf(`{job=%q}`, job), 3, time.Minute) // the gauge, the counter, target_info
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	redacted := 0
	for _, s := range series {
		for k, v := range s.Labels {
			fmt.Fprintf(&dump, "%s=%s\n", k, v)
			redacted += strings.Count(v, "[REDACTED]")
		}
	}
	for _, leak := range findLeaks([]byte(dump.String()), pw) {
		t.Errorf("Prometheus holds the secret: %s", leak)
	}
	// Metric and label names are rewritten to [a-zA-Z0-9_]: look for the value's
	// random hex on either side of its special characters too.
	for _, part := range strings.Fields(strings.NewReplacer("&Pw/é<", " ", "+@x", " ").Replace(pw)) {
		if strings.Contains(dump.String(), part) {
			t.Errorf("Prometheus holds a piece of the secret: %q", part)
		}
	}
	// Label values keep the marker; names (from the metric name, unit and an
	// attribute key) hold it rewritten.
	if redacted < 2 || !strings.Contains(dump.String(), "pw__REDACTED_=key") || !strings.Contains(dump.String(), "__name__=logins_REDACTED_") {
		t.Errorf("the scrubbed series did not arrive as expected (%d markers):\n%s", redacted, dump.String())
	}
	t.Logf("searched the %d series of the job in Prometheus (%d B of labels)", len(series), dump.Len())
}
