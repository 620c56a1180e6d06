package otlpexporter

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// UserAgent is sent with every request. The agent sets it to "outrider/<version>" at
// start-up.
var UserAgent = "outrider/dev"

// Settings are what an Exporter needs besides its configuration; Name "" means "otlp".
// The record counts of its QueueMetrics are spans.
type Settings = exporterhelper.ExporterSettings

// chunk is one TraceBatch (or MetricBatch) as the exporter keeps it: a serialized
// export request and its item count (spans, or data points). A request is the chunks'
// bytes one after the other, which is itself a valid export request.
type chunk struct {
	data  []byte
	spans int
}

func chunkSize(c *chunk) int  { return len(c.data) }
func chunkSpans(c *chunk) int { return c.spans }

// client sends one request's chunks and classifies the outcome (see classify.go).
type client interface {
	push(ctx context.Context, chunks []chunk) error
	close()
}

// Exporter sends spans to an OTLP backend (Tempo, Jaeger, a Collector) over gRPC or
// HTTP. It never decodes the spans it sends: requests are the byte concatenation of the
// batches it was given, and only the small export response is decoded.
//
// It is a pipeline.TraceSink and a pipeline.Component.
type Exporter struct {
	client  client
	sender  *exporterhelper.Sender[chunk]
	log     *slog.Logger
	sig     *signal
	lastLog atomic.Int64 // unix nanoseconds of the last partial-success warning
}

var (
	_ pipeline.TraceSink = (*Exporter)(nil)
	_ pipeline.Component = (*Exporter)(nil)
)

// New builds an Exporter from cfg, which gets its defaults applied here. It does not
// connect: the first request does.
func New(cfg Config, set Settings) (*Exporter, error) {
	cfg.ApplyDefaults()
	if set.Name == "" {
		set.Name = "otlp"
	}
	return newExporter(cfg, set, tracesSignal)
}

func newExporter(cfg Config, set Settings, sig *signal) (*Exporter, error) {
	var p confval.Problems
	cfg.validate(&p, sig)
	if err := p.Err(); err != nil {
		return nil, err
	}
	ep, err := parseEndpoint(cfg.Endpoint, cfg.Protocol, sig)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{log: log.With("exporter", set.Name), sig: sig}
	if cfg.Protocol == ProtocolHTTP {
		e.client, err = newHTTPClient(&cfg, ep, sig, e.warnPartial)
	} else {
		e.client, err = newGRPCClient(&cfg, ep, sig, e.warnPartial)
	}
	if err != nil {
		return nil, err
	}
	qcfg := exporterhelper.Config{Batch: cfg.Batch, Retry: cfg.Retry, Concurrency: cfg.Concurrency, Timeout: cfg.Timeout}
	// A request the backend refuses as a whole (400, InvalidArgument) is pushed
	// again in halves, down to single batches, so that one bad batch does not take
	// the others with it.
	e.sender, err = exporterhelper.New(qcfg, set.Sender(), chunkSize, e.push, exporterhelper.WithRecordCount(chunkSpans, cfg.MaxSpans),
		exporterhelper.WithSplit(exporterhelper.Halves[chunk]))
	if err != nil {
		e.client.close()
		return nil, err
	}
	return e, nil
}

// push sends one request; it is the queue's PushFunc.
func (e *Exporter) push(ctx context.Context, chunks []chunk) error { return e.client.push(ctx, chunks) }

// Start starts the export workers and returns.
func (e *Exporter) Start(ctx context.Context) error { return e.sender.Start(ctx) }

// Shutdown stops accepting batches, sends what is buffered until ctx is done, and
// closes the connections. Spans not delivered by then are not acknowledged, so their
// sources keep them. Safe without Start and more than once.
func (e *Exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	e.client.close()
	return err
}

// ExportTraces implements pipeline.TraceSink: it blocks while max_pending_bytes are
// unsent. On nil the exporter owns b.Data and never changes it.
func (e *Exporter) ExportTraces(ctx context.Context, b pipeline.TraceBatch) error {
	items := [1]chunk{{data: b.Data, spans: b.Spans}}
	return e.sender.Add(ctx, items[:], b.Ack)
}

// Flush hands the request being filled to the workers now, without waiting for
// batch.max_wait.
func (e *Exporter) Flush() { e.sender.Flush() }

// partialWarnInterval spaces out the warnings of backends that answer every request
// with a partial_success message but no rejected items.
const partialWarnInterval = time.Minute

// warnPartial logs a warning a backend sent in partial_success without rejecting
// items (the OTLP way to pass warnings), at most once per partialWarnInterval.
func (e *Exporter) warnPartial(msg string) {
	now := time.Now().UnixNano()
	if last := e.lastLog.Load(); now-last < int64(partialWarnInterval) || !e.lastLog.CompareAndSwap(last, now) {
		return
	}
	e.log.Warn("backend accepted all "+e.sig.items+" with a warning", "warning", cutText(msg))
}
