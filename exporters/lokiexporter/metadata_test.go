package lokiexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/pipeline"
)

const (
	testTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	testSpan  = "00f067aa0ba902b7"
	testEvent = "9ec79c33ec9942ab8353589fcb2e04dc"
)

func TestLineWithIDs(t *testing.T) {
	event := []pipeline.Label{{Name: "filename", Value: "/var/log/app.log"}, {Name: MetaEventID, Value: testEvent}}
	for _, tc := range []struct {
		name string
		rec  pipeline.Record
		want string
	}{
		{"no ids", pipeline.Record{Line: "plain", Metadata: []pipeline.Label{{Name: "filename", Value: "/x"}}}, "plain"},
		{"plain", pipeline.Record{Line: "GET / 200", TraceID: testTrace, SpanID: testSpan},
			"GET / 200 trace_id=" + testTrace + " span_id=" + testSpan},
		{"all four in order", pipeline.Record{Line: "boom", TraceID: testTrace, SpanID: testSpan, RequestID: "r-1", Metadata: event},
			"boom trace_id=" + testTrace + " span_id=" + testSpan + " request_id=r-1 sentry_event_id=" + testEvent},
		{"request id quoted", pipeline.Record{Line: "x", RequestID: `a b="c"`}, `x request_id="a b=\"c\""`},
		{"already in the line", pipeline.Record{Line: "msg trace_id=" + testTrace, TraceID: testTrace, SpanID: testSpan},
			"msg trace_id=" + testTrace + " span_id=" + testSpan},
		{"trace: first line", pipeline.Record{Line: "ERROR failed\nTraceback (most recent call last):\n  File \"a.py\", line 1", TraceID: testTrace},
			"ERROR failed trace_id=" + testTrace + "\nTraceback (most recent call last):\n  File \"a.py\", line 1"},
		{"json", pipeline.Record{Line: `{"level":"info","msg":"hi"}`, TraceID: testTrace},
			`{"level":"info","msg":"hi","trace_id":"` + testTrace + `"}`},
		{"json with spaces", pipeline.Record{Line: ` { "msg": "hi" } `, SpanID: testSpan},
			` { "msg": "hi" ,"span_id":"` + testSpan + `"} `},
		{"empty json", pipeline.Record{Line: `{}`, RequestID: "r\"1"}, `{"request_id":"r\"1"}`},
		{"json key already there", pipeline.Record{Line: `{"traceId":"` + testTrace + `"}`, TraceID: testTrace, SpanID: testSpan},
			`{"traceId":"` + testTrace + `","span_id":"` + testSpan + `"}`},
		{"not json: braces only", pipeline.Record{Line: `{not json}`, TraceID: testTrace}, `{not json} trace_id=` + testTrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lineWithIDs(&tc.rec)
			if got != tc.want {
				t.Errorf("lineWithIDs = %q\nwant           %q", got, tc.want)
			}
			if json.Valid([]byte(tc.rec.Line)) && !json.Valid([]byte(got)) {
				t.Errorf("a JSON line became invalid JSON: %q", got)
			}
		})
	}
}

// FuzzLineWithIDs: whatever the line, the result keeps it (the IDs go only after its
// first line or before its closing brace), holds every ID, and a JSON object stays
// valid JSON with the same keys plus the IDs.
func FuzzLineWithIDs(f *testing.F) {
	for _, s := range []string{"plain", `{"a":1}`, "{}", " {\"x\":\"}\"} ", "a\nb", "{\n\"a\":\"b\"\n}", "{\"a\":1}}", ""} {
		f.Add(s, "r-1")
	}
	f.Fuzz(func(t *testing.T, line, requestID string) {
		line = strings.ToValidUTF8(line, "?")
		requestID = strings.ToValidUTF8(requestID, "?")
		r := pipeline.Record{Line: line, TraceID: testTrace, SpanID: testSpan, RequestID: requestID}
		got := lineWithIDs(&r)
		for _, id := range []string{testTrace, testSpan} {
			if !strings.Contains(got, id) {
				t.Fatalf("%q lost id %s", got, id)
			}
		}
		var before map[string]any
		if json.Unmarshal([]byte(line), &before) == nil && before != nil {
			var after map[string]any
			if err := json.Unmarshal([]byte(got), &after); err != nil {
				t.Fatalf("JSON object %q became %q: %v", line, got, err)
			}
			for k := range before {
				if _, ok := after[k]; !ok {
					t.Fatalf("key %q lost: %q", k, got)
				}
			}
			return
		}
		first, rest, multi := strings.Cut(line, "\n")
		if !strings.HasPrefix(got, first) || (multi && !strings.HasSuffix(got, "\n"+rest)) {
			t.Fatalf("%q does not keep %q", got, line)
		}
	})
}

// TestResendFailsThenRetried injects what a real Loki cannot be made to do on cue: it
// refuses structured metadata (storing the entry without any), then fails the resend
// with a 503. The retry sends the whole request without structured metadata; nothing
// is dropped and the acknowledgement waits for it.
func TestResendFailsThenRetried(t *testing.T) {
	disallowed := "stream '{service=\"api\"}' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it."
	loki := newFakeLoki(t, func(call int, _ *http.Request) (int, map[string]string, string) {
		switch call {
		case 1:
			return http.StatusBadRequest, nil, disallowed
		case 2:
			return http.StatusServiceUnavailable, nil, "ingester unavailable"
		}
		return http.StatusNoContent, nil, ""
	}).start()
	h := newHarness(t, testConfig(loki.srv.URL))
	s := pipeline.NewStream(map[string]string{"service": "api"})
	recs := []pipeline.Record{
		{Stream: s, Line: "with id", TraceID: testTrace},
		{Stream: s, Line: "without"},
	}
	a := exportertest.NewAcks()
	if err := h.exp.Export(context.Background(), pipeline.Batch{Records: recs, Ack: a.Func(1)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(t, 1); err != nil {
		t.Fatalf("ack: %v", err)
	}
	calls := loki.calls()
	if len(calls) != 3 {
		t.Fatalf("%d pushes, want 3 (refused, resend failed, retry)", len(calls))
	}
	want := [][]string{{"with id", "without"}, {"with id trace_id=" + testTrace}, {"with id trace_id=" + testTrace, "without"}}
	for i, c := range calls {
		if got := lines([]received{c}); !slices.Equal(got, want[i]) {
			t.Errorf("push %d sent %q, want %q", i+1, got, want[i])
		}
		for _, st := range c.req.Streams {
			for _, e := range st.Entries {
				if len(e.StructuredMetadata) > 0 && i > 0 {
					t.Errorf("push %d: %q carries structured metadata", i+1, e.Line)
				}
			}
		}
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", nil); v != 0 {
		t.Errorf("dropped %v", v)
	}
}
