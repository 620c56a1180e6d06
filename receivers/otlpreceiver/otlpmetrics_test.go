package otlpreceiver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrider-dev/outrider/pipeline"
)

// testMetrics returns one resource with a metric of every type: a gauge, a sum, a
// histogram, an exponential histogram and a summary, each with n data points, whose
// exemplars and attributes are set.
func testMetrics(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "unknown_service:java")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("io.opentelemetry.test")
	now := pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))
	ms := sm.Metrics()
	g := ms.AppendEmpty()
	g.SetName("queue.depth")
	s := ms.AppendEmpty()
	s.SetName("http.requests")
	s.SetEmptySum().SetIsMonotonic(true)
	s.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	h := ms.AppendEmpty()
	h.SetName("http.duration")
	h.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	e := ms.AppendEmpty()
	e.SetName("http.size")
	e.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sum := ms.AppendEmpty()
	sum.SetName("gc.pause")
	sum.SetEmptySummary()
	gauge := g.SetEmptyGauge()
	for i := range n {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutStr("queue", fmt.Sprint("q", i))
		dp.Exemplars().AppendEmpty().FilteredAttributes().PutStr("user", "u")
		sp := s.Sum().DataPoints().AppendEmpty()
		sp.SetTimestamp(now)
		sp.SetIntValue(int64(i))
		sp.Attributes().PutStr("route", fmt.Sprint("/r", i))
		hp := h.Histogram().DataPoints().AppendEmpty()
		hp.SetTimestamp(now)
		hp.SetCount(2)
		hp.SetSum(0.3)
		hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
		hp.BucketCounts().FromRaw([]uint64{1, 1, 0})
		hp.Attributes().PutStr("route", fmt.Sprint("/r", i))
		hp.Exemplars().AppendEmpty().SetDoubleValue(0.2)
		ep := e.ExponentialHistogram().DataPoints().AppendEmpty()
		ep.SetTimestamp(now)
		ep.SetCount(1)
		ep.Positive().BucketCounts().FromRaw([]uint64{1})
		ep.Attributes().PutStr("route", fmt.Sprint("/r", i))
		qp := sum.Summary().DataPoints().AppendEmpty()
		qp.SetTimestamp(now)
		qp.QuantileValues().AppendEmpty().SetQuantile(0.5)
		qp.Attributes().PutStr("gen", fmt.Sprint(i))
	}
	return md
}

// metrics decodes every stored entry as metrics.
func (q *memQueue) metrics(t *testing.T) []pmetric.Metrics {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []pmetric.Metrics
	for _, e := range q.entries {
		k, n, data, err := DecodeEntry(e)
		if err != nil || k != KindMetrics {
			t.Fatalf("entry: kind %v err %v", k, err)
		}
		var u pmetric.ProtoUnmarshaler
		md, err := u.UnmarshalMetrics(data)
		if err != nil || md.DataPointCount() != n {
			t.Fatalf("stored metrics: %v, %d data points, entry says %d", err, md.DataPointCount(), n)
		}
		out = append(out, md)
	}
	return out
}

