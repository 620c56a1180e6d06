package pipeline

import "context"

// Sink receives batches of records. Exporters are sinks.
type Sink interface {
	// Export hands b to the sink. It may block while the sink is full, which is how
	// backpressure reaches sources, until ctx is done; it then returns ctx's error and
	// the batch stays the caller's. When Export returns nil the sink owns the batch and
	// its records, and calls b.Ack exactly once when they are delivered or dropped —
	// or never, if the agent stops first.
	Export(ctx context.Context, b Batch) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, b Batch) error

// Export calls f.
func (f SinkFunc) Export(ctx context.Context, b Batch) error { return f(ctx, b) }

// Source produces records into a Sink.
type Source interface {
	// Run produces until ctx is done, then drains within its own deadline: a source
	// whose input stays behind when it stops (a file the application will not write
	// again) reads it to its current end and hands that over too; every source waits
	// for the acknowledgements of what it handed over, saves its checkpoint, says what
	// it could not ship if the deadline passed, and returns. It returns nil on a
	// clean stop.
	Run(ctx context.Context) error
}

// Component is anything with a lifecycle the agent starts and stops, such as an
// exporter.
//
// Start returns quickly; work continues in goroutines the component owns. Shutdown
// flushes what it can before ctx is done, stops those goroutines, and is safe to call
// without Start and more than once.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}
