package pipeline

import "context"

// MetricBatch is metrics in OTLP wire form, ready to export: Data is one serialized
// ExportMetricsServiceRequest (protobuf), already checked, enriched and scrubbed, and
// DataPoints is how many data points it holds. Like TraceBatch's, serialized requests
// concatenate into one valid request.
type MetricBatch struct {
	// Data is the serialized request. The sink owns it after a successful Export and
	// must not change it.
	Data []byte
	// DataPoints is the number of data points in Data.
	DataPoints int
	// Ack is called once when the data points are durable (the backend accepted them)
	// or dropped (permanently rejected, counted and logged); nil when nobody waits.
	Ack AckFunc
}

// MetricSink receives metrics, with Sink's contract (see TraceSink).
type MetricSink interface {
	ExportMetrics(ctx context.Context, b MetricBatch) error
}

// Done calls the batch's acknowledgement, if it has one.
func (b *MetricBatch) Done(err error) {
	if b.Ack != nil {
		b.Ack(err)
	}
}
