package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	otlprecv "github.com/outrider-dev/outrider/agent/otlp"
	"github.com/outrider-dev/outrider/agent/pipeline"
	"github.com/outrider-dev/outrider/exporters/queue/disk"
	"github.com/outrider-dev/outrider/internal/backoff"
)

// pump is a graph's source for pushed data: it reads a durable queue from its oldest
// unacknowledged entry and hands each entry to an exporter; the exporter's
// acknowledgement deletes the entry from the queue. A pump stopped before an entry is
// acknowledged leaves it for the next graph (Rewind) or the next start.
type pump struct {
	name   string
	q      *disk.Queue
	traces pipeline.TraceSink // for the traces queue
	logs   pipeline.Sink      // for the logs queue
	// envelopes is for the errors queue, whose entries are Sentry envelopes as they
	// are sent.
	envelopes pipeline.EnvelopeSink
	log       *slog.Logger
	bad       func() // counts an entry that could not be decoded
}

// Run implements pipeline.Source.
func (p *pump) Run(ctx context.Context) error {
	p.q.Rewind()
	var u plog.ProtoUnmarshaler
	retry := backoff.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		e, err := p.q.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, disk.ErrClosed) {
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
		id := e.ID
		ack := func(error) { p.q.Ack(id) }
		if p.envelopes != nil {
			if err := p.envelopes.ExportEnvelope(ctx, pipeline.Envelope{Data: e.Payload, Ack: ack}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("queue %s: export: %w", p.name, err)
			}
			continue
		}
		k, n, data, err := otlprecv.DecodeEntry(e.Payload)
		if err == nil && k == otlprecv.KindTraces && p.traces != nil {
			err = p.traces.ExportTraces(ctx, pipeline.TraceBatch{Data: data, Spans: n, Ack: ack})
		} else if err == nil && k == otlprecv.KindLogs && p.logs != nil {
			var ld plog.Logs
			if ld, err = u.UnmarshalLogs(data); err == nil {
				recs := otlprecv.LogRecords(ld, time.Now())
				if len(recs) == 0 {
					ack(nil)
					continue
				}
				err = p.logs.Export(ctx, pipeline.Batch{Records: recs, Ack: ack})
			} else {
				err = fmt.Errorf("%w: %w", errBadEntry, err)
			}
		} else if err == nil {
			err = fmt.Errorf("%w: a %s entry in the %s queue", errBadEntry, k, p.name)
		} else {
			err = fmt.Errorf("%w: %w", errBadEntry, err)
		}
		if errors.Is(err, errBadEntry) {
			// Checksummed on disk and written by this program: this is a bug or a
			// queue written by another version. Drop it so the rest flows.
			p.bad()
			p.log.Error("dropped a queue entry that cannot be decoded", "queue", p.name, "error", err)
			ack(nil)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("queue %s: export: %w", p.name, err)
		}
	}
}

var errBadEntry = errors.New("undecodable queue entry")
