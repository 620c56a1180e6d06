package lokiexporter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/outrider-dev/outrider/pipeline"
)

func decode(t testing.TB, body []byte) push.PushRequest {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var req push.PushRequest
	if err := req.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	return req
}

func streamsByLabels(req push.PushRequest) map[string]push.Stream {
	m := map[string]push.Stream{}
	for _, s := range req.Streams {
		m[s.Labels] = s
	}
	return m
}

func TestEncode(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	api := pipeline.NewStream(map[string]string{"service": "api", "namespace": "prod"})
	apiTwin := pipeline.NewStream(map[string]string{"service": "api", "namespace": "prod"})
	worker := pipeline.NewStream(map[string]string{"service": "worker"})
	recs := []pipeline.Record{
		{Time: t0.Add(3 * time.Second), Line: "third", Stream: api, Level: pipeline.LevelInfo,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", RequestID: "req-1",
			Metadata: []pipeline.Label{{Name: "filename", Value: "/var/log/app/api.log"}, {Name: "log.file", Value: "x"}}},
		{Time: t0.Add(1 * time.Second), Line: "first", Stream: api, Level: pipeline.LevelInfo},
		{Time: t0.Add(2 * time.Second), Line: "second-a", Stream: apiTwin, Level: pipeline.LevelInfo},
		{Time: t0.Add(2 * time.Second), Line: "second-b", Stream: api, Level: pipeline.LevelInfo},
		{Time: t0, Line: "boom", Stream: api, Level: pipeline.LevelError, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Time: t0, Line: "no level", Stream: worker},
		{Line: "no time", Stream: worker},
	}
	enc := newEncoder(newLabelCache(map[string]string{"cluster": "eu1", "service": "ignored"}, nil), &rawBuffer{})
	now := t0.Add(time.Hour)
	body, err := enc.encode(recs, now, false)
	if err != nil {
		t.Fatal(err)
	}
	req := decode(t, body)
	got := streamsByLabels(req)
	if len(req.Streams) != 3 || len(got) != 3 {
		t.Fatalf("%d streams (%d distinct), want 3: %v", len(req.Streams), len(got), req.Streams)
	}
	info := got[`{cluster="eu1", level="info", namespace="prod", service="api"}`]
	var lines []string
	for _, e := range info.Entries {
		lines = append(lines, e.Line)
	}
	if strings.Join(lines, ",") != "first,second-a,second-b,third" {
		t.Fatalf("info stream lines %v, want sorted by time, stable for equal times, twin streams merged", lines)
	}
	third := info.Entries[3]
	wantMeta := push.LabelsAdapter{
		{Name: "trace_id", Value: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Name: "span_id", Value: "00f067aa0ba902b7"},
		{Name: "request_id", Value: "req-1"},
		{Name: "filename", Value: "/var/log/app/api.log"},
		{Name: "log_file", Value: "x"},
	}
	if fmt.Sprint(third.StructuredMetadata) != fmt.Sprint(wantMeta) {
		t.Fatalf("structured metadata %v, want %v", third.StructuredMetadata, wantMeta)
	}
	if len(info.Entries[0].StructuredMetadata) != 0 {
		t.Fatalf("record without ids got metadata %v", info.Entries[0].StructuredMetadata)
	}
	errs := got[`{cluster="eu1", level="error", namespace="prod", service="api"}`]
	if len(errs.Entries) != 1 || len(errs.Entries[0].StructuredMetadata) != 1 {
		t.Fatalf("error stream %v", errs)
	}
	unknown := got[`{cluster="eu1", service="worker"}`]
	if len(unknown.Entries) != 2 || !unknown.Entries[1].Timestamp.Equal(now) {
		t.Fatalf("worker stream %v: want no level label and the zero time replaced by now", unknown)
	}
	// Correlation ids are never labels.
	for _, s := range req.Streams {
		for _, banned := range []string{"trace_id", "span_id", "request_id", "filename", "4bf92f"} {
			if strings.Contains(s.Labels, banned) {
				t.Fatalf("labels %s contain %q", s.Labels, banned)
			}
		}
	}
}

func TestEncoderReuse(t *testing.T) {
	enc := newEncoder(newLabelCache(nil, nil), &rawBuffer{})
	t0 := time.Unix(1e9, 0)
	a := pipeline.NewStream(map[string]string{"s": "a"})
	b := pipeline.NewStream(map[string]string{"s": "b"})
	first := []pipeline.Record{
		{Time: t0, Line: strings.Repeat("x", 1000), Stream: a, TraceID: "t1", Metadata: []pipeline.Label{{Name: "m", Value: "1"}}},
		{Time: t0, Line: "b1", Stream: b},
	}
	if _, err := enc.encode(first, t0, false); err != nil {
		t.Fatal(err)
	}
	enc.reset()
	second := []pipeline.Record{{Time: t0, Line: "only", Stream: b}}
	body, err := enc.encode(second, t0, false)
	if err != nil {
		t.Fatal(err)
	}
	req := decode(t, body)
	if len(req.Streams) != 1 || req.Streams[0].Labels != `{s="b"}` || len(req.Streams[0].Entries) != 1 ||
		req.Streams[0].Entries[0].Line != "only" || len(req.Streams[0].Entries[0].StructuredMetadata) != 0 {
		t.Fatalf("second request carries leftovers of the first: %+v", req)
	}
	enc.reset()
	for _, s := range enc.streams[:cap(enc.streams)] {
		if s.labels != "" {
			t.Fatal("reset kept a reference to a stream's labels")
		}
	}
	for _, l := range enc.lines[:cap(enc.lines)] {
		if l != "" {
			t.Fatal("reset kept a reference to a line")
		}
	}
}

