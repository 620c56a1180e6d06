package errorevents

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
	"github.com/outrider-dev/outrider/processors/parse"
	"github.com/outrider-dev/outrider/processors/stacktrace/runtimetest"
)

// TestRealCrashesBecomeOneEvent runs each crashing program in its runtime, reads its
// output as a file source does (joiner, then parser with the default configuration)
// and passes the records through the LogSink: the crash, which carries no level of its
// own or a logger's header level, must make exactly one event, with the platform of
// its runtime, and only the crash record gets the event's ID.
func TestRealCrashesBecomeOneEvent(t *testing.T) {
	platform := map[string]string{"dotnet": "csharp"}
	for _, c := range runtimetest.Cases {
		t.Run(c.Lang+"/"+c.Name, func(t *testing.T) {
			t.Parallel()
			out := runtimetest.Output(t, c)
			j, err := multiline.New(multiline.Config{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := parse.New(parse.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var recs []pipeline.Record
			add := func(rs []multiline.Record) {
				for _, r := range rs {
					rec := pipeline.Record{Line: strings.Clone(r.Text)}
					p.Parse(rec.Line, &rec)
					recs = append(recs, rec)
				}
			}
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				add(j.Add(l))
			}
			add(j.Flush())

			q := &memQueue{}
			b := builder(defaults(), newClock())
			var passed pipeline.Batch
			next := pipeline.SinkFunc(func(_ context.Context, bt pipeline.Batch) error { passed = bt; return nil })
			if err := NewLogSink(next, func() (*Builder, Appender) { return b, q }).Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
				t.Fatal(err)
			}
			if len(q.got) != 1 {
				t.Fatalf("%d events from %d records, want 1:\n%s", len(q.got), len(recs), out)
			}
			env, err := sentryenv.Parse(q.got[0], sentryenv.Limits{})
			if err != nil || len(env.Items) != 1 {
				t.Fatalf("queued envelope: %v", err)
			}
			var ev struct {
				Platform  string `json:"platform"`
				Level     string `json:"level"`
				Exception []struct {
					Type string `json:"type"`
				} `json:"exception"`
			}
			if err := json.Unmarshal(env.Items[0].Payload, &ev); err != nil {
				t.Fatal(err)
			}
			want := platform[c.Lang]
			if want == "" {
				want = c.Lang
			}
			wantLevel := "error"
			if c.Lang == "go" || c.Lang == "php" {
				wantLevel = "fatal"
			}
			if ev.Platform != want || ev.Level != wantLevel || len(ev.Exception) == 0 {
				t.Errorf("event platform %q level %q with %d exceptions; want platform %q level %q",
					ev.Platform, ev.Level, len(ev.Exception), want, wantLevel)
			}
			tagged := 0
			for _, r := range passed.Records {
				if len(r.Metadata) > 0 {
					tagged++
					if !strings.Contains(r.Line, "\n") {
						t.Errorf("a single line got the event's ID: %q", r.Line)
					}
				}
			}
			if tagged != 1 {
				t.Errorf("%d records carry an event ID, want 1", tagged)
			}
		})
	}
}
