package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/receivers/diskqueue"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
)

// pump is a graph's source for pushed data: it reads a durable queue from its oldest
// unacknowledged entry and hands each entry to an exporter; the exporter's
// acknowledgement deletes the entry from the queue. A pump stopped before an entry is
// acknowledged leaves it for the next graph (Rewind) or the next start.
//
// An entry the pump cannot process — it does not decode, it nests values deeper than
// maxEntryValueDepth, decoding or converting it panics, or the agent stopped twice
// while decoding it (diskqueue.Queue.Begin: a fatal error no recover catches) — is a poison
// entry: the pump sets it aside with diskqueue.Queue.Quarantine (kept on disk, counted,
// logged once, acknowledged) and goes on with the next, so one bad entry neither stops
// the queue nor crashes the agent at every start.
type pump struct {
	name    string
	q       *diskqueue.Queue
	traces  pipeline.TraceSink  // for the traces queue
	logs    pipeline.Sink       // for the logs queue
	metrics pipeline.MetricSink // for the metrics queue
	// envelopes is for the errors queue, whose entries are Sentry envelopes as they
	// are sent.
	envelopes pipeline.EnvelopeSink
	log       *slog.Logger
	bad       func() // counts an entry that could not be processed (and was quarantined)
}

// maxEntryValueDepth bounds how deeply the values (AnyValue in lists and maps) of a
// logs entry may nest, counted as the receivers' max_value_depth counts (a list of
// strings is 1, a map holding a list is 2) and equal to its highest setting, so the
// pump takes whatever a receiver accepted. The decoder recurses once per level and a
// goroutine's stack overflow is a fatal error that no recover catches, so depth is
// checked first, with a walk that does not recurse; the bound is for entries an older
// version stored.
const maxEntryValueDepth = 1000

// maxEntryCrashes is how many runs may stop while decoding one entry before the next
// run quarantines it undecoded: one stop may be a kill that happened to fall there,
// two in a row are the entry's doing.
const maxEntryCrashes = 2

// entryFault, when set (by tests), is called with each entry's payload where decoding
// happens, to make processing fail in ways real input cannot be made to.
var entryFault func(payload []byte)

// Run implements pipeline.Source.
func (p *pump) Run(ctx context.Context) error {
	p.q.Rewind()
	retry := backoff.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		e, err := p.q.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, diskqueue.ErrClosed) {
				return nil
			}
			// An I/O error reading the queue: the entries stay on disk; try again.
			d := retry.Next()
			p.log.Warn("cannot read the queue; retrying", "queue", p.name, "retry_in", d.String(), "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
			continue
		}
		retry.Reset()
		if err := p.process(ctx, e); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("queue %s: export: %w", p.name, err)
		}
	}
}

// process hands one entry to its exporter, or quarantines it when it cannot be
// processed. It returns the exporter's error (ctx's, or the exporter is closed): the
// entry was not taken and stays in the queue.
func (p *pump) process(ctx context.Context, e diskqueue.Entry) error {
	id := e.ID
	ack := func(error) { p.q.Ack(id) }
	var d decoded
	var err error
	// Only decoding can crash the process; trace and metrics entries pass undecoded,
	// and their pumps spare the two writes per entry.
	guard := p.logs != nil || p.envelopes != nil
	if guard {
		if n := p.q.Begin(id); n >= maxEntryCrashes {
			err = fmt.Errorf("%w: the agent stopped %d times while decoding it (a crash no recover catches, such as running out of memory)", errBadEntry, n)
		}
	}
	if err == nil {
		d, err = p.decode(e.Payload)
	}
	if guard {
		p.q.End()
	}
	if err != nil {
		// Checksummed on disk: this entry was stored so (by another version, or from
		// input a receiver should have refused), or it meets a bug. Set it aside so
		// the rest flows and no restart trips over it again.
		p.bad()
		_ = p.q.Quarantine(e, err.Error()) // logged by the queue
		return nil
	}
	switch {
	case d.envelope:
		return p.envelopes.ExportEnvelope(ctx, pipeline.Envelope{Data: e.Payload, Ack: ack})
	case d.traces:
		return p.traces.ExportTraces(ctx, pipeline.TraceBatch{Data: d.data, Spans: d.spans, Ack: ackRelease(ack, e.Payload)})
	case d.metrics:
		return p.metrics.ExportMetrics(ctx, pipeline.MetricBatch{Data: d.data, DataPoints: d.spans, Ack: ackRelease(ack, e.Payload)})
	case len(d.records) == 0:
		ack(nil)
		return nil
	default:
		return p.logs.Export(ctx, pipeline.Batch{Records: d.records, Ack: ack})
	}
}

// ackRelease acknowledges an entry whose payload the exporter holds until then, and
// hands the payload back to the queue's buffers: the OTLP exporter reads a batch's
// bytes only until it acknowledges it. A second call (a broken sink) releases
// nothing, since a buffer released twice would be handed to two readers.
func ackRelease(ack pipeline.AckFunc, payload []byte) pipeline.AckFunc {
	var released atomic.Bool
	return func(err error) {
		ack(err)
		if released.CompareAndSwap(false, true) {
			diskqueue.Release(payload)
		}
	}
}

// decoded is one entry made ready for its exporter.
type decoded struct {
	envelope bool // a valid Sentry envelope, exported as it is
	traces   bool
	metrics  bool
	data     []byte            // traces and metrics: the request
	spans    int               // traces: spans; metrics: data points
	records  []pipeline.Record // logs
}

// decode turns one entry into what its exporter takes: an envelope is checked to
// parse, a traces or metrics entry is split from its framing, a logs entry is decoded. It never
// panics: a panic while decoding or converting becomes an error wrapping errBadEntry,
// as does anything that does not decode or does not fit this pump's sinks.
func (p *pump) decode(payload []byte) (d decoded, err error) {
	defer func() {
		if r := recover(); r != nil {
			stack := debug.Stack()
			if len(stack) > 4<<10 {
				stack = stack[:4<<10]
			}
			d, err = decoded{}, fmt.Errorf("%w: processing it panicked: %v\n%s", errBadEntry, r, stack)
		}
	}()
	if entryFault != nil {
		entryFault(payload)
	}
	if p.envelopes != nil {
		if _, err := sentryenv.Parse(payload, sentryenv.Limits{}); err != nil {
			return d, fmt.Errorf("%w: %w", errBadEntry, err)
		}
		return decoded{envelope: true}, nil
	}
	k, n, data, err := otlpreceiver.DecodeEntry(payload)
	switch {
	case err != nil:
		return d, fmt.Errorf("%w: %w", errBadEntry, err)
	case k == otlpreceiver.KindTraces && p.traces != nil:
		return decoded{traces: true, data: data, spans: n}, nil
	case k == otlpreceiver.KindMetrics && p.metrics != nil:
		return decoded{metrics: true, data: data, spans: n}, nil
	case k == otlpreceiver.KindLogs && p.logs != nil:
		if err := otlpreceiver.CheckLogsDepth(data, maxEntryValueDepth); err != nil {
			return d, fmt.Errorf("%w: %w", errBadEntry, err)
		}
		var u plog.ProtoUnmarshaler
		ld, err := u.UnmarshalLogs(data)
		if err != nil {
			return d, fmt.Errorf("%w: %w", errBadEntry, err)
		}
		return decoded{records: otlpreceiver.LogRecords(ld, time.Now())}, nil
	}
	return d, fmt.Errorf("%w: a %s entry in the %s queue, whose pump has no exporter for it", errBadEntry, k, p.name)
}

var errBadEntry = errors.New("unprocessable queue entry")
