package parse

import (
	"encoding/json"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

// benchJSON is a typical 200-byte structured line (slog/zap style).
const benchJSON = `{"time":"2024-01-02T15:04:05.123456Z","level":"INFO","msg":"request done","trace_id":"` + tid +
	`","span_id":"` + sid + `","request_id":"9f86d081884c7d65","status":200,"dur_ms":12}`

const benchLogfmt = `time=2024-01-02T15:04:05.123456Z level=info msg="request done" trace_id=` + tid +
	` span_id=` + sid + ` request_id=9f86d081884c7d65 status=200 dur_ms=12`

const benchPlain = `2024-01-02 15:04:05.123 ERROR 1 --- [nio-8080-exec-1] c.e.demo.Controller : request failed status=500 request_id=9f86d081884c7d65 traceparent=` + tp

func benchParse(b *testing.B, cfg Config, line string, want fields) {
	p := mustNew(b, cfg)
	if got := parsed(p, line); got != want {
		b.Fatalf("Parse(%q)\n got %+v\nwant %+v", line, got, want)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	var r pipeline.Record
	for b.Loop() {
		r = pipeline.Record{}
		p.Parse(line, &r)
	}
}

func BenchmarkParseJSON(b *testing.B) {
	want := fields{pipeline.LevelInfo, "2024-01-02T15:04:05.123456Z", tid, sid, "9f86d081884c7d65"}
	b.Run("auto", func(b *testing.B) { benchParse(b, Config{}, benchJSON, want) })
	b.Run("json", func(b *testing.B) { benchParse(b, Config{Format: FormatJSON}, benchJSON, want) })
	// The baseline the scanner replaces: decoding the line into a map, before any
	// field is even looked up.
	b.Run("encoding_json_map", func(b *testing.B) {
		b.SetBytes(int64(len(benchJSON)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal([]byte(benchJSON), &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseLogfmt(b *testing.B) {
	want := fields{pipeline.LevelInfo, "2024-01-02T15:04:05.123456Z", tid, sid, "9f86d081884c7d65"}
	b.Run("auto", func(b *testing.B) { benchParse(b, Config{}, benchLogfmt, want) })
	b.Run("logfmt", func(b *testing.B) { benchParse(b, Config{Format: FormatLogfmt}, benchLogfmt, want) })
}

func BenchmarkParsePlain(b *testing.B) {
	want := fields{pipeline.LevelError, "2024-01-02T15:04:05.123Z", tid, sid, "9f86d081884c7d65"}
	b.Run("auto", func(b *testing.B) { benchParse(b, Config{}, benchPlain, want) })
	b.Run("plain", func(b *testing.B) { benchParse(b, Config{Format: FormatPlain}, benchPlain, want) })
}

func BenchmarkParseRegex(b *testing.B) {
	cfg := Config{Format: FormatRegex, Pattern: `^(?P<time>\S+ \S+) (?P<level>[A-Z]+) .*request_id=(?P<request_id>\S+) traceparent=(?P<traceparent>\S+)`}
	benchParse(b, cfg, benchPlain, fields{pipeline.LevelError, "2024-01-02T15:04:05.123Z", tid, sid, "9f86d081884c7d65"})
}
