package parse

import (
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestLogfmt(t *testing.T) {
	cases := []lineCase{
		{"all fields", `time=2024-01-02T15:04:05Z level=error trace_id=` + tid + ` span_id=` + sid + ` request_id=r1 msg="boom"`,
			fields{pipeline.LevelError, "2024-01-02T15:04:05Z", tid, sid, "r1"}},
		{"quoted values", `level="warn" request_id="a b" msg=x`, fields{Level: pipeline.LevelWarn, Req: "a b"}},
		{"go escapes", `level=info request_id="a\"b\\c\u00e9" msg=x`, fields{Level: pipeline.LevelInfo, Req: `a"b\cé`}},
		{"json escape", `level=info request_id="a\/b" msg=x`, fields{Level: pipeline.LevelInfo, Req: "a/b"}},
		{"escaped control character", `level=info request_id="a\nb" msg=x`, fields{Level: pipeline.LevelInfo}},
		{"invalid escape", `level=info request_id="a\qb" msg=x`, fields{Level: pipeline.LevelInfo}},
		{"bare keys skipped", `level=info flag other request_id=r msg=x`, fields{Level: pipeline.LevelInfo, Req: "r"}},
		{"duplicates: last wins", `level=info msg=x level=error`, fields{Level: pipeline.LevelError}},
		{"duplicates: last unusable wins", `level=error msg=x level=nonsense`, fields{}},
		{"priority", `lvl=debug level=warn msg=x`, fields{Level: pipeline.LevelWarn}},
		{"empty value", `level= msg=x lvl=info`, fields{Level: pipeline.LevelInfo}},
		{"equals in bare value", `level=info request_id=a=b msg=x`, fields{Level: pipeline.LevelInfo, Req: "a=b"}},
		{"stray quote and equals", `"loose" =x level=warn msg=y`, fields{Level: pipeline.LevelWarn}},
		{"unterminated quote stops the scan", `level=warn lvl=x msg="never ends request_id=r`, fields{Level: pipeline.LevelWarn}},
		{"unix time", `ts=1704207845.5 level=info msg=x`, fields{Level: pipeline.LevelInfo, Time: "2024-01-02T15:04:05.5Z"}},
		{"dotted key literal", `log.level=error trace.id=` + tid + ` msg=x`, fields{Level: pipeline.LevelError, Trace: tid}},
		{"traceparent", `level=info traceparent=` + tp + ` msg=x`, fields{Level: pipeline.LevelInfo, Trace: tid, Span: sid}},
		{"tabs", "level=info\tmsg=x\trequest_id=r", fields{Level: pipeline.LevelInfo, Req: "r"}},
	}
	runLines(t, mustNew(t, Config{Format: FormatLogfmt}), cases)
	t.Run("auto", func(t *testing.T) { runLines(t, mustNew(t, Config{}), cases) })
}

func TestAutoDetection(t *testing.T) {
	runLines(t, mustNew(t, Config{}), []lineCase{
		// Not JSON: '{' not followed by '"' or '}'; the plain heuristics apply.
		{"brace then text", `{main} ERROR failed request_id=r`, fields{Level: pipeline.LevelError, Req: "r"}},
		// Plain, since the first word is not a pair: level word and key=value tokens.
		{"plain with pairs", `[WARN] handled level=error request_id=r msg=x`, fields{Level: pipeline.LevelError, Req: "r"}},
		// One pair is not logfmt; the plain heuristics find the level word.
		{"one pair", `level=info`, fields{Level: pipeline.LevelInfo}},
		// Two pairs without a level, time or msg key are not logfmt, so no quoted
		// values are decoded; the key=value tokens are still read.
		{"two plain pairs", `user=bob request_id=r`, fields{Req: "r"}},
		// logfmt reads quoted values whole; plain would stop at the space.
		{"logfmt quoted", `msg=x request_id="a b"`, fields{Req: "a b"}},
		{"logfmt ignores level words", `msg="ERROR happened" status=ok`, fields{}},
		// The scan stops at the unterminated quote with one pair: plain, which reads
		// key=value tokens anywhere.
		{"unterminated quote", `level=warn msg="never ends request_id=r`, fields{Level: pipeline.LevelWarn, Req: "r"}},
		{"leading spaces before json", "   \t{\"level\":\"info\"}", fields{Level: pipeline.LevelInfo}},
		{"json array is not an object", `["level","error"]`, fields{}},
	})
}

func TestLogfmtExplicitSkipsDetection(t *testing.T) {
	p := mustNew(t, Config{Format: FormatLogfmt})
	if got := parsed(p, `[WARN] level=error`); got.Level != pipeline.LevelError {
		t.Errorf("level = %q, want error", got.Level)
	}
	if got := parsed(p, `ERROR something`); got != (fields{}) {
		t.Errorf("got %+v, want nothing: logfmt does not look for level words", got)
	}
	long := "level=info " + strings.Repeat("k=v ", 1000) + "request_id=last"
	if got := parsed(p, long); got.Req != "last" {
		t.Errorf("request id = %q, want last", got.Req)
	}
}
