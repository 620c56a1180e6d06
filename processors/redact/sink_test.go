package redact

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

// captureSink keeps the last batch it was given and answers err.
type captureSink struct {
	got pipeline.Batch
	n   int
	err error
}

func (c *captureSink) Export(_ context.Context, b pipeline.Batch) error {
	c.got = b
	c.n++
	return c.err
}

func TestSinkScrubs(t *testing.T) {
	m := NewMetrics(nil)
	r := NewRegistry(m)
	r.Set("vault:secret/app", []string{"hunter2-pass", "/var/log/s3cr3t-dir"})

	stream := pipeline.NewStream(map[string]string{"service": "app"})
	fileMeta := []pipeline.Label{{Name: "filename", Value: "/var/log/app.log"}}
	secretMeta := []pipeline.Label{{Name: "filename", Value: "/var/log/s3cr3t-dir/app.log"}, {Name: "other", Value: "keep"}}
	secretMetaCopy := append([]pipeline.Label(nil), secretMeta...)
	recs := []pipeline.Record{
		{Line: "login ok", Stream: stream, Metadata: fileMeta},
		{Line: "login with hunter2-pass", Stream: stream, RequestID: "hunter2-pass", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Metadata: fileMeta},
		{Line: "a", Stream: stream, Metadata: secretMeta},
		{Line: "b", Stream: stream, Metadata: secretMeta},
		{Line: "c", Stream: stream, Metadata: secretMeta[:1]},
		{Line: "d", Stream: stream},
	}
	next := &captureSink{}
	acked := false
	k := NewSink(next, r)
	if err := k.Export(context.Background(), pipeline.Batch{Records: recs, Ack: func(error) { acked = true }}); err != nil {
		t.Fatal(err)
	}
	got := next.got.Records
	if len(got) != len(recs) || &got[0] != &recs[0] {
		t.Fatal("the batch's records were not passed on in place")
	}
	next.got.Done(nil)
	if !acked {
		t.Error("the acknowledgement was not passed on")
	}
	if got[0].Line != "login ok" || &got[0].Metadata[0] != &fileMeta[0] {
		t.Errorf("record without a secret changed: %+v", got[0])
	}
	if got[1].Line != "login with "+Marker || got[1].RequestID != Marker || got[1].TraceID != recs[1].TraceID {
		t.Errorf("record 1 = %+v", got[1])
	}
	for i := 2; i <= 4; i++ {
		if got[i].Metadata[0].Value != Marker+"/app.log" {
			t.Errorf("record %d metadata = %+v", i, got[i].Metadata)
		}
		if &got[i].Metadata[0] == &secretMeta[0] {
			t.Errorf("record %d metadata was written through the shared slice", i)
		}
	}
	if len(got[4].Metadata) != 1 || got[2].Metadata[1].Value != "keep" {
		t.Errorf("metadata lengths or other values changed: %+v, %+v", got[2].Metadata, got[4].Metadata)
	}
	for i := range secretMeta {
		if secretMeta[i] != secretMetaCopy[i] {
			t.Errorf("the shared metadata slice was modified: %+v", secretMeta)
		}
	}
	for field, want := range map[string]float64{"line": 1, "request_id": 1, "metadata": 3} {
		if got := metricValue(t, m.scrubbed.WithLabelValues(field)); got != want {
			t.Errorf("scrubbed{field=%q} = %v, want %v", field, got, want)
		}
	}
}

func TestSinkEmptyRegistryPassesThrough(t *testing.T) {
	next := &captureSink{err: errors.New("full")}
	k := NewSink(next, NewRegistry(nil))
	recs := []pipeline.Record{{Line: "hunter2-pass"}}
	if err := k.Export(context.Background(), pipeline.Batch{Records: recs}); err == nil || err.Error() != "full" {
		t.Fatalf("Export = %v, want next's error", err)
	}
	if next.got.Records[0].Line != "hunter2-pass" {
		t.Error("a record changed with no value registered")
	}
	if n := testing.AllocsPerRun(100, func() { _ = k.Export(context.Background(), pipeline.Batch{Records: recs}) }); n != 0 {
		t.Errorf("%v allocations per batch with an empty registry", n)
	}
}

// TestSinkSeesNewValues checks that values registered after the Sink was built are
// scrubbed from the next batch on.
func TestSinkSeesNewValues(t *testing.T) {
	r := NewRegistry(nil)
	r.SetRetention(0, 0)
	next := &captureSink{}
	k := NewSink(next, r)
	export := func(line string) string {
		t.Helper()
		if err := k.Export(context.Background(), pipeline.Batch{Records: []pipeline.Record{{Line: line}}}); err != nil {
			t.Fatal(err)
		}
		return next.got.Records[0].Line
	}
	if got := export("token abcdef123"); got != "token abcdef123" {
		t.Fatalf("got %q", got)
	}
	r.Set("f", []string{"abcdef123"})
	if got := export("token abcdef123"); got != "token "+Marker {
		t.Fatalf("got %q", got)
	}
	r.Remove("f")
	if got := export("token abcdef123"); got != "token abcdef123" {
		t.Fatalf("got %q", got)
	}
}

