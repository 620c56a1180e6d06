package errorevents

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Unix(1800000000, 0)} }
func cfgWith(f func(*Config)) Config { c := Config{}; f(&c); c.ApplyDefaults(); return c }
func defaults() Config               { return cfgWith(func(*Config) {}) }
func builder(c Config, clk *clock) *Builder {
	return New(c, Grafana{URL: "https://grafana.example.com", TempoDatasourceUID: "tempo", LokiDatasourceUID: "loki"},
		Settings{Resource: map[string]string{"service.name": "shop", "k8s.pod.name": "shop-0"}, Now: clk.now})
}

func TestLimiterBoundsACrashLoop(t *testing.T) {
	clk := newClock()
	l := newLimiter(time.Minute, 5, 100)
	admitted, carried := 0, 0
	// 500 errors per second for 3 minutes.
	for s := 0; s < 180; s++ {
		for range 500 {
			if ok, n := l.admit("fp", clk.now()); ok {
				admitted++
				carried += n
			}
		}
		clk.add(time.Second)
	}
	if admitted != 15 {
		t.Errorf("admitted %d events in 3 windows, want 15 (5 per window)", admitted)
	}
	if want := 180*500 - 15 - (500*60 - 5); carried != want {
		t.Errorf("admitted events carry %d suppressed, want %d (all but the last window's)", carried, want)
	}
}

func TestLimiterGlobalCapAndKeyBound(t *testing.T) {
	clk := newClock()
	l := newLimiter(time.Minute, 5, 20)
	admitted := 0
	for i := range 1000 {
		if ok, _ := l.admit(string(rune('a'+i%50)), clk.now()); ok {
			admitted++
		}
	}
	if admitted != 20 {
		t.Errorf("admitted %d of 50 kinds, want the global cap 20", admitted)
	}
	l = newLimiter(time.Minute, 5, 1000)
	l.maxKeys = 10
	for i := range 100 {
		l.admit(string(rune(i)), clk.now())
	}
	if len(l.entries) > 10 {
		t.Errorf("%d fingerprints remembered, bound 10", len(l.entries))
	}
}

func TestFingerprintStableAcrossVariableParts(t *testing.T) {
	frames := []frameKey{{"main", "main", true}, {"shop/orders", "Place", true}, {"runtime", "gopanic", false}}
	a := fingerprint("panic", "order 123 failed", frames)
	b := fingerprint("panic", "order 456 failed", frames)
	if a != b {
		t.Error("same frames, different message: fingerprints differ")
	}
	if a == fingerprint("panic", "x", frames[:1]) {
		t.Error("different frames: same fingerprint")
	}
	m1 := fingerprint("TimeoutError", `request 8f14e45f-ceea-467f-a0e6-1b2f0f7a9b3c to "db-7" took 3012ms`, nil)
	m2 := fingerprint("TimeoutError", `request 1c2d3e4f-0000-4000-8000-aaaaaaaaaaaa to "db-2" took 15ms`, nil)
	if m1 != m2 {
		t.Errorf("messages differing only in IDs, quotes and numbers: %q vs %q", maskVariable(`request 8f14e45f-ceea-467f-a0e6-1b2f0f7a9b3c to "db-7" took 3012ms`), maskVariable(`request 1c2d3e4f-0000-4000-8000-aaaaaaaaaaaa to "db-2" took 15ms`))
	}
	if m1 == fingerprint("TimeoutError", "connection refused", nil) {
		t.Error("different messages: same fingerprint")
	}
}

func TestLinks(t *testing.T) {
	g := Grafana{URL: "https://g.example.com/", TempoDatasourceUID: "tempo-uid", LokiDatasourceUID: "loki-uid"}
	at := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	l := g.links("4bf92f3577b34da6a3ce929d0e0e4736", "req-1", "shop", at)
	for k, want := range map[string][]string{
		"tempo_trace": {"tempo-uid", "4bf92f3577b34da6a3ce929d0e0e4736", "traceql"},
		"loki_logs":   {"loki-uid", `{service=\"shop\"} | trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"`},
	} {
		u, _ := l[k].(string)
		if !strings.HasPrefix(u, "https://g.example.com/explore?") {
			t.Fatalf("%s = %q", k, u)
		}
		dec, _ := url.QueryUnescape(u)
		for _, w := range want {
			if !strings.Contains(dec, w) {
				t.Errorf("%s: %s lacks %s", k, dec, w)
			}
		}
	}
	if l := g.links("", "req-1", "", at); !strings.Contains(mustUnescape(l["loki_logs"].(string)), `request_id=\"req-1\"`) || l["tempo_trace"] != nil {
		t.Errorf("request-id-only links: %v", l)
	}
	if (Grafana{}).links("x", "y", "z", at) != nil {
		t.Error("links without grafana.url")
	}
}

