package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
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

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/promtest"
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
