package errorevents

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	mrand "math/rand/v2"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/stacktrace"
)

// Redactor replaces live secret values in a string (processors/redact.Registry).
type Redactor interface {
	Redact(s string) (string, bool)
	Empty() bool
}

// Settings are what a Builder needs besides its configuration.
type Settings struct {
	// Resource are the pod's resource attributes (service.name, k8s.pod.name, ...);
	// they become tags of every event.
	Resource map[string]string
	// Redactor scrubs SDK events (derived events are built from scrubbed data).
	Redactor Redactor
	// Metrics are shared by the process; nil uses an unregistered set.
	Metrics *Metrics
	// Now and Rand are for tests; nil uses the clock and math/rand/v2.
	Now  func() time.Time
	Rand func() float64
}

// Builder makes, enriches and admits error events. It is safe for concurrent use.
type Builder struct {
	cfg     Config
	grafana Grafana
	tags    map[string]string
	service string
	red     Redactor
	m       *Metrics
	lim     *limiter
	now     func() time.Time
	rand    func() float64
}

// The event context where the limiter's count goes: Sentry shows it on the event.
const (
	contextOutrider = "outrider"
	suppressedKey   = "suppressed_events"
)

// Sources of events, for metrics and the outrider.source tag.
const (
	SourceLog  = "log"
	SourceSpan = "span"
	SourceSDK  = "sdk"
)

// New returns a Builder; cfg must have its defaults applied.
func New(cfg Config, g Grafana, set Settings) *Builder {
	b := &Builder{cfg: cfg, grafana: g, tags: map[string]string{}, red: set.Redactor, m: set.Metrics,
		lim: newLimiter(cfg.Window, cfg.PerWindow, cfg.MaxPerWindow), now: set.Now, rand: set.Rand}
	for k, v := range set.Resource {
		if v != "" {
			b.tags[k] = v
		}
	}
	b.service = set.Resource["service.name"]
	if b.m == nil {
		b.m = NewMetrics(nil)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.rand == nil {
		b.rand = mrand.Float64
	}
	return b
}

// admit applies the limiter and sampling to an event of fingerprint fp from source,
// counting the outcome; on true, suppressed is how many events of fp it stands for
// besides itself.
func (b *Builder) admit(source, fp string) (ok bool, suppressed int) {
	ok, suppressed = b.lim.admit(fp, b.now())
	if !ok {
		b.m.events.WithLabelValues(source, "limited").Inc()
		return false, 0
	}
	if r := *b.cfg.SampleRate; r < 1 && b.rand() >= r {
		b.m.events.WithLabelValues(source, "sampled").Inc()
		return false, 0
	}
	return true, suppressed
}

// Sent counts an event handed to the queue; Failed one that could not be queued.
func (b *Builder) Sent(source string)   { b.m.events.WithLabelValues(source, "sent").Inc() }
func (b *Builder) Failed(source string) { b.m.events.WithLabelValues(source, "failed").Inc() }

// FromLog returns the event for an error-level record whose line holds a stack trace,
// or ok false. The record is not changed; the caller adds the event ID to it.
func (b *Builder) FromLog(r *pipeline.Record) (ev *sentry.Event, ok bool) {
	if !*b.cfg.FromLogs || (r.Level != pipeline.LevelError && r.Level != pipeline.LevelFatal) {
		return nil, false
	}
	tr, ok := stacktrace.Parse(r.Line)
	if !ok || len(tr.Exceptions) == 0 {
		return nil, false
	}
	ev = b.newEvent(SourceLog, r.Time)
	ev.Platform = platformOf(tr.Language)
	ev.Level = sentry.LevelError
	if r.Level == pipeline.LevelFatal {
		ev.Level = sentry.LevelFatal
	}
	ev.Exception = exceptions(tr)
	ev.Logger = r.Stream.Get("source")
	b.correlate(ev, r.TraceID, r.SpanID, r.RequestID)
	last := ev.Exception[len(ev.Exception)-1]
	if !b.finish(ev, SourceLog, last.Type, last.Value, framesOf(last)) {
		return nil, false
	}
	return ev, true
}

// newEvent returns an event with an ID, the time, the pod's tags, environment and
// release.
func (b *Builder) newEvent(source string, t time.Time) *sentry.Event {
	ev := sentry.NewEvent()
	ev.EventID = sentry.EventID(newEventID())
	if t.IsZero() {
		t = b.now()
	}
	ev.Timestamp = t
	ev.Environment = b.cfg.Environment
	ev.Release = b.cfg.Release
	for k, v := range b.tags {
		ev.Tags[k] = v
	}
	ev.Tags["outrider.source"] = source
	return ev
}

// correlate sets the trace context and the correlation tags.
func (b *Builder) correlate(ev *sentry.Event, traceID, spanID, requestID string) {
	if traceID != "" {
		if spanID == "" {
			// Sentry's trace context needs a span: a log line with only a trace ID
			// gets one of its own, in the same trace.
			spanID = newSpanID()
		}
		ev.Contexts["trace"] = sentry.Context{"trace_id": traceID, "span_id": spanID}
		ev.Tags["trace_id"] = traceID
	}
	if requestID != "" {
		ev.Tags["request_id"] = requestID
	}
	if l := b.grafana.links(traceID, requestID, b.service, ev.Timestamp); l != nil {
		ev.Contexts["grafana"] = l
	}
}

// finish fingerprints and admits a derived event, noting how many it stands for.
func (b *Builder) finish(ev *sentry.Event, source, typ, value string, frames []frameKey) bool {
	fp := fingerprint(typ, value, frames)
	ok, suppressed := b.admit(source, fp)
	if !ok {
		return false
	}
	ev.Fingerprint = []string{fp}
	if suppressed > 0 {
		ev.Contexts[contextOutrider] = sentry.Context{suppressedKey: suppressed}
	}
	return true
}

func newSpanID() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	id[0] |= 1 // never all zero
	return hex.EncodeToString(id[:])
}