// TestMetricsStoredOnEveryTransport sends the same metrics over HTTP (protobuf,
// gzip, JSON) and gRPC: each is stored as one metrics entry whose count is the data
// points, with the identity's resource attributes added (the SDK's unknown_service
// placeholder replaced) and everything else as sent.
func TestMetricsStoredOnEveryTransport(t *testing.T) {
	md := testMetrics(3)
	pb, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]string{"service.name": "shop", "k8s.pod.name": "shop-0", "k8s.namespace.name": "prod"}
	for _, tc := range []struct {
		name string
		send func(t *testing.T, r *Receiver)
	}{
		{"http protobuf", func(t *testing.T, r *Receiver) {
			resp, body := postHTTP(t, r, MetricsPath, contentProtobuf, "", pb)
			checkMetricsResponse(t, resp.StatusCode, body, false, 0)
		}},
		{"http protobuf gzip", func(t *testing.T, r *Receiver) {
			resp, body := postHTTP(t, r, MetricsPath, contentProtobuf, "gzip", gz(pb))
			checkMetricsResponse(t, resp.StatusCode, body, false, 0)
		}},
		{"http JSON", func(t *testing.T, r *Receiver) {
			resp, body := postHTTP(t, r, MetricsPath, contentJSON, "", js)
			checkMetricsResponse(t, resp.StatusCode, body, true, 0)
		}},
		{"grpc", func(t *testing.T, r *Receiver) {
			resp, err := pmetricotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), pmetricotlp.NewExportRequestFromMetrics(md))
			if err != nil {
				t.Fatal(err)
			}
			if n := resp.PartialSuccess().RejectedDataPoints(); n != 0 {
				t.Fatalf("rejected %d data points", n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &memQueue{}
			r := startReceiver(t, Config{}, Settings{MetricData: q, Resource: res})
			tc.send(t, r)
			got := q.metrics(t)
			if len(got) != 1 || got[0].DataPointCount() != 15 || got[0].MetricCount() != 5 {
				t.Fatalf("stored %d entries, first with %d data points in %d metrics; want 1 with 15 in 5", len(got), got[0].DataPointCount(), got[0].MetricCount())
			}
			attrs := got[0].ResourceMetrics().At(0).Resource().Attributes()
			for k, v := range res {
				if a, _ := attrs.Get(k); a.Str() != v {
					t.Errorf("resource %s = %q, want %q", k, a.Str(), v)
				}
			}
			want := testMetrics(3)
			want.ResourceMetrics().At(0).Resource().Attributes().RemoveIf(func(string, pcommon.Value) bool { return true })
			got[0].ResourceMetrics().At(0).Resource().Attributes().RemoveIf(func(string, pcommon.Value) bool { return true })
			wb, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(want)
			gb, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(got[0])
			if !bytes.Equal(wb, gb) {
				t.Error("the stored metrics differ from those sent beyond the resource")
			}
			if v := counterValue(t, r.m.items.WithLabelValues("metrics", "accepted")); v != 15 {
				t.Errorf("accepted metrics items = %v, want 15", v)
			}
		})
	}
}

func checkMetricsResponse(t *testing.T, code int, body []byte, asJSON bool, rejected int64) {
	t.Helper()
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	resp := pmetricotlp.NewExportResponse()
	if err := unmarshal(resp, body, asJSON); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	if n := resp.PartialSuccess().RejectedDataPoints(); n != rejected {
		t.Fatalf("rejected %d data points (%q), want %d", n, resp.PartialSuccess().ErrorMessage(), rejected)
	}
}

// TestMetricsWithoutNameRejected: a metric without a name is refused in a partial
// success counting its data points; the others are stored.
func TestMetricsWithoutNameRejected(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{MetricData: q})
	md := testMetrics(2)
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(1).SetName("")
	only := pmetric.NewMetrics()
	only.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	md.ResourceMetrics().MoveAndAppendTo(only.ResourceMetrics())
	pb, _ := pmetricotlp.NewExportRequestFromMetrics(only).MarshalProto()
	resp, body := postHTTP(t, r, MetricsPath, contentProtobuf, "", pb)
	checkMetricsResponse(t, resp.StatusCode, body, false, 3)
	got := q.metrics(t)
	if len(got) != 1 || got[0].DataPointCount() != 8 || got[0].ResourceMetrics().Len() != 1 {
		t.Fatalf("stored %v", got)
	}
	out := pmetricotlp.NewExportResponse()
	_ = out.UnmarshalProto(body)
	if msg := out.PartialSuccess().ErrorMessage(); !strings.Contains(msg, "has no name") {
		t.Errorf("partial success message %q does not say why", msg)
	}
	if v := counterValue(t, r.m.items.WithLabelValues("metrics", "rejected")); v != 3 {
		t.Errorf("rejected items = %v, want 3", v)
	}
}

