package errorevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// LokiSource is the source label of the error events' stream in Loki (errors.to_loki).
const LokiSource = "outrider-errors"

// Structured metadata names of an error event's line in Loki, besides
// MetadataEventID and the trace_id, span_id and request_id every record may carry.
const (
	MetadataExceptionType = "exception_type"
	MetadataFingerprint   = "fingerprint"
)

// Bounds on the fields of a summary line: an event may be up to 1 MB, its line stays
// short. Longer values are cut at a UTF-8 boundary and end with "…".
const (
	maxSummaryText  = 1024 // exception value, message
	maxSummaryShort = 256  // type, culprit, transaction, environment, release, metadata values
	maxSummaryLink  = 4096 // a longer Grafana link is left out (cut, it would not open)
)

// Summary is the Loki form of one error event: its line (compact JSON) and what goes
// in the record besides (level, time, correlation IDs, structured metadata).
type Summary struct {
	EventID     string `json:"event_id"`
	Level       string `json:"level"`
	Source      string `json:"source,omitempty"` // log, span, sdk (the outrider.source tag)
	Type        string `json:"type,omitempty"`   // the main exception's type, after its module
	Value       string `json:"value,omitempty"`  // the main exception's value
	Culprit     string `json:"culprit,omitempty"`
	Transaction string `json:"transaction,omitempty"`
	Platform    string `json:"platform,omitempty"`
	Message     string `json:"message,omitempty"`
	Frames      int    `json:"frames"` // frames of the main exception's stack trace
	Fingerprint string `json:"fingerprint,omitempty"`
	Environment string `json:"environment,omitempty"`
	Release     string `json:"release,omitempty"`
	// Suppressed is how many events of the fingerprint the limiter held back since
	// the previous one sent; they have no line of their own.
	Suppressed int               `json:"suppressed,omitempty"`
	TraceID    string            `json:"trace_id,omitempty"`
	SpanID     string            `json:"span_id,omitempty"`
	RequestID  string            `json:"request_id,omitempty"`
	Links      map[string]string `json:"links,omitempty"` // Grafana: tempo_trace, loki_logs

	time time.Time // the event's timestamp, zero when it has none usable
}

// SummarizeEnvelope returns the summary of the event an envelope (as stored in the
// errors queue) holds, or ok false when it holds no event item. An event that is not
// a JSON object still gets a summary with the envelope's event ID, so no event goes
// without its line.
func SummarizeEnvelope(data []byte) (s Summary, ok bool) {
	env, err := sentryenv.Parse(data, sentryenv.Limits{})
	if err != nil {
		return s, false
	}
	for _, it := range env.Items {
		if it.Type != "event" {
			continue
		}
		ev, err := decodeEvent(it.Payload)
		if err != nil {
			ev = map[string]any{}
		}
		s = Summarize(ev)
		if id, ok := sentryenv.NormalizeEventID(env.EventID()); ok && s.EventID == "" {
			s.EventID = id
		}
		if t, ok := sdkEventTime(env.Header["sent_at"]); ok && s.time.IsZero() {
			s.time = t
		}
		return s, true
	}
	return s, false
}

func decodeEvent(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return ev, nil
}

var errTrailing = errors.New("unexpected data after the event")

