package parse

import (
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

const (
	tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	sid = "00f067aa0ba902b7"
	tp  = "00-" + tid + "-" + sid + "-01"
)

// fields is what a test expects Parse to set; Time is RFC 3339 in UTC, "" for none.
type fields struct {
	Level pipeline.Level
	Time  string
	Trace string
	Span  string
	Req   string
}

func mustNew(t testing.TB, cfg Config) Parser {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return p
}

func parsed(p Parser, line string) fields {
	var r pipeline.Record
	p.Parse(line, &r)
	return fieldsOf(&r)
}

func fieldsOf(r *pipeline.Record) fields {
	f := fields{Level: r.Level, Trace: r.TraceID, Span: r.SpanID, Req: r.RequestID}
	if !r.Time.IsZero() {
		f.Time = r.Time.UTC().Format(time.RFC3339Nano)
	}
	return f
}

type lineCase struct {
	name string
	line string
	want fields
}

func runLines(t *testing.T, p Parser, cases []lineCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parsed(p, tc.line); got != tc.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
			}
		})
	}
}
