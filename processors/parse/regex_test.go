package parse

import (
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestRegex(t *testing.T) {
	p := mustNew(t, Config{
		Format:     FormatRegex,
		Pattern:    `^(?P<time>\S+ \S+) \[(?P<level>\w+)\] (?:rid=(?P<request_id>\S+) )?(?:tp=(?P<traceparent>\S+) )?(?:(?P<trace_id>[0-9a-f]{32}):(?P<span_id>[0-9a-f]{16}) )?(?P<message>.*)$`,
		TimeFormat: "2006-01-02 15:04:05.000",
	})
	runLines(t, p, []lineCase{
		{"all groups", "2024-01-02 15:04:05.123 [error] rid=r1 " + tid + ":" + sid + " boom",
			fields{pipeline.LevelError, "2024-01-02T15:04:05.123Z", tid, sid, "r1"}},
		{"traceparent group", "2024-01-02 15:04:05.123 [WARN] tp=" + tp + " x",
			fields{Level: pipeline.LevelWarn, Time: "2024-01-02T15:04:05.123Z", Trace: tid, Span: sid}},
		{"optional groups missing", "2024-01-02 15:04:05.123 [info] hello",
			fields{Level: pipeline.LevelInfo, Time: "2024-01-02T15:04:05.123Z"}},
		{"unusable values", "2024-13-02 15:04:05.123 [loud] rid=" + string([]byte{1}) + " x",
			fields{}},
		{"no match", "something else", fields{}},
	})
}

func TestRegexGroupsSubset(t *testing.T) {
	p := mustNew(t, Config{Format: FormatRegex, Pattern: `req=(?P<request_id>\w+)`})
	if got := parsed(p, "level=error req=abc"); got != (fields{Req: "abc"}) {
		t.Errorf("got %+v, want only the request id", got)
	}
}