func mustUnescape(s string) string { u, _ := url.QueryUnescape(s); return u }

const javaTrace = "java.lang.IllegalStateException: inventory out of sync for order 42\n\tat com.shop.Inventory.reserve(Inventory.java:88)\n\tat com.shop.Orders.place(Orders.java:42)\n"

func TestFromLog(t *testing.T) {
	clk := newClock()
	b := builder(defaults(), clk)
	s := pipeline.NewStream(map[string]string{"source": "app"})
	rec := pipeline.Record{Time: clk.now(), Line: javaTrace, Stream: s, Level: pipeline.LevelError,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", RequestID: "req-7"}
	ev, ok := b.FromLog(&rec)
	if !ok {
		t.Fatal("no event from an error record with a Java stack trace")
	}
	if len(ev.Exception) == 0 || ev.Exception[len(ev.Exception)-1].Type == "" || ev.Platform != "java" {
		t.Fatalf("exception %+v platform %q", ev.Exception, ev.Platform)
	}
	if tc := ev.Contexts["trace"]; tc["trace_id"] != rec.TraceID || tc["span_id"] != rec.SpanID {
		t.Errorf("trace context %v", tc)
	}
	if ev.Tags["request_id"] != "req-7" || ev.Tags["k8s.pod.name"] != "shop-0" || ev.Tags["outrider.source"] != "log" {
		t.Errorf("tags %v", ev.Tags)
	}
	if ev.Contexts["grafana"]["tempo_trace"] == nil || len(ev.Fingerprint) != 1 || len(ev.EventID) != 32 {
		t.Errorf("grafana %v fingerprint %v id %q", ev.Contexts["grafana"], ev.Fingerprint, ev.EventID)
	}
	onlyTrace := pipeline.Record{Line: javaTrace, Level: pipeline.LevelError, TraceID: rec.TraceID}
	if ev, ok := b.FromLog(&onlyTrace); !ok || len(ev.Contexts["trace"]["span_id"].(string)) != 16 {
		t.Errorf("a record with a trace ID but no span ID: trace context %v, want a span of its own (Sentry requires one)", ev.Contexts["trace"])
	}
	for _, r := range []pipeline.Record{
		{Line: javaTrace, Level: pipeline.LevelInfo},
		{Line: "payment declined", Level: pipeline.LevelError},
	} {
		if _, ok := b.FromLog(&r); ok {
			t.Errorf("event from %q at %q", r.Line, r.Level)
		}
	}
	off := false
	nb := builder(cfgWith(func(c *Config) { c.FromLogs = &off }), clk)
	if _, ok := nb.FromLog(&rec); ok {
		t.Error("from_logs: false still derives events")
	}
}

type memQueue struct {
	mu  sync.Mutex
	got [][]byte
	err error
}

func (q *memQueue) Append(_ context.Context, e []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.got = append(q.got, append([]byte(nil), e...))
	return nil
}

func TestLogSinkAddsEventIDAndQueuesEnvelope(t *testing.T) {
	clk := newClock()
	b := builder(defaults(), clk)
	q := &memQueue{}
	var passed pipeline.Batch
	next := pipeline.SinkFunc(func(_ context.Context, bt pipeline.Batch) error { passed = bt; return nil })
	sink := NewLogSink(next, func() (*Builder, Appender) { return b, q })
	recs := []pipeline.Record{
		{Line: "GET / 200", Level: pipeline.LevelInfo},
		{Line: javaTrace, Level: pipeline.LevelError, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
	}
	if err := sink.Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if len(q.got) != 1 {
		t.Fatalf("%d envelopes queued, want 1", len(q.got))
	}
	env, err := sentryenv.Parse(q.got[0], sentryenv.Limits{})
	if err != nil || len(env.Items) != 1 || env.Items[0].Type != "event" {
		t.Fatalf("queued envelope: %v %+v", err, env)
	}
	var ev map[string]any
	if err := json.Unmarshal(env.Items[0].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	md := passed.Records[1].Metadata
	if len(md) != 1 || md[0].Name != MetadataEventID || md[0].Value != ev["event_id"] || env.EventID() != ev["event_id"] {
		t.Errorf("record metadata %v, event_id %v, envelope %q", md, ev["event_id"], env.EventID())
	}
	if len(passed.Records[0].Metadata) != 0 {
		t.Error("an info record got an event ID")
	}
}

func TestFromTraces(t *testing.T) {
	clk := newClock()
	b := builder(defaults(), clk)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	tid := pcommon.TraceID{0x4b, 0xf9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	sp := spans.AppendEmpty()
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("POST /pay")
	sp.Status().SetCode(ptrace.StatusCodeError)
	ex := sp.Events().AppendEmpty()
	ex.SetName("exception")
	ex.Attributes().PutStr("exception.type", "ValueError")
	ex.Attributes().PutStr("exception.message", "card declined")
	ex.Attributes().PutStr("exception.stacktrace", "Traceback (most recent call last):\n  File \"/app/pay.py\", line 10, in charge\n    raise ValueError(\"card declined\")\nValueError: card declined\n")
	plain := spans.AppendEmpty()
	plain.SetTraceID(tid)
	plain.SetSpanID(pcommon.SpanID{9, 2, 3, 4, 5, 6, 7, 8})
	plain.SetName("GET /stock")
	plain.Status().SetCode(ptrace.StatusCodeError)
	plain.Status().SetMessage("upstream timeout")
	ok := spans.AppendEmpty()
	ok.SetName("fine")

	evs := b.FromTraces(td)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (an exception event, an error status)", len(evs))
	}
	e0, e1 := evs[0], evs[1]
	last := e0.Exception[len(e0.Exception)-1]
	if last.Type != "ValueError" || last.Value != "card declined" || last.Stacktrace == nil || e0.Transaction != "POST /pay" {
		t.Errorf("exception event: %+v transaction %q", e0.Exception, e0.Transaction)
	}
	if e0.Contexts["trace"]["trace_id"] != tid.String() || e0.Contexts["trace"]["span_id"] != "0102030405060708" || e0.Tags["service.name"] != "checkout" {
		t.Errorf("trace context %v tags %v", e0.Contexts["trace"], e0.Tags)
	}
	if e1.Exception[0].Type != spanErrorType || e1.Exception[0].Value != "upstream timeout" {
		t.Errorf("status error event %+v", e1.Exception)
	}
}

func TestProcessSDKEvent(t *testing.T) {
	clk := newClock()
	b := New(cfgWith(func(c *Config) { c.Environment = "prod"; c.PerWindow = 2 }), Grafana{URL: "https://g", LokiDatasourceUID: "l"},
		Settings{Resource: map[string]string{"k8s.pod.name": "shop-0"}, Redactor: fakeRedactor{"hunter22"}, Now: clk.now})
	raw := `{"event_id":"0123456789abcdef0123456789abcdef","level":"error","environment":"staging",
	  "exception":[{"type":"*errors.errorString","value":"login failed for hunter22","stacktrace":{"frames":[{"function":"main","module":"main","in_app":true}]}}],
	  "contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}},
	  "request":{"headers":{"X-Request-Id":"req-9"}},
	  "tags":{"k8s.pod.name":"app-set"}}`
	var kept int
	for i := range 5 {
		var ev map[string]any
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatal(err)
		}
		if !b.Process(ev) {
			continue
		}
		kept++
		out, _ := json.Marshal(ev)
		s := string(out)
		if strings.Contains(s, "hunter22") {
			t.Errorf("a secret value survived: %s", s)
		}
		tags := ev["tags"].(map[string]any)
		if tags["k8s.pod.name"] != "app-set" || tags["request_id"] != "req-9" || tags["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || tags["outrider.source"] != "sdk" {
			t.Errorf("event %d tags %v", i, tags)
		}
		if ev["environment"] != "staging" {
			t.Errorf("the app's environment was replaced: %v", ev["environment"])
		}
		if ev["contexts"].(map[string]any)["grafana"] == nil {
			t.Error("no grafana links")
		}
	}
	if kept != 2 {
		t.Errorf("kept %d of 5 identical events, want per_window 2", kept)
	}
	clk.add(2 * time.Minute)
	var ev map[string]any
	_ = json.Unmarshal([]byte(raw), &ev)
	if !b.Process(ev) {
		t.Fatal("next window: event held back")
	}
	if n := ev["contexts"].(map[string]any)["outrider"].(map[string]any)["suppressed_events"]; n != 3 {
		t.Errorf("suppressed count %v, want 3", n)
	}
	var tagList map[string]any
	_ = json.Unmarshal([]byte(`{"message":"x","tags":[["a","b"]]}`), &tagList)
	b.Process(tagList)
	if l := tagList["tags"].([]any); len(l) < 3 {
		t.Errorf("tags as pairs not extended: %v", l)
	}
}

type fakeRedactor []string

func (f fakeRedactor) Empty() bool { return len(f) == 0 }
func (f fakeRedactor) Redact(s string) (string, bool) {
	out := s
	for _, v := range f {
		out = strings.ReplaceAll(out, v, "[REDACTED]")
	}
	return out, out != s
}

func TestSampleRate(t *testing.T) {
	clk := newClock()
	half := 0.5
	b := New(cfgWith(func(c *Config) { c.SampleRate = &half; c.PerWindow = 1000; c.MaxPerWindow = 1000 }), Grafana{},
		Settings{Now: clk.now, Rand: func() func() float64 { i := 0; return func() float64 { i++; return float64(i%2) * 0.9 } }()})
	kept := 0
	for range 100 {
		if b.Process(map[string]any{"message": "m"}) {
			kept++
		}
	}
	if kept != 50 {
		t.Errorf("kept %d of 100 at sample_rate 0.5", kept)
	}
}

// linkRange returns the Explore range of a link as times.
func linkRange(t *testing.T, link any) (from, to time.Time) {
	t.Helper()
	s, _ := link.(string)
	u, err := url.Parse(s)
	if err != nil || s == "" {
		t.Fatalf("link %q: %v", s, err)
	}
	var panes map[string]struct {
		Range struct{ From, To string } `json:"range"`
	}
	if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil {
		t.Fatalf("panes of %q: %v", s, err)
	}
	ms := func(v string) time.Time {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatalf("range bound %q is not Unix milliseconds", v)
		}
		return time.UnixMilli(n).UTC()
	}
	return ms(panes["a"].Range.From), ms(panes["a"].Range.To)
}

// TestLinksSpanTheEventTime checks that an event's links open Explore at the event's
// own time ± 15 minutes, whichever path made it and however the SDK wrote its time,
// so an event looked at the next day still shows its trace and logs.
func TestLinksSpanTheEventTime(t *testing.T) {
	clk := newClock() // the agent's clock, far from the events' times
	at := time.Date(2026, 12, 5, 9, 30, 0, 250e6, time.UTC)
	b := builder(defaults(), clk)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	want := func(t *testing.T, links any, at time.Time) {
		t.Helper()
		m, _ := links.(map[string]any)
		if len(m) != 2 {
			t.Fatalf("links %v, want tempo_trace and loki_logs", links)
		}
		for k, l := range m {
			from, to := linkRange(t, l)
			if !from.Equal(at.Add(-15*time.Minute).Truncate(time.Millisecond)) || !to.Equal(at.Add(15*time.Minute).Truncate(time.Millisecond)) {
				t.Errorf("%s range %s – %s, want %s ± 15m", k, from, to, at)
			}
		}
	}
	t.Run("log", func(t *testing.T) {
		rec := pipeline.Record{Time: at, Line: javaTrace, Level: pipeline.LevelError, TraceID: traceID}
		ev, ok := b.FromLog(&rec)
		if !ok {
			t.Fatal("no event")
		}
		want(t, map[string]any(ev.Contexts["grafana"]), at)
	})
	t.Run("span", func(t *testing.T) {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36})
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
		sp.SetName("GET /pay")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Second)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("payment declined")
		evs := b.FromTraces(td)
		if len(evs) != 1 {
			t.Fatalf("%d events from one error span", len(evs))
		}
		want(t, map[string]any(evs[0].Contexts["grafana"]), evs[0].Timestamp)
		if d := evs[0].Timestamp.Sub(at); d < -time.Second || d > 0 {
			t.Errorf("span event time %s, want the span's time %s", evs[0].Timestamp, at)
		}
	})
	for _, tc := range []struct {
		name, ts string // ts is the JSON value of "timestamp", "" for none
		at       time.Time
	}{
		{"unix seconds", `1796463000.25`, at},
		{"unix seconds as a string", `"1796463000.25"`, at},
		{"RFC 3339 with zone", `"2026-12-05T10:30:00.25+01:00"`, at},
		{"RFC 3339 without zone is UTC", `"2026-12-05T09:30:00.25"`, at},
		{"missing: the agent's time", ``, clk.now()},
		{"unreadable: the agent's time", `"yesterday"`, clk.now()},
		{"not a time: the agent's time", `{"t":1}`, clk.now()},
		{"negative: the agent's time", `-5`, clk.now()},
		{"year 9999: the agent's time", `"9999-12-31T23:59:59Z"`, clk.now()},
		{"before 1970: the agent's time", `"1969-07-20T20:17:40Z"`, clk.now()},
	} {
		t.Run("sdk/"+tc.name, func(t *testing.T) {
			raw := `{"event_id":"0123456789abcdef0123456789abcdef","message":"m` + tc.name + `","contexts":{"trace":{"trace_id":"` + traceID + `","span_id":"00f067aa0ba902b7"}}`
			if tc.ts != "" {
				raw += `,"timestamp":` + tc.ts
			}
			raw += `}`
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.UseNumber() // as the Sentry receiver decodes
			var ev map[string]any
			if err := dec.Decode(&ev); err != nil {
				t.Fatal(err)
			}
			if !b.Process(ev) {
				t.Fatal("event left out")
			}
			want(t, ev["contexts"].(map[string]any)["grafana"], tc.at)
		})
	}
}
