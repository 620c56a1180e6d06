package errorevents

import (
	"context"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// Appender stores envelopes durably (the errors queue).
type Appender interface {
	Append(ctx context.Context, entry []byte) error
}

// MetadataEventID is the structured metadata name under which a log line that
// produced an event carries the event's ID, so Loki links to Sentry.
const MetadataEventID = "sentry_event_id"

// Envelope returns ev as a Sentry envelope, ready for the queue.
func Envelope(ev *sentry.Event, now time.Time) ([]byte, error) {
	data, err := Marshal(ev)
	if err != nil {
		return nil, err
	}
	return sentryenv.NewEventEnvelope(string(ev.EventID), data, now), nil
}

// Emit stores an event, counting the outcome, and reports whether it was stored.
func (b *Builder) Emit(ctx context.Context, out Appender, source string, ev *sentry.Event) bool {
	if out == nil {
		b.Failed(source)
		return false
	}
	env, err := Envelope(ev, b.now())
	if err == nil {
		err = out.Append(ctx, env)
	}
	if err != nil {
		b.Failed(source)
		return false
	}
	b.Sent(source)
	return true
}

// LogSink derives events from the records it passes on to the next sink: an
// error-level record with a stack trace becomes an event in the errors queue, and the
// record gets the event's ID as structured metadata.
type LogSink struct {
	next    pipeline.Sink
	current func() (*Builder, Appender)
}

// NewLogSink wraps next. current returns the Builder and errors queue in use now
// (a nil Builder: no events right now); they may change between calls, as the agent
// reloads its configuration.
func NewLogSink(next pipeline.Sink, current func() (*Builder, Appender)) *LogSink {
	return &LogSink{next: next, current: current}
}

// Export implements pipeline.Sink.
func (s *LogSink) Export(ctx context.Context, batch pipeline.Batch) error {
	b, out := s.current()
	for i := range batch.Records {
		if b == nil {
			break
		}
		r := &batch.Records[i]
		if r.Level != pipeline.LevelError && r.Level != pipeline.LevelFatal {
			continue
		}
		ev, ok := b.FromLog(r)
		if !ok {
			continue
		}
		if b.Emit(ctx, out, SourceLog, ev) {
			r.Metadata = append(r.Metadata, pipeline.Label{Name: MetadataEventID, Value: string(ev.EventID)})
		}
	}
	return s.next.Export(ctx, batch)
}