// TestMetricsRefusals: without a metrics exporter the answer is 404 / UNIMPLEMENTED
// naming exporters.otlp_metrics; a full queue is 429 with Retry-After /
// RESOURCE_EXHAUSTED with RetryInfo; a failed write 503 / UNAVAILABLE. Nothing is
// stored.
func TestMetricsRefusals(t *testing.T) {
	pb, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(1)).MarshalProto()
	tests := []struct {
		name       string
		queueErr   error
		noExporter bool
		wantHTTP   int
		wantGRPC   codes.Code
		wantText   string
		wantRetry  bool
	}{
		{"no exporter", nil, true, 404, codes.Unimplemented, "exporters.otlp_metrics", false},
		{"full", fmt.Errorf("queue metrics: %w", pipeline.ErrFull), false, 429, codes.ResourceExhausted, "queue is full", true},
		{"store failed", errors.New("write: no space left on device"), false, 503, codes.Unavailable, "no space left", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &memQueue{err: tt.queueErr}
			set := Settings{MetricData: q, Traces: &memQueue{}, RetryAfter: 7 * time.Second}
			if tt.noExporter {
				set.MetricData = nil
			}
			r := startReceiver(t, Config{}, set)
			resp, body := postHTTP(t, r, MetricsPath, contentProtobuf, "", pb)
			if resp.StatusCode != tt.wantHTTP || !strings.Contains(string(body), tt.wantText) {
				t.Errorf("HTTP: %d %q; want %d saying %q", resp.StatusCode, body, tt.wantHTTP, tt.wantText)
			}
			if tt.name == "full" && resp.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q, want 7", resp.Header.Get("Retry-After"))
			}
			_, err := pmetricotlp.NewGRPCClient(grpcClient(t, r)).Export(ctxT(t), pmetricotlp.NewExportRequestFromMetrics(testMetrics(1)))
			st := status.Convert(err)
			if st.Code() != tt.wantGRPC || !strings.Contains(st.Message(), tt.wantText) {
				t.Errorf("gRPC: %v; want %v saying %q", err, tt.wantGRPC, tt.wantText)
			}
			var ri *errdetails.RetryInfo
			for _, d := range st.Details() {
				if x, ok := d.(*errdetails.RetryInfo); ok {
					ri = x
				}
			}
			if tt.wantRetry != (ri != nil) {
				t.Errorf("RetryInfo present = %v, want %v", ri != nil, tt.wantRetry)
			}
			if len(q.entries) != 0 {
				t.Errorf("%d refused requests were stored", len(q.entries))
			}
		})
	}
}

// TestMetricsDepthAndMalformed: values nested past max_value_depth in a data point
// attribute, an exemplar's or metric metadata are refused on every transport before
// decoding, as is a request that does not decode; a good one is stored afterwards.
func TestMetricsDepthAndMalformed(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{MetricData: q})
	cc := grpcClient(t, r)
	method := "/" + metricsServiceDesc.ServiceName + "/Export"
	for name, place := range placesMetrics {
		md := testMetrics(1)
		nest(place(md), DefaultMaxValueDepth+1)
		pb, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		js, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
		for _, enc := range []struct {
			ct   string
			body []byte
		}{{contentProtobuf, pb}, {contentJSON, js}} {
			resp, body := postHTTP(t, r, MetricsPath, enc.ct, "", enc.body)
			if resp.StatusCode != 400 || !strings.Contains(string(body), "receivers.otlp.max_value_depth") {
				t.Errorf("%s %s: %d %q; want 400 naming receivers.otlp.max_value_depth", name, enc.ct, resp.StatusCode, body)
			}
		}
		var out []byte
		err := cc.Invoke(ctxT(t), method, pb, &out, grpc.ForceCodecV2(rawForTest{}))
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "receivers.otlp.max_value_depth") {
			t.Errorf("%s gRPC: %v; want INVALID_ARGUMENT naming the limit", name, err)
		}
	}
	var out []byte
	err := cc.Invoke(ctxT(t), method, []byte{0x0a, 0xff, 0xff, 0xff}, &out, grpc.ForceCodecV2(rawForTest{}))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "malformed protobuf") {
		t.Errorf("malformed gRPC: %v, want INVALID_ARGUMENT with the reason", err)
	}
	resp, body := postHTTP(t, r, MetricsPath, contentJSON, "", []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asDouble":"x"}]}}]}]}]}`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "cannot decode the OTLP metrics request (JSON)") {
		t.Errorf("malformed JSON: %d %q", resp.StatusCode, body)
	}
	if n := len(q.entries); n != 0 {
		t.Fatalf("%d refused requests were stored", n)
	}
	pb, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(1)).MarshalProto()
	if resp, body := postHTTP(t, r, MetricsPath, contentProtobuf, "", pb); resp.StatusCode != 200 {
		t.Fatalf("a normal request after the refused ones: %d %s", resp.StatusCode, body)
	}
}