// benchRecords makes about size bytes of records over a few streams.
func benchRecords(size int) []pipeline.Record {
	streams := []*pipeline.Stream{
		pipeline.NewStream(map[string]string{"service": "api", "namespace": "prod", "pod": "api-7d9c-x1", "container": "app"}),
		pipeline.NewStream(map[string]string{"service": "worker", "namespace": "prod", "pod": "worker-1", "container": "app"}),
	}
	levels := []pipeline.Level{pipeline.LevelInfo, pipeline.LevelInfo, pipeline.LevelInfo, pipeline.LevelWarn, pipeline.LevelError}
	t0 := time.Unix(1.7e9, 0)
	var recs []pipeline.Record
	for n, i := 0, 0; n < size; i++ {
		r := pipeline.Record{
			Time:   t0.Add(time.Duration(i) * time.Millisecond),
			Line:   fmt.Sprintf(`{"ts":"2026-03-01T12:00:00.%06dZ","level":"info","msg":"handled request","method":"GET","path":"/api/v1/items/%d","status":200,"duration_ms":%d}`, i, i, i%97),
			Stream: streams[i%len(streams)],
			Level:  levels[i%len(levels)],
		}
		if i%2 == 0 {
			r.TraceID, r.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		}
		recs = append(recs, r)
		n += r.Size()
	}
	return recs
}

// BenchmarkEncode encodes a 1 MiB request with a warm, pooled encoder, as the push
// path does.
func BenchmarkEncode(b *testing.B) {
	recs := benchRecords(1 << 20)
	enc := newEncoder(newLabelCache(map[string]string{"cluster": "eu1"}, nil), &rawBuffer{})
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	var out int
	for b.Loop() {
		body, err := enc.encode(recs, now, false)
		if err != nil {
			b.Fatal(err)
		}
		out = len(body)
		enc.reset()
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(out), "compressed-bytes")
}

func TestAppendChunks(t *testing.T) {
	s := pipeline.NewStream(map[string]string{"s": "a"})
	var recs []pipeline.Record
	for i := range 200 {
		recs = append(recs, pipeline.Record{Line: strings.Repeat("x", i%7), Stream: s})
	}
	for _, maxBytes := range []int{1, 20, 100, 1 << 20} {
		chunks := appendChunks(nil, recs, maxBytes)
		next := 0
		for _, c := range chunks {
			if len(c.recs) == 0 || len(c.recs) > maxChunkRecords {
				t.Fatalf("max %d: a chunk of %d records", maxBytes, len(c.recs))
			}
			bytes := 0
			for i := range c.recs {
				if &c.recs[i] != &recs[next] {
					t.Fatalf("max %d: record %d is not the batch's own, or out of order", maxBytes, next)
				}
				bytes += c.recs[i].Size()
				next++
			}
			if bytes != c.bytes || (len(c.recs) > 1 && bytes > maxBytes) {
				t.Fatalf("max %d: chunk of %d records has %d bytes, says %d", maxBytes, len(c.recs), bytes, c.bytes)
			}
			if cap(c.recs) != len(c.recs) {
				t.Fatalf("max %d: a chunk may be appended to", maxBytes)
			}
		}
		if next != len(recs) {
			t.Fatalf("max %d: chunks hold %d of %d records", maxBytes, next, len(recs))
		}
		var cur recordCursor
		for _, j := range []int{0, 5, 199, 64, 63, 65, 3, 150, 0} {
			if got := cur.at(chunks, j); got != &recs[j] {
				t.Fatalf("max %d: record %d not found", maxBytes, j)
			}
		}
	}
}

func TestVarint(t *testing.T) {
	vs := []uint64{0, 1, 127, 128, 255, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, 1<<35 - 1, 1 << 35, 1<<63 - 1, 1 << 63, 1<<64 - 1}
	for i := 0; i < 64; i++ {
		vs = append(vs, 1<<i, 1<<i-1, 1<<i+1)
	}
	for _, v := range vs {
		want := binary.AppendUvarint(nil, v)
		if got := appendVarint([]byte{9}, v); !bytes.Equal(got[1:], want) || got[0] != 9 {
			t.Fatalf("appendVarint(%d) = %x, want %x", v, got[1:], want)
		}
		if got := varintLen(v); got != len(want) {
			t.Fatalf("varintLen(%d) = %d, want %d", v, got, len(want))
		}
	}
}
