package parse

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestJSON(t *testing.T) {
	upperTid := strings.ToUpper(tid)
	uuid := tid[:8] + "-" + tid[8:12] + "-" + tid[12:16] + "-" + tid[16:20] + "-" + tid[20:]
	cases := []lineCase{
		{"all fields", `{"level":"error","time":"2024-01-02T15:04:05.123Z","trace_id":"` + tid + `","span_id":"` + sid + `","request_id":"req-1","msg":"boom"}`,
			fields{pipeline.LevelError, "2024-01-02T15:04:05.123Z", tid, sid, "req-1"}},
		{"whitespace everywhere", " \t{ \"level\" :\n\"warn\" ,\r\n \"msg\" : \"x\" } ",
			fields{Level: pipeline.LevelWarn}},
		{"empty object", `{}`, fields{}},
		{"numeric level", `{"level":50,"msg":"x"}`, fields{Level: pipeline.LevelError}},
		{"numeric level not known", `{"level":35}`, fields{}},
		{"float level not known", `{"level":30.0}`, fields{}},
		{"level is an object, next name used", `{"level":{"x":1},"severity":"WARNING"}`, fields{Level: pipeline.LevelWarn}},
		{"priority: level before lvl", `{"lvl":"debug","level":"error"}`, fields{Level: pipeline.LevelError}},
		{"unknown first name falls through", `{"level":"verbose-ish","lvl":"info"}`, fields{Level: pipeline.LevelInfo}},
		{"escaped level", `{"level":"\u0065rror"}`, fields{Level: pipeline.LevelError}},
		{"escaped key", `{"lev\u0065l":"error"}`, fields{Level: pipeline.LevelError}},
		{"key with escaped quote does not match", `{"level\"":"error"}`, fields{}},
		{"nested values skipped", `{"a":{"level":"error","b":[1,{"c":"]}"}]},"arr":[[],{}],"t2":true,"f":false,"n":null,"num":-1.5e+3,"level":"info"}`,
			fields{Level: pipeline.LevelInfo}},
		{"nested level not taken", `{"ctx":{"level":"error"}}`, fields{}},
		{"uppercase trace id lowercased", `{"trace_id":"` + upperTid + `"}`, fields{Trace: tid}},
		{"uuid trace id", `{"traceId":"` + uuid + `"}`, fields{Trace: tid}},
		{"escaped trace id", `{"trace_id":"\u0034` + tid[1:] + `"}`, fields{Trace: tid}},
		{"invalid trace id", `{"trace_id":"xyz","span_id":"nothex!!nothex!!"}`, fields{}},
		{"all-zero trace id", `{"trace_id":"` + strings.Repeat("0", 32) + `"}`, fields{}},
		{"numeric trace id ignored", `{"trace_id":12345678901234567890123456789012}`, fields{}},
		{"invalid first trace name falls through", `{"trace_id":"nope","traceId":"` + tid + `"}`, fields{Trace: tid}},
		{"camel case ids", `{"traceId":"` + tid + `","spanId":"` + sid + `","requestId":"abc"}`, fields{Trace: tid, Span: sid, Req: "abc"}},
		{"traceparent fills both", `{"traceparent":"` + tp + `"}`, fields{Trace: tid, Span: sid}},
		{"trace_id wins over traceparent", `{"traceparent":"00-` + strings.Repeat("ab", 16) + `-` + sid + `-01","trace_id":"` + tid + `"}`, fields{Trace: tid}},
		{"traceparent span used when trace ids agree", `{"trace_id":"` + tid + `","traceparent":"` + tp + `"}`, fields{Trace: tid, Span: sid}},
		{"span_id wins over traceparent", `{"span_id":"` + strings.Repeat("12", 8) + `","traceparent":"` + tp + `"}`, fields{Trace: tid, Span: strings.Repeat("12", 8)}},
		{"invalid traceparent", `{"traceparent":"00-` + tid + `-` + sid + `"}`, fields{}},
		{"numeric request id", `{"req_id":12345}`, fields{Req: "12345"}},
		{"request id with unicode escape", `{"request_id":"caf\u00e9"}`, fields{Req: "café"}},
		{"request id with surrogate pair", `{"request_id":"\ud83d\ude00x"}`, fields{Req: "😀x"}},
		{"request id with lone surrogate", `{"request_id":"\ud83dx"}`, fields{Req: "\ufffdx"}},
		{"request id with control character", `{"request_id":"a\nb"}`, fields{}},
		{"request id too long", `{"request_id":"` + strings.Repeat("r", 129) + `"}`, fields{}},
		{"request id empty falls through", `{"request_id":"","x_request_id":"r2"}`, fields{Req: "r2"}},
		{"request id with escaped slash", `{"request_id":"a\/b"}`, fields{Req: "a/b"}},
		{"duplicate key: last wins", `{"level":"info","level":"error"}`, fields{Level: pipeline.LevelError}},
		{"duplicate key: last unusable wins", `{"level":"error","level":[1]}`, fields{}},
		{"dotted literal key", `{"log.level":"warn","trace.id":"` + tid + `","span.id":"` + sid + `"}`, fields{Level: pipeline.LevelWarn, Trace: tid, Span: sid}},
		{"dotted nested", `{"log":{"level":"warn","logger":"x"},"trace":{"id":"` + tid + `"},"span":{"id":"` + sid + `"}}`, fields{Level: pipeline.LevelWarn, Trace: tid, Span: sid}},
		{"dotted literal before nested", `{"trace":{"id":"` + strings.Repeat("ab", 16) + `"},"trace.id":"` + tid + `"}`, fields{Trace: tid}},
		{"dotted nested used when literal unusable", `{"trace.id":"bad","trace":{"id":"` + tid + `"}}`, fields{Trace: tid}},
		{"duplicate parent replaces nested", `{"trace":{"id":"` + tid + `"},"trace":{"other":1}}`, fields{}},
		{"duplicate parent non-object replaces nested", `{"trace":{"id":"` + tid + `"},"trace":"x"}`, fields{}},
		{"nested http.request_id", `{"http":{"method":"GET","request_id":"r-9"}}`, fields{Req: "r-9"}},
		{"bunyan", `{"name":"app","hostname":"h","pid":1,"level":30,"msg":"hi","time":"2024-01-02T15:04:05.123Z","v":0}`,
			fields{Level: pipeline.LevelInfo, Time: "2024-01-02T15:04:05.123Z"}},
		{"unix seconds float", `{"ts":1704207845.5}`, fields{Time: "2024-01-02T15:04:05.5Z"}},
		{"unix ms", `{"time":1704207845123}`, fields{Time: "2024-01-02T15:04:05.123Z"}},
		{"unix ns string", `{"timestamp":"1704207845123456789"}`, fields{Time: "2024-01-02T15:04:05.123456789Z"}},
		{"unix exponent", `{"ts":1.7042078455e9}`, fields{Time: "2024-01-02T15:04:05.5Z"}},
		{"time out of range", `{"time":"2300-01-01T00:00:00Z","ts":"2024-01-02T15:04:05Z"}`, fields{Time: "2024-01-02T15:04:05Z"}},
		{"negative time", `{"time":-5}`, fields{}},

		// Malformed input: members completed before the error are used.
		{"truncated after a member", `{"level":"error","trace_id":"` + tid[:20], fields{Level: pipeline.LevelError}},
		{"truncated value", `{"trace_id":"` + tid, fields{}},
		{"missing colon", `{"level" "error"}`, fields{}},
		{"missing comma", `{"level":"error" "span_id":"` + sid + `"}`, fields{}},
		{"bad escape", `{"request_id":"a\qb","level":"info"}`, fields{}},
		{"raw control character", "{\"request_id\":\"a\x01b\"}", fields{}},
		{"bad number", `{"level":30x}`, fields{}},
		{"bad literal", `{"level":"info","x":tru}`, fields{Level: pipeline.LevelInfo}},
		{"mismatched brackets", `{"a":[1,2},"level":"info"}`, fields{}},
		{"unterminated nested", `{"level":"warn","a":[{"b":"c"}`, fields{Level: pipeline.LevelWarn}},
		{"trailing garbage", `{"level":"info"} level=error`, fields{Level: pipeline.LevelInfo}},
		{"deep nesting", `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"level":"info"}`, fields{Level: pipeline.LevelInfo}},
		{"deep nesting mismatched", `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 99) + `},"level":"info"}`, fields{}},
	}
	runLines(t, mustNew(t, Config{Format: FormatJSON}), cases)
	t.Run("auto", func(t *testing.T) {
		runLines(t, mustNew(t, Config{}), cases)
	})
}

func TestJSONNotAnObject(t *testing.T) {
	p := mustNew(t, Config{Format: FormatJSON})
	for _, line := range []string{"", "level=error", `["level","error"]`, `{level: "error"}`, `"{}"`} {
		if got := parsed(p, line); got != (fields{}) {
			t.Errorf("Parse(%q) = %+v, want nothing", line, got)
		}
	}
}

func TestJSONCustomFields(t *testing.T) {
	p := mustNew(t, Config{
		Format:           FormatJSON,
		LevelField:       "sev",
		TimeField:        "event.created",
		TraceIDField:     "ctx.trace.id",
		SpanIDField:      "dd.span",
		RequestIDField:   "http.headers.x-request-id",
		TraceparentField: "w3c",
	})
	runLines(t, p, []lineCase{
		{"defaults not tried", `{"level":"error","time":"2024-01-02T15:04:05Z","trace_id":"` + tid + `","request_id":"r"}`, fields{}},
		{"custom names", `{"sev":"E","event":{"created":"2024-01-02T15:04:05Z"},"ctx":{"trace":{"id":"` + tid + `"}},"dd":{"span":"` + sid + `"},"http":{"headers":{"x-request-id":"r1"}}}`,
			fields{pipeline.LevelError, "2024-01-02T15:04:05Z", tid, sid, "r1"}},
		{"every split of a 2-dot name", `{"ctx.trace":{"id":"` + tid + `"}}`, fields{Trace: tid}},
		{"split after first dot", `{"ctx":{"trace.id":"` + tid + `"}}`, fields{Trace: tid}},
		{"literal 2-dot name", `{"ctx.trace.id":"` + tid + `"}`, fields{Trace: tid}},
		{"literal preferred over splits", `{"ctx":{"trace":{"id":"` + strings.Repeat("ab", 16) + `"}},"ctx.trace.id":"` + tid + `"}`, fields{Trace: tid}},
		{"custom traceparent", `{"w3c":"` + tp + `","traceparent":"x"}`, fields{Trace: tid, Span: sid}},
		{"duplicate inner key replaced", `{"ctx":{"trace":{"id":"` + tid + `"},"trace":{}}}`, fields{}},
		{"duplicate outer key keeps other split", `{"ctx.trace":{"id":"` + tid + `"},"ctx":{"trace":{}}}`, fields{Trace: tid}},
	})
}

// naiveScanString is the byte-at-a-time reading of a JSON string that scanString's
// eight-bytes-at-a-time loop must agree with.
func naiveScanString(s string, i int) (end int, plain, ok bool) {
	plain = true
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return j + 1, plain, true
		case c == '\\':
			plain = false
			if j+1 >= len(s) {
				return len(s), false, false
			}
			switch s[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+6 > len(s) || hex4(s[j+2:j+6]) < 0 {
					return j, false, false
				}
				j += 5
			default:
				return j, false, false
			}
		case c < 0x20:
			return j, false, false
		case c >= 0x80:
			plain = false
		}
	}
	return len(s), false, false
}

func TestScanStringWindows(t *testing.T) {
	specials := []string{`"`, `\"`, `\\`, `\u00e9`, `\ud83d\ude00`, "\x01", "\x1f", "é", "\xff", `\x`, `\u12`, " ", "\x7f"}
	for n := 0; n < 24; n++ {
		for pos := 0; pos <= n; pos++ {
			for _, sp := range specials {
				content := strings.Repeat("a", pos) + sp + strings.Repeat("b", n-pos)
				for _, s := range []string{`"` + content + `"`, `"` + content + `","next":"x"}`, `"` + content} {
					gotEnd, gotPlain, gotOK := scanString(s, 0)
					wantEnd, wantPlain, wantOK := naiveScanString(s, 0)
					if gotOK != wantOK || (gotOK && (gotEnd != wantEnd || gotPlain != wantPlain)) {
						t.Fatalf("scanString(%q) = %d %v %v, want %d %v %v", s, gotEnd, gotPlain, gotOK, wantEnd, wantPlain, wantOK)
					}
				}
			}
		}
	}
}