// Summarize returns the summary of one event (decoded JSON, as Sentry's protocol
// writes it: sentry-go's and every other SDK's forms). Fields the event lacks are
// left empty; nothing in it can make Summarize fail.
func Summarize(ev map[string]any) Summary {
	var s Summary
	if id, ok := sentryenv.NormalizeEventID(strOf(ev["event_id"])); ok {
		s.EventID = id
	}
	s.Level = strOf(ev["level"])
	if s.Level == "" {
		s.Level = "error" // Sentry's default
	}
	tags := tagSetter(copyTagsHolder(ev))
	s.Source = tags.get("outrider.source")
	s.Platform = strOf(ev["platform"])
	s.Transaction = strOf(ev["transaction"])
	s.Environment = strOf(ev["environment"])
	s.Release = strOf(ev["release"])
	s.Message = eventMessage(ev)
	if t, ok := sdkEventTime(ev["timestamp"]); ok {
		s.time = t
	}

	if values := exceptionValues(ev); len(values) > 0 {
		main, _ := values[len(values)-1].(map[string]any)
		s.Type = strOf(main["type"])
		if mod := strOf(main["module"]); mod != "" && s.Type != "" && !strings.HasPrefix(s.Type, mod+".") {
			s.Type = mod + "." + s.Type // java.lang.IllegalStateException, as it was thrown
		}
		s.Value = strOf(main["value"])
		if st, ok := main["stacktrace"].(map[string]any); ok {
			frames, _ := st["frames"].([]any)
			s.Frames = len(frames)
			s.Culprit = culpritOf(frames)
		}
	}
	if c := strOf(ev["culprit"]); c != "" {
		s.Culprit = c
	}

	switch {
	case s.Source == SourceLog || s.Source == SourceSpan:
		// Derived events carry the limiter's fingerprint as their own.
		if fp, ok := ev["fingerprint"].([]any); ok && len(fp) == 1 {
			s.Fingerprint = strOf(fp[0])
		}
	default:
		s.Fingerprint = sdkFingerprint(ev)
	}

	contexts, _ := ev["contexts"].(map[string]any)
	if tc, ok := contexts["trace"].(map[string]any); ok {
		if id := strings.ToLower(strOf(tc["trace_id"])); pipeline.ValidTraceID(id) {
			s.TraceID = id
		}
		if id := strings.ToLower(strOf(tc["span_id"])); pipeline.ValidSpanID(id) && s.TraceID != "" {
			s.SpanID = id
		}
	}
	if s.TraceID == "" {
		if id := strings.ToLower(tags.get("trace_id")); pipeline.ValidTraceID(id) {
			s.TraceID = id
		}
	}
	s.RequestID = cut(tags.get("request_id"), maxSummaryShort)
	if o, ok := contexts[contextOutrider].(map[string]any); ok {
		s.Suppressed = intOf(o[suppressedKey])
	}
	if g, ok := contexts["grafana"].(map[string]any); ok {
		for _, k := range []string{"tempo_trace", "loki_logs"} {
			if u := strOf(g[k]); u != "" && len(u) <= maxSummaryLink && utf8.ValidString(u) {
				if s.Links == nil {
					s.Links = map[string]string{}
				}
				s.Links[k] = u
			}
		}
	}
	s.Level = cut(s.Level, 32)
	s.Source = cut(s.Source, 32)
	s.Type = cut(s.Type, maxSummaryShort)
	s.Value = cut(s.Value, maxSummaryText)
	s.Message = cut(s.Message, maxSummaryText)
	s.Culprit = cut(s.Culprit, maxSummaryShort)
	s.Transaction = cut(s.Transaction, maxSummaryShort)
	s.Platform = cut(s.Platform, 32)
	s.Environment = cut(s.Environment, maxSummaryShort)
	s.Release = cut(s.Release, maxSummaryShort)
	return s
}

// copyTagsHolder returns a map holding only ev's tags, so that reading them through
// tagSetter never changes ev.
func copyTagsHolder(ev map[string]any) map[string]any {
	return map[string]any{"tags": ev["tags"]}
}

// eventMessage is the event's message in any of the protocol's forms.
func eventMessage(ev map[string]any) string {
	switch m := ev["message"].(type) {
	case string:
		return m
	case map[string]any:
		if s := strOf(m["formatted"]); s != "" {
			return s
		}
		return strOf(m["message"])
	}
	if le, ok := ev["logentry"].(map[string]any); ok {
		if s := strOf(le["formatted"]); s != "" {
			return s
		}
		return strOf(le["message"])
	}
	return ""
}

// culpritOf names the frame an error most likely comes from: the innermost in-app
// frame (Sentry lists frames outermost first), else the innermost frame, as
// "module.function (file:line)".
func culpritOf(frames []any) string {
	pick := -1
	for i := len(frames) - 1; i >= 0; i-- {
		f, _ := frames[i].(map[string]any)
		if f == nil {
			continue
		}
		if pick < 0 {
			pick = i
		}
		if b, _ := f["in_app"].(bool); b {
			pick = i
			break
		}
	}
	if pick < 0 {
		return ""
	}
	f := frames[pick].(map[string]any)
	fn := strOf(f["function"])
	if mod := strOf(f["module"]); mod != "" && fn != "" && !strings.HasPrefix(fn, mod) {
		fn = mod + "." + fn
	} else if fn == "" {
		fn = mod
	}
	file := strOf(f["filename"])
	if file == "" {
		file = strOf(f["abs_path"])
	}
	if file == "" {
		return fn
	}
	if n := intOf(f["lineno"]); n > 0 {
		file += ":" + strconv.Itoa(n)
	}
	if fn == "" {
		return file
	}
	return fn + " (" + file + ")"
}

