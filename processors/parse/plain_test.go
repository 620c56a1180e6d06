package parse

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestPlain(t *testing.T) {
	e, w, i := pipeline.LevelError, pipeline.LevelWarn, pipeline.LevelInfo
	runLines(t, mustNew(t, Config{Format: FormatPlain}), []lineCase{
		{"bare upper-case level", "something ERROR happened", fields{Level: e}},
		{"three-letter level", "12:00 WRN slow", fields{Level: w}},
		{"bracketed any case", "[Warning] disk", fields{Level: w}},
		{"bracketed lower case", "x [error] y", fields{Level: e}},
		{"capitalised with colon", "Error: boom", fields{Level: e}},
		{"capitalised without colon", "Error boom", fields{}},
		{"lower-case bare word", "an error happened", fields{}},
		{"unknown bracketed word", "[main] started", fields{}},
		{"glued to digits", "INFO1 x 2ERROR", fields{}},
		{"single letters", "E I W", fields{}},
		{"first level word wins", "INFO then ERROR", fields{Level: i}},
		{"beyond 8 words", "a b c d e f g h ERROR", fields{}},
		{"word 8", "a b c d e f g ERROR", fields{Level: e}},
		{"level= wins over word", "ERROR level=info", fields{Level: i}},
		{"level= with bad value falls back to word", "ERROR level=shiny", fields{Level: e}},
		{"python", "WARNING:urllib3:retrying", fields{Level: w}},
		{"klog warning", "W0102 15:04:05.1 1 x.go:1] y", fields{Level: w}},
		{"klog only first word", "x I0102", fields{}},
		{"key=value ids", "done trace_id=" + tid + ", span_id=" + sid + "; request_id=r-1)", fields{Trace: tid, Span: sid, Req: "r-1"}},
		{"quoted value", `done request_id="a b" x`, fields{Req: "a b"}},
		{"unterminated quoted value", `done request_id="a b`, fields{}},
		{"key glued to other text is another key", "xtrace_id=" + tid, fields{}},
		{"key after punctuation", "(trace_id=" + tid + ")", fields{Trace: tid}},
		{"invalid id", "trace_id=nothex", fields{}},
		{"uppercase id normalised", "trace_id=" + strings.ToUpper(tid), fields{Trace: tid}},
		{"traceparent anywhere", "GET / " + tp + " 200", fields{Trace: tid, Span: sid}},
		{"traceparent key", "traceparent=" + tp, fields{Trace: tid, Span: sid}},
		{"trace_id wins over traceparent", "trace_id=" + strings.Repeat("ab", 16) + " " + tp, fields{Trace: strings.Repeat("ab", 16)}},
		{"leading time", "2024-01-02 15:04:05.250 started", fields{Time: "2024-01-02T15:04:05.25Z"}},
		{"leading time in brackets", "[2024-01-02T15:04:05+02:00] started", fields{Time: "2024-01-02T13:04:05Z"}},
		{"leading time glued to text", "2024-01-02 15:04:05x started", fields{}},
		{"time not leading", "at 2024-01-02 15:04:05", fields{}},
		{"leading time wins over ts=", "2024-01-02 15:04:05 ts=1704207800", fields{Time: "2024-01-02T15:04:05Z"}},
		{"ts= used without leading time", "started ts=1704207845", fields{Time: "2024-01-02T15:04:05Z"}},
	})
}

func TestParseKeepsFieldsNotFound(t *testing.T) {
	for _, format := range []string{FormatAuto, FormatJSON, FormatLogfmt, FormatPlain} {
		t.Run(format, func(t *testing.T) {
			p := mustNew(t, Config{Format: format})
			r := pipeline.Record{Level: pipeline.LevelWarn, TraceID: tid, SpanID: sid, RequestID: "keep"}
			for _, line := range []string{"nothing here", `{"msg":"x"}`, "msg=x other=y", `{"level":`, ""} {
				p.Parse(line, &r)
			}
			if r.Level != pipeline.LevelWarn || r.TraceID != tid || r.SpanID != sid || r.RequestID != "keep" || !r.Time.IsZero() {
				t.Errorf("fields changed: %+v", r)
			}
		})
	}
}
