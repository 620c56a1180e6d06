package multiline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
	"github.com/outrider-dev/outrider/processors/parse"
	"github.com/outrider-dev/outrider/processors/stacktrace"
)

// TestStackTraceFixturesBecomeOneErrorRecord reads every stack trace fixture of
// processors/stacktrace as a file source does (joiner with defaults, then the parser with
// defaults): exactly one record holds a trace, and it is at error or fatal level —
// whether the level comes from a logger's header line or the trace is raw crash
// output — except where the header says otherwise.
func TestStackTraceFixturesBecomeOneErrorRecord(t *testing.T) {
	headerLevel := map[string]pipeline.Level{
		"java_logback_spring.log": pipeline.LevelWarn, // logged with WARN
	}
	files, err := filepath.Glob(filepath.Join("..", "stacktrace", "testdata", "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	p, err := parse.New(parse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			j, err := multiline.New(multiline.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var recs []string
			for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				for _, r := range j.Add(l) {
					recs = append(recs, strings.Clone(r.Text))
				}
			}
			for _, r := range j.Flush() {
				recs = append(recs, r.Text)
			}
			traces := 0
			for _, r := range recs {
				if _, ok := stacktrace.Parse(r); !ok {
					continue
				}
				traces++
				var rec pipeline.Record
				p.Parse(r, &rec)
				want, ok := headerLevel[name]
				if !ok && rec.Level != pipeline.LevelError && rec.Level != pipeline.LevelFatal || ok && rec.Level != want {
					t.Errorf("trace record at level %v:\n%s", rec.Level, r)
				}
			}
			if traces != 1 {
				t.Errorf("%d records hold a trace, want 1:\n%s", traces, strings.Join(recs, "\n-----\n"))
			}
		})
	}
}
