package otlpexporter

import (
	"context"

	"github.com/outrider-dev/outrider/pipeline"
)

// MetricsExporter sends metrics to a Prometheus or Mimir OTLP endpoint (or any OTLP
// metrics backend) over OTLP/HTTP, or gRPC for a Collector. It is the trace
// exporter's machinery with the metrics service's path, method and messages: requests
// are the byte concatenation of the ExportMetricsServiceRequests it was given, never
// decoded; the queue's record counts are data points, and a partial_success counts
// exactly the data points the backend refused (Prometheus reports out-of-order and
// duplicate samples so).
//
// It is a pipeline.MetricSink and a pipeline.Component.
type MetricsExporter struct{ e *Exporter }

var (
	_ pipeline.MetricSink = (*MetricsExporter)(nil)
	_ pipeline.Component  = (*MetricsExporter)(nil)
)

// NewMetrics builds a MetricsExporter from cfg, which gets its defaults applied here;
// set.Name "" means "otlp_metrics". It does not connect: the first request does.
func NewMetrics(cfg MetricsConfig, set Settings) (*MetricsExporter, error) {
	cfg.ApplyDefaults()
	if set.Name == "" {
		set.Name = "otlp_metrics"
	}
	e, err := newExporter(cfg.config(), set, metricsSignal)
	if err != nil {
		return nil, err
	}
	return &MetricsExporter{e: e}, nil
}

// Start starts the export workers and returns.
func (m *MetricsExporter) Start(ctx context.Context) error { return m.e.Start(ctx) }

// Shutdown stops accepting batches, sends what is buffered until ctx is done, and
// closes the connections. Data points not delivered by then are not acknowledged, so
// they stay in the durable queue. Safe without Start and more than once.
func (m *MetricsExporter) Shutdown(ctx context.Context) error { return m.e.Shutdown(ctx) }

// ExportMetrics implements pipeline.MetricSink: it blocks while max_pending_bytes are
// unsent. On nil the exporter owns b.Data and never changes it.
func (m *MetricsExporter) ExportMetrics(ctx context.Context, b pipeline.MetricBatch) error {
	items := [1]chunk{{data: b.Data, spans: b.DataPoints}}
	return m.e.sender.Add(ctx, items[:], b.Ack)
}

// Flush hands the request being filled to the workers now, without waiting for
// batch.max_wait.
func (m *MetricsExporter) Flush() { m.e.Flush() }
