package errorevents

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// sdkEnvelope processes raw as the Sentry receiver does and returns the envelope it
// stores, or nil when the event was left out.
func sdkEnvelope(t *testing.T, b *Builder, raw string) []byte {
	t.Helper()
	ev, err := decodeEvent([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !b.Process(ev) {
		return nil
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ev["event_id"].(string)
	return sentryenv.NewEventEnvelope(id, data, b.now())
}

func metadata(r pipeline.Record) map[string]string {
	m := map[string]string{}
	for _, l := range r.Metadata {
		m[l.Name] = l.Value
	}
	return m
}

func TestSummaryOfALogDerivedEvent(t *testing.T) {
	clk := newClock()
	b := builder(defaults(), clk)
	at := clk.now().Add(-3 * time.Second)
	rec := pipeline.Record{Time: at, Line: javaTrace, Level: pipeline.LevelFatal,
		Stream:  pipeline.NewStream(map[string]string{"source": "app"}),
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", RequestID: "req-7"}
	ev, ok := b.FromLog(&rec)
	if !ok {
		t.Fatal("no event")
	}
	env, err := Envelope(ev, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := SummarizeEnvelope(env)
	if !ok {
		t.Fatal("no summary of an event envelope")
	}
	want := Summary{
		EventID: string(ev.EventID), Level: "fatal", Source: SourceLog, Type: "java.lang.IllegalStateException",
		Value: "inventory out of sync for order 42", Platform: "java", Frames: 2, Fingerprint: ev.Fingerprint[0],
		TraceID: rec.TraceID, SpanID: rec.SpanID, RequestID: "req-7",
	}
	if s.EventID != want.EventID || s.Level != want.Level || s.Source != want.Source || s.Type != want.Type ||
		s.Value != want.Value || s.Platform != want.Platform || s.Frames != want.Frames || s.Fingerprint != want.Fingerprint ||
		s.TraceID != want.TraceID || s.SpanID != want.SpanID || s.RequestID != want.RequestID {
		t.Errorf("summary\n%+v\nwant\n%+v", s, want)
	}
	if !strings.Contains(s.Culprit, "Inventory.reserve") || !strings.Contains(s.Culprit, "Inventory.java:88") {
		t.Errorf("culprit %q, want the innermost frame com.shop.Inventory.reserve (Inventory.java:88)", s.Culprit)
	}
	if s.Links["tempo_trace"] == "" || s.Links["loki_logs"] == "" {
		t.Errorf("links %v, want the event's Grafana links", s.Links)
	}

	stream := pipeline.NewStream(map[string]string{"service": "shop", "source": LokiSource})
	r := s.Record(stream, clk.now())
	if !r.Time.Equal(at) || r.Level != pipeline.LevelFatal || r.Stream != stream ||
		r.TraceID != rec.TraceID || r.SpanID != rec.SpanID || r.RequestID != "req-7" {
		t.Errorf("record %+v", r)
	}
	md := metadata(r)
	if md[MetadataEventID] != want.EventID || md[MetadataExceptionType] != want.Type || md[MetadataFingerprint] != want.Fingerprint || len(md) != 3 {
		t.Errorf("structured metadata %v", md)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(r.Line), &line); err != nil {
		t.Fatalf("line is not JSON: %v\n%s", err, r.Line)
	}
	if line["event_id"] != want.EventID || line["type"] != want.Type || line["frames"] != 2.0 || line["fingerprint"] != want.Fingerprint {
		t.Errorf("line %s", r.Line)
	}
	if strings.Contains(r.Line, "\n") {
		t.Errorf("line spans several lines: %q", r.Line)
	}
}

func TestSummaryOfSDKEvents(t *testing.T) {
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name  string
		raw   string
		check func(t *testing.T, s Summary, r pipeline.Record)
	}{
		{"sentry-go exception list", `{"event_id":"0123456789abcdef0123456789abcdef","level":"error","platform":"go","timestamp":"2027-01-15T08:00:00Z",
		  "exception":[{"type":"*errors.errorString","value":"card expired","stacktrace":{"frames":[
		    {"function":"main","module":"main","filename":"main.go","lineno":10,"in_app":true},
		    {"function":"charge","module":"shop/pay","filename":"pay.go","lineno":42,"in_app":true},
		    {"function":"Do","module":"net/http","filename":"client.go","lineno":600}]}}],
		  "contexts":{"trace":{"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":"00f067aa0ba902b7"}},
		  "tags":{"request_id":"req-1"}}`,
			func(t *testing.T, s Summary, r pipeline.Record) {
				if s.EventID != "0123456789abcdef0123456789abcdef" || s.Type != "*errors.errorString" || s.Value != "card expired" || s.Frames != 3 {
					t.Errorf("summary %+v", s)
				}
				if s.Culprit != "shop/pay.charge (pay.go:42)" {
					t.Errorf("culprit %q, want the innermost in-app frame", s.Culprit)
				}
				if r.TraceID != tid || r.SpanID != "00f067aa0ba902b7" || r.RequestID != "req-1" || s.Source != SourceSDK {
					t.Errorf("ids %q %q %q source %q", r.TraceID, r.SpanID, r.RequestID, s.Source)
				}
				if !r.Time.Equal(time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)) {
					t.Errorf("time %v, want the event's", r.Time)
				}
			}},
		{"exception values object, tags as pairs, warning", `{"event_id":"11111111111111111111111111111111","level":"warning",
		  "exception":{"values":[{"type":"ValueError","value":"bad"}]},"tags":[["request_id","req-2"],["trace_id","` + tid + `"]]}`,
			func(t *testing.T, s Summary, r pipeline.Record) {
				if s.Type != "ValueError" || r.RequestID != "req-2" || r.TraceID != tid || r.SpanID != "" || r.Level != pipeline.LevelWarn || s.Level != "warning" {
					t.Errorf("summary %+v record level %q", s, r.Level)
				}
			}},
		{"message only, no level", `{"event_id":"22222222222222222222222222222222","message":{"formatted":"disk almost full"},"culprit":"cleanup"}`,
			func(t *testing.T, s Summary, r pipeline.Record) {
				if s.Message != "disk almost full" || s.Culprit != "cleanup" || s.Type != "" || r.Level != pipeline.LevelError {
					t.Errorf("summary %+v level %q", s, r.Level)
				}
				if _, has := metadata(r)[MetadataExceptionType]; has {
					t.Error("exception_type metadata on an event without an exception")
				}
			}},
		{"the app's fingerprint", `{"event_id":"33333333333333333333333333333333","fingerprint":["db","timeout"],"message":"x"}`,
			func(t *testing.T, s Summary, _ pipeline.Record) {
				if want := fingerprint("app", "db\x00timeout", nil); s.Fingerprint != want {
					t.Errorf("fingerprint %q, want the limiter's key %q", s.Fingerprint, want)
				}
			}},
		{"invalid ids are left out", `{"event_id":"44444444444444444444444444444444","contexts":{"trace":{"trace_id":"xyz","span_id":"00f067aa0ba902b7"}},"tags":{"trace_id":"00000000000000000000000000000000"}}`,
			func(t *testing.T, s Summary, r pipeline.Record) {
				if r.TraceID != "" || r.SpanID != "" {
					t.Errorf("trace %q span %q, want none", r.TraceID, r.SpanID)
				}
			}},
		{"a time far ahead is the agent's", `{"event_id":"55555555555555555555555555555555","timestamp":"2090-01-01T00:00:00Z"}`,
			func(t *testing.T, _ Summary, r pipeline.Record) {
				if !r.Time.Equal(time.Unix(1800000000, 0)) {
					t.Errorf("time %v, want the agent's (Loki refuses lines from the future)", r.Time)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			b := builder(defaults(), clk)
			env := sdkEnvelope(t, b, tt.raw)
			s, ok := SummarizeEnvelope(env)
			if !ok {
				t.Fatal("no summary")
			}
			ev, _ := decodeEvent([]byte(tt.raw))
			b2 := builder(defaults(), clk)
			b2.Process(ev)
			if s.Fingerprint != sdkFingerprint(ev) {
				t.Errorf("fingerprint %q, the limiter used %q", s.Fingerprint, sdkFingerprint(ev))
			}
			r := s.Record(pipeline.NewStream(map[string]string{"source": LokiSource}), clk.now())
			if md := metadata(r); md[MetadataEventID] != s.EventID || s.EventID == "" {
				t.Errorf("sentry_event_id %q, event %q", md[MetadataEventID], s.EventID)
			}
			if !json.Valid([]byte(r.Line)) {
				t.Errorf("line is not JSON: %s", r.Line)
			}
			tt.check(t, s, r)
		})
	}
}

// TestSummaryCarriesTheSuppressedCount: the limiter holds events back as for Sentry;
// they get no line, and the next line sent says how many it stands for.
func TestSummaryCarriesTheSuppressedCount(t *testing.T) {
	clk := newClock()
	b := builder(cfgWith(func(c *Config) { c.PerWindow = 1; c.Window = time.Minute }), clk)
	var lines []Summary
	for i := range 4 {
		rec := pipeline.Record{Time: clk.now(), Line: javaTrace, Level: pipeline.LevelError}
		if ev, ok := b.FromLog(&rec); ok {
			env, _ := Envelope(ev, clk.now())
			s, _ := SummarizeEnvelope(env)
			lines = append(lines, s)
		}
		if i == 2 {
			clk.add(time.Minute)
		}
	}
	if len(lines) != 2 || lines[0].Suppressed != 0 || lines[1].Suppressed != 2 {
		t.Fatalf("summaries %+v, want 2 lines, the second with suppressed 2", lines)
	}
	if !strings.Contains(lines[1].Line(), `"suppressed":2`) {
		t.Errorf("line %s lacks the suppressed count", lines[1].Line())
	}
}

func TestSummaryBoundsItsFields(t *testing.T) {
	long := strings.Repeat("é", 5000) // 2 bytes each
	ev := map[string]any{
		"event_id": "66666666666666666666666666666666", "message": long, "release": long,
		"exception": []any{map[string]any{"type": long, "value": "bad \xff utf-8 " + long}},
		"tags":      map[string]any{"request_id": long},
	}
	s := Summarize(ev)
	line := s.Line()
	if !utf8.ValidString(line) || !json.Valid([]byte(line)) {
		t.Fatalf("line not valid UTF-8 JSON: %.200q", line)
	}
	for name, v := range map[string]string{"type": s.Type, "release": s.Release, "request_id": s.RequestID} {
		if len(v) > maxSummaryShort || !strings.HasSuffix(v, "…") {
			t.Errorf("%s: %d bytes, want at most %d ending in …", name, len(v), maxSummaryShort)
		}
	}
	for name, v := range map[string]string{"value": s.Value, "message": s.Message} {
		if len(v) > maxSummaryText || !strings.HasSuffix(v, "…") {
			t.Errorf("%s: %d bytes, want at most %d ending in …", name, len(v), maxSummaryText)
		}
	}
	if len(line) > 4*maxSummaryText {
		t.Errorf("line of %d bytes from a large event", len(line))
	}
}

func TestSummarizeEnvelopeWithoutAnEvent(t *testing.T) {
	env := sentryenv.Envelope{Header: map[string]any{"event_id": "77777777777777777777777777777777"},
		Items: []sentryenv.Item{{Type: "transaction", Payload: []byte(`{"type":"transaction"}`)}}}
	if _, ok := SummarizeEnvelope(env.Marshal()); ok {
		t.Error("a summary of an envelope without an event")
	}
	env.Items = []sentryenv.Item{{Type: "event", Payload: []byte(`[1,2]`)}}
	s, ok := SummarizeEnvelope(env.Marshal())
	if !ok || s.EventID != "77777777777777777777777777777777" || s.Level != "error" {
		t.Errorf("an event that is not an object: %+v %v, want a line with the envelope's event ID", s, ok)
	}
}

// recordingSinks stand for the Loki exporter and the Sentry exporter: they keep what
// they are given and acknowledge when told.
type recordingSinks struct {
	mu        sync.Mutex
	batches   []pipeline.Batch
	envelopes []pipeline.Envelope
	logsErr   error
}

func (r *recordingSinks) Export(_ context.Context, b pipeline.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logsErr != nil {
		return r.logsErr
	}
	r.batches = append(r.batches, b)
	return nil
}

func (r *recordingSinks) ExportEnvelope(_ context.Context, e pipeline.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.envelopes = append(r.envelopes, e)
	return nil
}

func TestLokiSinkAcknowledgesOnceBothHaveIt(t *testing.T) {
	clk := newClock()
	b := builder(defaults(), clk)
	ev, _ := b.FromLog(&pipeline.Record{Line: javaTrace, Level: pipeline.LevelError})
	env, _ := Envelope(ev, clk.now())
	noEvent := (&sentryenv.Envelope{Header: map[string]any{}, Items: []sentryenv.Item{{Type: "session", Payload: []byte(`{}`)}}}).Marshal()
	labels := map[string]string{"service": "shop", "namespace": "prod", "source": "overridden"}

	tests := []struct {
		name       string
		withSentry bool
		data       []byte
		order      []string // acknowledge "loki", "sentry" in this order
		lines      int
		ackAfter   int // acks before the envelope is acknowledged (-1: at once)
	}{
		{"both, loki first", true, env, []string{"loki", "sentry"}, 1, 2},
		{"both, sentry first", true, env, []string{"sentry", "loki"}, 1, 2},
		{"loki only", false, env, []string{"loki"}, 1, 1},
		{"no event, both", true, noEvent, []string{"sentry"}, 0, 1},
		{"no event, loki only", false, noEvent, nil, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingSinks{}
			var next pipeline.EnvelopeSink
			if tt.withSentry {
				next = rec
			}
			s := NewLokiSink(rec, next, labels)
			acked := 0
			if err := s.ExportEnvelope(context.Background(), pipeline.Envelope{Data: tt.data, Ack: func(error) { acked++ }}); err != nil {
				t.Fatal(err)
			}
			lines := 0
			for _, bt := range rec.batches {
				lines += len(bt.Records)
				for _, r := range bt.Records {
					if r.Stream.Get("source") != LokiSource || r.Stream.Get("service") != "shop" || r.Stream.Get("namespace") != "prod" {
						t.Errorf("stream %v", r.Stream.Labels)
					}
					if metadata(r)[MetadataEventID] != string(ev.EventID) {
						t.Errorf("sentry_event_id %q, want %q", metadata(r)[MetadataEventID], ev.EventID)
					}
				}
			}
			if lines != tt.lines {
				t.Fatalf("%d lines, want %d", lines, tt.lines)
			}
			if tt.withSentry && (len(rec.envelopes) != 1 || string(rec.envelopes[0].Data) != string(tt.data)) {
				t.Fatalf("Sentry got %d envelopes, want the one unchanged", len(rec.envelopes))
			}
			if tt.ackAfter < 0 {
				if acked != 1 {
					t.Errorf("acknowledged %d times, want once at once", acked)
				}
				return
			}
			for i, who := range tt.order {
				if acked != 0 {
					t.Fatalf("acknowledged after %d of %d parts", i, tt.ackAfter)
				}
				if who == "loki" {
					rec.batches[0].Done(nil)
				} else {
					rec.envelopes[0].Done(nil)
				}
			}
			if acked != 1 {
				t.Errorf("acknowledged %d times, want once", acked)
			}
		})
	}
}

func TestLokiSinkRefusedByLokiPassesNothingOn(t *testing.T) {
	clk := newClock()
	b := builder(defaults(), clk)
	ev, _ := b.FromLog(&pipeline.Record{Line: javaTrace, Level: pipeline.LevelError})
	env, _ := Envelope(ev, clk.now())
	closed := errors.New("exporter closed")
	rec := &recordingSinks{logsErr: closed}
	err := NewLokiSink(rec, rec, nil).ExportEnvelope(context.Background(), pipeline.Envelope{Data: env, Ack: func(error) { t.Error("acknowledged") }})
	if !errors.Is(err, closed) || len(rec.envelopes) != 0 {
		t.Errorf("error %v, %d envelopes passed on; want the log sink's error and none (the entry stays queued)", err, len(rec.envelopes))
	}
}

// FuzzSummarizeEnvelope feeds any event payload (what an SDK may send, after the
// receiver's checks or not) to the summary: it never panics, and the line is one line
// of valid UTF-8 JSON within its bounds.
func FuzzSummarizeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"0123456789abcdef0123456789abcdef","exception":[{"type":"E","value":"v","stacktrace":{"frames":[{"function":"f","in_app":true,"lineno":3}]}}]}`,
		`{"exception":{"values":[null,{"stacktrace":{"frames":[null,1,{"lineno":-1}]}}]},"tags":[["a"],["request_id",1]]}`,
		`{"message":{"formatted":7},"logentry":{"message":"m"},"contexts":{"outrider":{"suppressed_events":1e99},"trace":[]}}`,
		`{"fingerprint":[1,null],"contexts":{"grafana":{"tempo_trace":"x"}},"timestamp":"2026-01-01T00:00:00Z"}`,
		`[]`, `"x"`, `{"a":1} {"b":2}`, "{\"message\":\"\xff\xfe\n\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		env := (&sentryenv.Envelope{Header: map[string]any{"event_id": "0123456789abcdef0123456789abcdef"},
			Items: []sentryenv.Item{{Type: "event", Payload: payload}}}).Marshal()
		s, ok := SummarizeEnvelope(env)
		if !ok {
			t.Fatal("no summary of an event envelope")
		}
		r := s.Record(pipeline.NewStream(nil), time.Now())
		if !utf8.ValidString(r.Line) || !json.Valid([]byte(r.Line)) || strings.Contains(r.Line, "\n") {
			t.Fatalf("line %q", r.Line)
		}
		if r.TraceID != "" && !pipeline.ValidTraceID(r.TraceID) || r.SpanID != "" && !pipeline.ValidSpanID(r.SpanID) {
			t.Fatalf("ids %q %q", r.TraceID, r.SpanID)
		}
		for _, m := range r.Metadata {
			if !utf8.ValidString(m.Value) {
				t.Fatalf("metadata %q", m.Value)
			}
		}
	})
}
