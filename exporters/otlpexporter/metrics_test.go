package otlpexporter

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/pipeline"
)

// metricsPartial is an OTLP/HTTP metrics backend that refuses n data points of each
// request in a partial success — which Prometheus never sends, but a Collector or
// Mimir may.
func metricsPartial(t *testing.T, n int64) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		resp := pmetricotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedDataPoints(n)
		resp.PartialSuccess().SetErrorMessage("2 data points have no name")
		b, _ := resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &paths
}

// TestMetricsPartialSuccessCountsDataPoints: a partial success drops exactly the data
// points the backend counted, with its message, speaking of data points; a URL
// without a path is posted to /v1/metrics.
func TestMetricsPartialSuccessCountsDataPoints(t *testing.T) {
	srv, paths := metricsPartial(t, 2)
	h := newMetricsHarness(t, testMetricsConfig(srv.URL))
	a := exportertest.NewAcks()
	if err := h.exp.ExportMetrics(context.Background(), seriesBatch(t, "partial", 0, 3, time.Now(), a.Func(0))); err != nil {
		t.Fatal(err)
	}
	err := a.Wait(t, 0)
	if reason, ok := pipeline.IsPermanent(err); !ok || reason != ReasonPartialSuccess || !strings.Contains(err.Error(), "rejected 2 data points of the request: 2 data points have no name") {
		t.Fatalf("ack = %v; want the partial success, in data points", err)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": ReasonPartialSuccess}); v != 2 {
		t.Errorf("dropped %v, want 2", v)
	}
	if len(*paths) != 1 || (*paths)[0] != MetricsPath {
		t.Errorf("posted to %v, want %s", *paths, MetricsPath)
	}
}

// collectorMetrics is an OTLP/gRPC metrics server built on pdata's service, as a
// Collector runs it; it counts the data points it received.
type collectorMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	mu     sync.Mutex
	points int
}

func (c *collectorMetrics) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	c.mu.Lock()
	c.points += req.Metrics().DataPointCount()
	c.mu.Unlock()
	return pmetricotlp.NewExportResponse(), nil
}

// TestMetricsOverGRPC sends two batches in one request to a gRPC metrics service:
// the MetricsService method is called, and the concatenated request decodes to
// both batches' data points.
func TestMetricsOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coll := &collectorMetrics{}
	pmetricotlp.RegisterGRPCServer(srv, coll)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	cfg := testMetricsConfig("http://" + ln.Addr().String())
	cfg.Protocol = ProtocolGRPC
	cfg.Batch.MaxWait = time.Hour
	h := newMetricsHarness(t, cfg)
	a := exportertest.NewAcks()
	for k, b := range []pipeline.MetricBatch{seriesBatch(t, "grpc", 0, 4, time.Now(), a.Func(0)), seriesBatch(t, "grpc", 4, 5, time.Now(), a.Func(1))} {
		if err := h.exp.ExportMetrics(context.Background(), b); err != nil {
			t.Fatal(k, err)
		}
	}
	h.exp.Flush()
	for k := range 2 {
		if err := a.Wait(t, k); err != nil {
			t.Fatalf("ack %d = %v", k, err)
		}
	}
	coll.mu.Lock()
	defer coll.mu.Unlock()
	if coll.points != 18 {
		t.Errorf("the collector received %d data points, want 18", coll.points)
	}
}