func newEventID() string {
	var id [16]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// platformOf is the Sentry platform of a stack trace's language ("csharp" for .NET).
func platformOf(lang string) string { return stacktrace.Trace{Language: lang}.Platform() }

// exceptions converts a parsed trace to Sentry exceptions, in the trace's order.
func exceptions(tr stacktrace.Trace) []sentry.Exception {
	out := make([]sentry.Exception, 0, len(tr.Exceptions))
	for _, e := range tr.Exceptions {
		se := sentry.Exception{Type: e.Type, Value: e.Value, Module: e.Module}
		if se.Type == "" {
			se.Type = "Error"
		}
		if len(tr.Exceptions) > 1 {
			// Chained causes: tell Sentry how they relate, as its SDKs do.
			id := e.ExceptionID
			m := &sentry.Mechanism{Type: "chained", ExceptionID: id, Source: e.Source, IsExceptionGroup: e.IsExceptionGroup}
			if e.ParentID >= 0 {
				parent := e.ParentID
				m.ParentID = &parent
			}
			se.Mechanism = m
		}
		if len(e.Frames) > 0 {
			st := &sentry.Stacktrace{Frames: make([]sentry.Frame, 0, len(e.Frames))}
			for _, f := range e.Frames {
				st.Frames = append(st.Frames, sentry.Frame{
					Function: f.Function, Module: f.Module, Filename: f.Filename, AbsPath: f.AbsPath,
					Lineno: f.Lineno, Colno: f.Colno, InApp: f.InApp,
				})
			}
			se.Stacktrace = st
		}
		out = append(out, se)
	}
	return out
}

func framesOf(e sentry.Exception) []frameKey {
	if e.Stacktrace == nil {
		return nil
	}
	out := make([]frameKey, 0, len(e.Stacktrace.Frames))
	for _, f := range e.Stacktrace.Frames {
		out = append(out, frameKey{module: f.Module, function: f.Function, inApp: f.InApp})
	}
	return out
}

// Marshal returns the event's JSON.
func Marshal(ev *sentry.Event) ([]byte, error) { return json.Marshal(ev) }