// Line returns the summary's line: compact JSON, valid UTF-8.
func (s Summary) Line() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // strings, ints and a map of strings: cannot fail
	return strings.TrimSuffix(buf.String(), "\n")
}

// Record returns the summary as a record of stream: the line, the event's level and
// time (now when the event has none, or one more than 5 minutes ahead, which Loki
// would refuse), the correlation IDs, and the event ID, exception type and fingerprint
// as structured metadata.
func (s Summary) Record(stream *pipeline.Stream, now time.Time) pipeline.Record {
	t := s.time
	if t.IsZero() || t.After(now.Add(5*time.Minute)) {
		t = now
	}
	lvl := pipeline.ParseLevel(s.Level)
	if lvl == pipeline.LevelUnknown {
		lvl = pipeline.LevelError
	}
	r := pipeline.Record{
		Time: t, Line: s.Line(), Stream: stream, Level: lvl,
		TraceID: s.TraceID, SpanID: s.SpanID, RequestID: s.RequestID,
	}
	for _, m := range [...]pipeline.Label{
		{Name: MetadataEventID, Value: s.EventID},
		{Name: MetadataExceptionType, Value: s.Type},
		{Name: MetadataFingerprint, Value: s.Fingerprint},
	} {
		if m.Value != "" {
			r.Metadata = append(r.Metadata, m)
		}
	}
	return r
}

// LokiSink writes a summary line of every event in the envelopes it is given to a log
// sink (the Loki exporter behind redaction), then passes the envelope on to the next
// envelope sink (the Sentry exporter) when there is one. An envelope is acknowledged
// once both have taken care of it; one without an event (a transaction, a session)
// goes to the next sink only, or is acknowledged at once without one.
type LokiSink struct {
	logs   pipeline.Sink
	next   pipeline.EnvelopeSink
	stream *pipeline.Stream
	now    func() time.Time
}

var _ pipeline.EnvelopeSink = (*LokiSink)(nil)

// NewLokiSink returns a LokiSink writing to logs, in the stream with labels (the
// pod's identity labels; source is set to LokiSource), then to next (nil: none).
func NewLokiSink(logs pipeline.Sink, next pipeline.EnvelopeSink, labels map[string]string) *LokiSink {
	l := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		l[k] = v
	}
	l["source"] = LokiSource
	return &LokiSink{logs: logs, next: next, stream: pipeline.NewStream(l), now: time.Now}
}

// ExportEnvelope implements pipeline.EnvelopeSink. An error from the log sink means
// nothing was taken; an error from the next sink after the line was taken leaves the
// envelope unacknowledged, so it is delivered again (Loki keeps one of two identical
// lines of a stream at one time).
func (s *LokiSink) ExportEnvelope(ctx context.Context, e pipeline.Envelope) error {
	sum, ok := SummarizeEnvelope(e.Data)
	if !ok {
		if s.next != nil {
			return s.next.ExportEnvelope(ctx, e)
		}
		e.Done(nil)
		return nil
	}
	acks := []pipeline.AckFunc{e.Ack}
	if s.next != nil {
		acks = pipeline.Split(e.Ack, 2)
	}
	rec := sum.Record(s.stream, s.now())
	if err := s.logs.Export(ctx, pipeline.Batch{Records: []pipeline.Record{rec}, Ack: acks[0]}); err != nil {
		return err
	}
	if s.next == nil {
		return nil
	}
	return s.next.ExportEnvelope(ctx, pipeline.Envelope{Data: e.Data, Ack: acks[1]})
}

func strOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

func intOf(v any) int {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil || n < 0 || n > 1<<31 {
			return 0
		}
		return int(n)
	case float64:
		if x < 0 || x > 1<<31 {
			return 0
		}
		return int(x)
	case int:
		return x
	}
	return 0
}

// cut shortens s to at most n bytes at a UTF-8 boundary, ending with "…" when cut,
// and replaces invalid UTF-8.
func cut(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