// TestScrubMetricsEverywhere: nothing of a live secret value survives in a stored
// metrics request, wherever it was put — resource (with entity references), scope,
// metric name, description, unit and metadata, data point and exemplar attributes
// of every metric type — and no attribute is lost.
func TestScrubMetricsEverywhere(t *testing.T) {
	md := testMetrics(1)
	fill := func(m pcommon.Map) {
		m.PutStr("plain", "password="+scrubSecret)
		m.PutStr("b64", base64.StdEncoding.EncodeToString([]byte(scrubSecret)))
		m.PutStr("key-"+scrubSecret, "value")
		m.PutEmptyBytes("bytes").FromRaw([]byte("raw:" + scrubSecret))
		m.PutEmptyMap("nested").PutEmptySlice("list").AppendEmpty().SetStr(strings.ToUpper(scrubSecret))
	}
	rm := md.ResourceMetrics().At(0)
	fill(rm.Resource().Attributes())
	rm.SetSchemaUrl("https://example.com/" + scrubSecret)
	sm := rm.ScopeMetrics().At(0)
	fill(sm.Scope().Attributes())
	sm.Scope().SetVersion(scrubSecret)
	attrs := 0
	for i := 0; i < sm.Metrics().Len(); i++ {
		m := sm.Metrics().At(i)
		m.SetDescription("desc " + scrubSecret)
		m.SetUnit(scrubSecret)
		fill(m.Metadata())
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			fill(m.Gauge().DataPoints().At(0).Attributes())
			fill(m.Gauge().DataPoints().At(0).Exemplars().At(0).FilteredAttributes())
			attrs = m.Gauge().DataPoints().At(0).Attributes().Len()
		case pmetric.MetricTypeSum:
			m.SetName("sum." + scrubSecret)
			fill(m.Sum().DataPoints().At(0).Attributes())
		case pmetric.MetricTypeHistogram:
			fill(m.Histogram().DataPoints().At(0).Attributes())
			fill(m.Histogram().DataPoints().At(0).Exemplars().At(0).FilteredAttributes())
		case pmetric.MetricTypeExponentialHistogram:
			fill(m.ExponentialHistogram().DataPoints().At(0).Attributes())
			fill(m.ExponentialHistogram().DataPoints().At(0).Exemplars().AppendEmpty().FilteredAttributes())
		case pmetric.MetricTypeSummary:
			fill(m.Summary().DataPoints().At(0).Attributes())
		}
	}
	pb, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{MetricData: q, Redactor: scrubRegistry()})
	for _, send := range []func() error{
		func() error {
			resp, body := postHTTP(t, r, MetricsPath, contentProtobuf, "", pb)
			if resp.StatusCode != 200 {
				return fmt.Errorf("HTTP %d %s", resp.StatusCode, body)
			}
			return nil
		},
		func() error {
			var out []byte
			return grpcClient(t, r).Invoke(ctxT(t), "/"+metricsServiceDesc.ServiceName+"/Export", pb, &out, grpc.ForceCodecV2(rawForTest{}))
		},
	} {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	raw := []byte(q.raw())
	for _, f := range secretForms() {
		if bytes.Contains(bytes.ToLower(raw), []byte(strings.ToLower(f))) {
			t.Errorf("stored metrics still hold %q", f)
		}
	}
	for _, got := range q.metrics(t) {
		if got.DataPointCount() != 5 {
			t.Errorf("data points: %d, want 5", got.DataPointCount())
		}
		dp := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
		if dp.Attributes().Len() != attrs {
			t.Errorf("gauge attributes: %d after scrubbing, %d before", dp.Attributes().Len(), attrs)
		}
	}
}

// placesMetrics are the places of a metrics request that hold values.
var placesMetrics = map[string]func(md pmetric.Metrics) pcommon.Value{
	"resource": func(md pmetric.Metrics) pcommon.Value {
		return md.ResourceMetrics().At(0).Resource().Attributes().PutEmpty("deep")
	},
	"scope": func(md pmetric.Metrics) pcommon.Value {
		return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Attributes().PutEmpty("deep")
	},
	"metadata": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 0).Metadata().PutEmpty("deep")
	},
	"gauge point": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 0).Gauge().DataPoints().At(0).Attributes().PutEmpty("deep")
	},
	"gauge exemplar": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 0).Gauge().DataPoints().At(0).Exemplars().At(0).FilteredAttributes().PutEmpty("deep")
	},
	"sum point": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 1).Sum().DataPoints().At(0).Attributes().PutEmpty("deep")
	},
	"histogram point": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 2).Histogram().DataPoints().At(0).Attributes().PutEmpty("deep")
	},
	"histogram exemplar": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 2).Histogram().DataPoints().At(0).Exemplars().At(0).FilteredAttributes().PutEmpty("deep")
	},
	"exponential histogram point": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 3).ExponentialHistogram().DataPoints().At(0).Attributes().PutEmpty("deep")
	},
	"exponential histogram exemplar": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 3).ExponentialHistogram().DataPoints().At(0).Exemplars().AppendEmpty().FilteredAttributes().PutEmpty("deep")
	},
	"summary point": func(md pmetric.Metrics) pcommon.Value {
		return metricAt(md, 4).Summary().DataPoints().At(0).Attributes().PutEmpty("deep")
	},
}

func metricAt(md pmetric.Metrics, i int) pmetric.Metric {
	return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(i)
}
