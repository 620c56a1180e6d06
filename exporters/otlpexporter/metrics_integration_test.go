package otlpexporter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/promtest"
	"github.com/outrider-dev/outrider/pipeline"
)

// Integration tests of the metrics exporter against a real Prometheus with its OTLP
// receiver on (internal/promtest; `make backends` builds it), read back with PromQL.

// promoted are the resource attributes the test Prometheus makes labels of every
// series; the others are in target_info.
var promoted = []string{"k8s.namespace.name", "k8s.pod.name"}

func startPrometheus(t *testing.T) *promtest.Prometheus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := promtest.Start(ctx, t.TempDir(), promtest.PromoteResourceAttributes(promoted...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// seriesBatch is metrics of one resource (service shop, pod shop-0 in prod, which a
// pod's identity would add) holding, for each i in [first, first+n), a gauge series
// prefix_gauge{series="i"} of value i*1.5 and a counter series
// prefix_requests{series="i"} of value i*10, stamped at.
func seriesBatch(t testing.TB, prefix string, first, n int, at time.Time, ack pipeline.AckFunc) pipeline.MetricBatch {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", "shop")
	res.PutStr("k8s.namespace.name", "prod")
	res.PutStr("k8s.pod.name", "shop-0")
	res.PutStr("k8s.pod.uid", "6a1e-77")
	res.PutStr("deployment.environment", "test")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("outrider.test")
	g := sm.Metrics().AppendEmpty()
	g.SetName(prefix + ".gauge")
	g.SetEmptyGauge()
	c := sm.Metrics().AppendEmpty()
	c.SetName(prefix + ".requests")
	c.SetEmptySum().SetIsMonotonic(true)
	c.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ts := pcommon.NewTimestampFromTime(at)
	start := pcommon.NewTimestampFromTime(at.Add(-time.Minute))
	for i := first; i < first+n; i++ {
		dp := g.Gauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(float64(i) * 1.5)
		dp.Attributes().PutStr("series", strconv.Itoa(i))
		cp := c.Sum().DataPoints().AppendEmpty()
		cp.SetStartTimestamp(start)
		cp.SetTimestamp(ts)
		cp.SetIntValue(int64(i) * 10)
		cp.Attributes().PutStr("series", strconv.Itoa(i))
	}
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.MetricBatch{Data: b, DataPoints: md.DataPointCount(), Ack: ack}
}

// checkPrometheusSeries queries every series of seriesBatch for [0, n) back from p
// and checks values and labels, the promoted resource attributes among them, and the
// others in target_info. It returns how many series it found.
func checkPrometheusSeries(t *testing.T, p *promtest.Prometheus, prefix string, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found := 0
	for _, m := range []struct {
		name  string
		value func(i int) float64
	}{
		{prefix + "_gauge", func(i int) float64 { return float64(i) * 1.5 }},
		{prefix + "_requests_total", func(i int) float64 { return float64(i) * 10 }},
	} {
		got, err := p.WaitCount(ctx, m.name+`{job="shop"}`, n, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		seen := map[int]bool{}
		for _, s := range got {
			i, err := strconv.Atoi(s.Labels["series"])
			if err != nil || i < 0 || i >= n || seen[i] {
				t.Errorf("%s: unexpected series %v", m.name, s.Labels)
				continue
			}
			seen[i] = true
			if s.Value != m.value(i) {
				t.Errorf("%s{series=%q} = %v, want %v", m.name, s.Labels["series"], s.Value, m.value(i))
			}
			if s.Labels["k8s_pod_name"] != "shop-0" || s.Labels["k8s_namespace_name"] != "prod" {
				t.Errorf("%s{series=%q}: labels %v lack the promoted resource attributes", m.name, s.Labels["series"], s.Labels)
			}
		}
		found += len(seen)
	}
	info, err := p.WaitCount(ctx, `target_info{job="shop"}`, 1, 30*time.Second)
	if err != nil {
		t.Fatalf("target_info: %v", err)
	}
	if l := info[0].Labels; l["deployment_environment"] != "test" || l["k8s_pod_uid"] != "6a1e-77" {
		t.Errorf("target_info labels %v lack the resource attributes", l)
	}
	return found
}

// metricsHarness is a MetricsExporter with its own metrics registry and log.
type metricsHarness struct {
	exp *MetricsExporter
	reg *prometheus.Registry
	log *exportertest.LogBuffer
}

func newMetricsHarness(t *testing.T, cfg MetricsConfig) *metricsHarness {
	t.Helper()
	h := &metricsHarness{reg: prometheus.NewRegistry(), log: &exportertest.LogBuffer{}}
	exp, err := NewMetrics(cfg, Settings{Logger: h.log.Logger(), QueueMetrics: exporterhelper.NewMetrics(h.reg)})
	if err != nil {
		t.Fatal(err)
	}
	exportertest.Start(t, exp)
	h.exp = exp
	return h
}

func (h *metricsHarness) metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	want["exporter"] = "otlp_metrics"
	return exportertest.Metric(t, h.reg, name, want)
}

func testMetricsConfig(endpoint string) MetricsConfig {
	return MetricsConfig{
		Endpoint: endpoint,
		Batch:    exporterhelper.BatchConfig{MaxWait: 10 * time.Millisecond},
		Retry:    exporterhelper.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond},
		Timeout:  5 * time.Second,
	}
}

// TestPrometheusReceivesMetrics sends 2 × 60 series in two batches (one request) to
// a real Prometheus, gzip and plain, and finds every one by PromQL with its value,
// its labels and its resource attributes.
func TestPrometheusReceivesMetrics(t *testing.T) {
	p := startPrometheus(t)
	const n = 60
	for _, compression := range []string{CompressionGzip, CompressionNone} {
		t.Run(compression, func(t *testing.T) {
			prefix := fmt.Sprintf("outrider_it_%s_%d", compression, rand.Uint32())
			cfg := testMetricsConfig(p.OTLPURL())
			cfg.Compression = compression
			cfg.Batch.MaxWait = time.Hour // both batches in one request, cut by Flush
			h := newMetricsHarness(t, cfg)
			a := exportertest.NewAcks()
			now := time.Now()
			for k, b := range []pipeline.MetricBatch{seriesBatch(t, prefix, 0, n/2, now, a.Func(0)), seriesBatch(t, prefix, n/2, n/2, now, a.Func(1))} {
				if err := h.exp.ExportMetrics(context.Background(), b); err != nil {
					t.Fatalf("batch %d: %v", k, err)
				}
			}
			h.exp.Flush()
			for k := range 2 {
				if err := a.Wait(t, k); err != nil {
					t.Fatalf("ack %d = %v\n%s", k, err, h.log.String())
				}
			}
			if v := h.metric(t, "outrider_exporter_sent_records_total", map[string]string{}); v != 2*n {
				t.Errorf("sent %v data points, want %d", v, 2*n)
			}
			if v := h.metric(t, "outrider_exporter_requests_total", map[string]string{"result": "success"}); v != 1 {
				t.Errorf("%v successful requests, want the two batches in one", v)
			}
			if found := checkPrometheusSeries(t, p, prefix, n); found != 2*n {
				t.Errorf("found %d of %d series", found, 2*n)
			}
		})
	}
}

// TestPrometheusOutage sends metrics while Prometheus is down: nothing is
// acknowledged (the entries would stay in the durable queue) while the exporter
// retries, and every series arrives once it is back.
func TestPrometheusOutage(t *testing.T) {
	p := startPrometheus(t)
	h := newMetricsHarness(t, testMetricsConfig(p.OTLPURL()))
	p.Stop()
	prefix := fmt.Sprintf("outrider_outage_%d", rand.Uint32())
	const n = 20
	a := exportertest.NewAcks()
	now := time.Now()
	for _, b := range []pipeline.MetricBatch{seriesBatch(t, prefix, 0, n/2, now, a.Func(0)), seriesBatch(t, prefix, n/2, n/2, now, a.Func(1))} {
		if err := h.exp.ExportMetrics(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for h.metric(t, "outrider_exporter_retries_total", map[string]string{}) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v := h.metric(t, "outrider_exporter_retries_total", map[string]string{}); v < 3 {
		t.Fatalf("%v retries while Prometheus was down, want at least 3", v)
	}
	if a.Count() != 0 {
		t.Fatalf("acknowledged while Prometheus was down: %v %v", a.Get(0), a.Get(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		if err := a.Wait(t, k); err != nil {
			t.Fatalf("ack %d = %v", k, err)
		}
	}
	if found := checkPrometheusSeries(t, p, prefix, n); found != 2*n {
		t.Errorf("found %d of %d series after the outage", found, 2*n)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{}); v != 0 {
		t.Errorf("dropped %v data points", v)
	}
}

// TestPrometheusWrongPathSaysWhere points the exporter at Prometheus without the
// OTLP path: the real 404 is a permanent drop, counted, whose message says where
// Prometheus serves OTLP.
func TestPrometheusWrongPathSaysWhere(t *testing.T) {
	p := startPrometheus(t)
	h := newMetricsHarness(t, testMetricsConfig(p.URL))
	a := exportertest.NewAcks()
	if err := h.exp.ExportMetrics(context.Background(), seriesBatch(t, "outrider_wrong", 0, 3, time.Now(), a.Func(0))); err != nil {
		t.Fatal(err)
	}
	err := a.Wait(t, 0)
	if _, permanent := pipeline.IsPermanent(err); !permanent || !strings.Contains(err.Error(), "/api/v1/otlp/v1/metrics") || !strings.Contains(err.Error(), p.URL+MetricsPath) {
		t.Fatalf("ack = %v; want a permanent error naming the URL and Prometheus' OTLP path", err)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": ReasonNotFound}); v != 6 {
		t.Errorf("dropped %v data points as not_found, want 6", v)
	}
}

// TestPrometheusRefusedBatchDoesNotTakeOthersDown puts a batch of out-of-order
// samples, which the real Prometheus refuses with a 400 for the whole request,
// between two good batches of one request: the exporter pushes the batches apart,
// drops only the refused one's data points (counted, with Prometheus' reason), and
// every good series arrives.
func TestPrometheusRefusedBatchDoesNotTakeOthersDown(t *testing.T) {
	p := startPrometheus(t)
	cfg := testMetricsConfig(p.OTLPURL())
	cfg.Batch.MaxWait = time.Hour // one request per Flush
	h := newMetricsHarness(t, cfg)
	old, good := fmt.Sprintf("outrider_ooo_%d", rand.Uint32()), fmt.Sprintf("outrider_good_%d", rand.Uint32())
	now := time.Now()
	a := exportertest.NewAcks()
	if err := h.exp.ExportMetrics(context.Background(), seriesBatch(t, old, 0, 5, now, a.Func(0))); err != nil {
		t.Fatal(err)
	}
	h.exp.Flush()
	if err := a.Wait(t, 0); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	for _, b := range []pipeline.MetricBatch{
		seriesBatch(t, good, 0, 10, now, a.Func(1)),
		seriesBatch(t, old, 0, 5, now.Add(-time.Minute), a.Func(2)), // older than what the series holds
		seriesBatch(t, good, 10, 10, now, a.Func(3)),
	} {
		if err := h.exp.ExportMetrics(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	h.exp.Flush()
	for _, k := range []int{1, 2, 3} {
		a.Wait(t, k) // each batch's ack carries the request's first refusal
	}
	if reason, permanent := pipeline.IsPermanent(a.Get(2)[0]); !permanent || reason != ReasonBadRequest {
		t.Errorf("out-of-order batch: %v; want dropped as %s", a.Get(2), ReasonBadRequest)
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", map[string]string{}); v != 10+40 {
		t.Errorf("sent %v data points, want the first batch's 10 and the good batches' 40", v)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": ReasonBadRequest}); v != 10 {
		t.Errorf("dropped %v data points, want the out-of-order batch's 10:\n%s", v, h.log.String())
	}
	if found := checkPrometheusSeries(t, p, good, 20); found != 40 {
		t.Errorf("found %d of 40 good series", found)
	}
}