// TestSinkScrubsMetadataNames: an OTLP log attribute key holding a secret becomes a
// metadata name; it is scrubbed and stays a valid name.
func TestSinkScrubsMetadataNames(t *testing.T) {
	r := NewRegistry(nil)
	r.Set("s", []string{"hunter2-pass"})
	next := &captureSink{}
	recs := []pipeline.Record{{Line: "x", Metadata: []pipeline.Label{{Name: "hunter2_pass", Value: "v"}, {Name: "ok", Value: "v"}}}}
	r.Set("s2", []string{"hunter2_pass"})
	if err := NewSink(next, r).Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if got := next.got.Records[0].Metadata; got[0].Name != "_REDACTED_" || got[0].Value != "v" || got[1].Name != "ok" {
		t.Errorf("metadata = %+v", got)
	}
}

// TestSinkRequestIDInLine: a request id that is part of its line's bytes, as the
// parser takes it, is not searched again when the line holds nothing; it is when
// the line held a value, and a request id of its own is always searched.
func TestSinkRequestIDInLine(t *testing.T) {
	r := NewRegistry(nil)
	r.Set("s", []string{"hunter2-pass"})
	clean := `{"msg":"ok","request_id":"req-0000001"}`
	leaky := `{"msg":"hunter2-pass","request_id":"req-hunter2-pass"}`
	sub := func(line, id string) string {
		i := strings.Index(line, id)
		return line[i : i+len(id)]
	}
	recs := []pipeline.Record{
		{Line: clean, RequestID: sub(clean, "req-0000001")},
		{Line: leaky, RequestID: sub(leaky, "req-hunter2-pass")},
		{Line: clean, RequestID: "req-hunter2-pass"},
		{Line: "a line of its own", RequestID: sub(leaky, "req-hunter2-pass")},
	}
	next := &captureSink{}
	if err := NewSink(next, r).Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	want := []pipeline.Record{
		{Line: clean, RequestID: "req-0000001"},
		{Line: `{"msg":"[REDACTED]","request_id":"req-[REDACTED]"}`, RequestID: "req-" + Marker},
		{Line: clean, RequestID: "req-" + Marker},
		{Line: "a line of its own", RequestID: "req-" + Marker},
	}
	for i, got := range next.got.Records {
		if got.Line != want[i].Line || got.RequestID != want[i].RequestID {
			t.Errorf("record %d = %q, %q; want %q, %q", i, got.Line, got.RequestID, want[i].Line, want[i].RequestID)
		}
	}
}

// TestSinkWarmsFilters: a batch of many records reads the filters first (Sink.scrub),
// within warmMaxLines; the filters of many values are left alone.
func TestSinkWarmsFilters(t *testing.T) {
	small := newMatcher(encodings("hunter2-pass"))
	if n := small.warmLines(); n <= 0 || n > warmMaxLines {
		t.Errorf("warmLines of one value = %d, want 1 to %d", n, warmMaxLines)
	}
	small.warm()
	var forms []form
	for _, v := range benchValues(1000) {
		forms = append(forms, encodings(v)...)
	}
	if n := newMatcher(dedupe(forms)).warmLines(); n != 0 {
		t.Errorf("warmLines of 1000 values = %d, want 0 (over %d lines)", n, warmMaxLines)
	}
}

// TestSinkScrubbedLinesShareBlocks checks that the scrubbed lines of a batch come
// from shared blocks, not an allocation each, and keep their text.
func TestSinkScrubbedLinesShareBlocks(t *testing.T) {
	r := NewRegistry(nil)
	r.Set("app", []string{"hunter2-pass"})
	stream := pipeline.NewStream(map[string]string{"service": "app"})
	orig := make([]pipeline.Record, 100)
	for i := range orig {
		orig[i] = pipeline.Record{Line: fmt.Sprintf(`{"msg":"request %d","user":"app"}`, i), Stream: stream}
		if i%10 == 0 {
			orig[i].Line = fmt.Sprintf(`{"msg":"login %d","password":"hunter2-pass","user":"app"}`, i)
		}
	}
	recs := make([]pipeline.Record, len(orig))
	k := NewSink(pipeline.SinkFunc(func(context.Context, pipeline.Batch) error { return nil }), r)
	allocs := testing.AllocsPerRun(50, func() {
		copy(recs, orig)
		if err := k.Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
			t.Fatal(err)
		}
	})
	// Ten lines of ~60 bytes fit one block; an allocation each would be ten.
	if allocs > 1 {
		t.Errorf("scrubbing ten lines of a batch took %.0f allocations, want 1", allocs)
	}
	copy(recs, orig)
	if err := k.Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	held := append([]pipeline.Record(nil), recs...)
	copy(recs, orig) // the next batch, scrubbed into blocks of its own
	if err := k.Export(context.Background(), pipeline.Batch{Records: recs}); err != nil {
		t.Fatal(err)
	}
	for i, rec := range held {
		want := orig[i].Line
		if i%10 == 0 {
			want = fmt.Sprintf(`{"msg":"login %d","password":"%s","user":"app"}`, i, Marker)
		}
		if rec.Line != want || recs[i].Line != want {
			t.Fatalf("line %d: %q and %q, want %q", i, rec.Line, recs[i].Line, want)
		}
	}
}
