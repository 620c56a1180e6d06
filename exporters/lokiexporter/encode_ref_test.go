package lokiexporter

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/outrider-dev/outrider/pipeline"
)

// referenceRequest is the request the records make as the Loki client library
// builds it: push.Stream and push.Entry values, each stream's entries sorted by time
// (stably), encoded with gogo/protobuf's Marshal. The hand-written encoder must write
// exactly these bytes.
func referenceRequest(t testing.TB, labels *labelCache, recs []pipeline.Record, now time.Time, strip bool) ([]byte, error) {
	t.Helper()
	var req push.PushRequest
	byLabels := map[string]int{}
	for i := range recs {
		r := &recs[i]
		ls := labels.get(streamKey{stream: r.Stream, level: r.Level})
		idx, ok := byLabels[ls]
		if !ok {
			idx = len(req.Streams)
			byLabels[ls] = idx
			req.Streams = append(req.Streams, push.Stream{Labels: ls})
		}
		ts := r.Time
		if ts.IsZero() {
			ts = now
		}
		ent := push.Entry{Timestamp: ts, Line: r.Line}
		if strip {
			ent.Line = lineWithIDs(r)
		} else {
			for _, m := range appendMetadata(nil, r) {
				ent.StructuredMetadata = append(ent.StructuredMetadata, push.LabelAdapter{Name: m.Name, Value: m.Value})
			}
		}
		req.Streams[idx].Entries = append(req.Streams[idx].Entries, ent)
	}
	for i := range req.Streams {
		slices.SortStableFunc(req.Streams[i].Entries, func(a, b push.Entry) int { return a.Timestamp.Compare(b.Timestamp) })
	}
	return req.Marshal()
}

// checkEncode encodes recs with a fresh and with a reused encoder and compares the
// uncompressed body with referenceRequest's bytes.
func checkEncode(t *testing.T, enc *encoder, recs []pipeline.Record, now time.Time, strip bool) {
	t.Helper()
	want, wantErr := referenceRequest(t, enc.labels, recs, now, strip)
	body, err := enc.encode(recs, now, strip)
	defer enc.reset()
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("encode error %v, gogo/protobuf's %v", err, wantErr)
	}
	if err != nil {
		return
	}
	got, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("body is not snappy: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n%x\ngogo/protobuf\n%x", got, want)
	}
	// The same records cut into chunks, as requests hold them, encode the same.
	for _, maxBytes := range []int{1, 300, 1 << 20} {
		enc.reset()
		chunks := appendChunks(nil, recs, maxBytes)
		if n := countRecords(chunks); n != len(recs) {
			t.Fatalf("chunks of at most %d bytes hold %d records, want %d", maxBytes, n, len(recs))
		}
		body, err := enc.encodeChunks(chunks, now, strip)
		if err != nil {
			t.Fatalf("chunks of at most %d bytes: %v", maxBytes, err)
		}
		got, err := snappy.Decode(nil, body)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("chunks of at most %d bytes encoded\n%x\ngogo/protobuf\n%x", maxBytes, got, want)
		}
	}
}

func TestEncodeMatchesGogo(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123, time.UTC)
	api := pipeline.NewStream(map[string]string{"service": "api", "namespace": "prod"})
	twin := pipeline.NewStream(map[string]string{"service": "api", "namespace": "prod"})
	worker := pipeline.NewStream(map[string]string{"service": "worker"})
	file := []pipeline.Label{{Name: "filename", Value: "/var/log/app/api.log"}}
	both := []pipeline.Label{{Name: "filename", Value: "/var/log/app/w.log"}, {Name: "pod_uid", Value: "8f2c"}}
	cases := []struct {
		name string
		recs []pipeline.Record
	}{
		{"empty", nil},
		{"one", []pipeline.Record{{Time: t0, Line: "x", Stream: api}}},
		{"ids and metadata", []pipeline.Record{
			{Time: t0, Line: "a", Stream: api, Level: pipeline.LevelInfo, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
				SpanID: "00f067aa0ba902b7", RequestID: "req-1", Metadata: file},
			{Time: t0, Line: "b", Stream: api, Level: pipeline.LevelInfo, Metadata: []pipeline.Label{{Name: "log.file", Value: ""}, {Name: "", Value: "v"}}},
		}},
		{"unsorted, twins, levels", []pipeline.Record{
			{Time: t0.Add(3 * time.Second), Line: "3", Stream: api, Level: pipeline.LevelInfo},
			{Time: t0.Add(1 * time.Second), Line: "1", Stream: twin, Level: pipeline.LevelInfo},
			{Time: t0.Add(1 * time.Second), Line: "1b", Stream: api, Level: pipeline.LevelInfo},
			{Time: t0, Line: "e", Stream: api, Level: pipeline.LevelError},
			{Line: "no time", Stream: worker},
			{Time: t0, Line: "", Stream: worker},
		}},
		{"times at the edges", []pipeline.Record{
			{Time: time.Unix(0, 0), Line: "epoch", Stream: api},
			{Time: time.Unix(-1, 999_999_999), Line: "before", Stream: api},
			{Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Line: "first", Stream: api},
			{Time: time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), Line: "last", Stream: api},
			{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), Line: "zone", Stream: api},
		}},
		{"time too early", []pipeline.Record{{Time: time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), Line: "x", Stream: api}}},
		{"time too late", []pipeline.Record{{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Line: "x", Stream: api}}},
		{"shared metadata", []pipeline.Record{
			{Time: t0, Line: "1", Stream: api, Metadata: both},
			{Time: t0, Line: "2", Stream: api, Metadata: both[:1]},
			{Time: t0, Line: "3", Stream: worker, Metadata: both},
			{Time: t0, Line: "4", Stream: api, Metadata: file},
			{Time: t0, Line: "5", Stream: api, Metadata: both[1:]},
			{Time: t0, Line: "6", Stream: api, Metadata: both},
		}},
		{"long", []pipeline.Record{{Time: t0, Line: strings.Repeat("y", 70000), Stream: api, RequestID: strings.Repeat("r", 200)}}},
		{"ids around one-byte lengths", []pipeline.Record{
			{Time: t0, Line: "a", Stream: api, RequestID: strings.Repeat("r", 112)},
			{Time: t0, Line: "b", Stream: api, RequestID: strings.Repeat("r", 113)},
			{Time: t0, Line: "c", Stream: api, RequestID: strings.Repeat("r", 127)},
			{Time: t0, Line: "d", Stream: api, RequestID: strings.Repeat("r", 128)},
		}},
	}
	enc := newEncoder(newLabelCache(map[string]string{"cluster": "eu1"}, nil), &rawBuffer{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, strip := range []bool{false, true} {
				checkEncode(t, enc, c.recs, t0.Add(time.Hour), strip)
				checkEncode(t, newEncoder(enc.labels, &rawBuffer{}), c.recs, t0.Add(time.Hour), strip)
			}
		})
	}
	checkEncode(t, enc, benchRecords(1<<20), t0, false)
}

// FuzzEncode checks the hand-written encoder against gogo/protobuf's Marshal of the
// same request, on records made from the fuzzer's bytes.
func FuzzEncode(f *testing.F) {
	f.Add([]byte("line one\x00trace\x01\x02"), int64(1.7e9), uint8(3), false)
	f.Add([]byte(`{"msg":"x"}`+"\n"+"at foo"), int64(-62135596800), uint8(0), true)
	f.Add([]byte{0xff, 0xfe, 'a'}, int64(253402300799), uint8(200), false)
	streams := []*pipeline.Stream{
		pipeline.NewStream(map[string]string{"service": "api"}),
		pipeline.NewStream(map[string]string{"service": "api"}),
		pipeline.NewStream(map[string]string{"service": "worker", "pod": "w-1"}),
	}
	levels := []pipeline.Level{pipeline.LevelUnknown, pipeline.LevelInfo, pipeline.LevelError}
	labels := newLabelCache(map[string]string{"cluster": "eu1"}, nil)
	enc := newEncoder(labels, &rawBuffer{})
	f.Fuzz(func(t *testing.T, data []byte, sec int64, shape uint8, strip bool) {
		var recs []pipeline.Record
		// A file's records share one metadata slice.
		shared := []pipeline.Label{{Name: "filename", Value: string(data[:min(len(data), 20)])}, {Name: "pod_uid", Value: "u"}}
		for i, part := range bytes.Split(data, []byte{0}) {
			s := strings.ToValidUTF8(string(part), "\uFFFD")
			k := int(shape) + i
			r := pipeline.Record{Line: s, Stream: streams[k%len(streams)], Level: levels[k/3%len(levels)]}
			if k%5 != 0 {
				r.Time = time.Unix(sec%(1<<40)-int64(k%7)*3600, int64(k)*7919%1e9)
			}
			if k%2 == 0 {
				r.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			}
			if k%3 == 0 && utf8.ValidString(s) && len(s) <= 128 {
				r.RequestID = s
			}
			switch k % 4 {
			case 0, 3:
				r.Metadata = []pipeline.Label{{Name: "filename", Value: s}, {Name: s, Value: "x"}}
			case 2:
				r.Metadata = shared[:1+k/4%2]
			}
			recs = append(recs, r)
		}
		checkEncode(t, enc, recs, time.Unix(1.7e9, 5), strip)
	})
}

// TestIDPrefixes checks the constant starts of the ID fields against appendPair.
func TestIDPrefixes(t *testing.T) {
	for _, c := range []struct{ prefix, name string }{
		{traceIDPrefix, MetaTraceID}, {spanIDPrefix, MetaSpanID}, {requestIDPrefix, MetaRequestID},
	} {
		for _, v := range []string{"x", "4bf92f3577b34da6a3ce929d0e0e4736", strings.Repeat("r", 100), strings.Repeat("r", 128), strings.Repeat("r", 300)} {
			if got, want := appendIDPair(nil, c.prefix, c.name, v), appendPair(nil, c.name, v); !bytes.Equal(got, want) {
				t.Errorf("%s %d bytes: %x, want %x", c.name, len(v), got, want)
			}
		}
	}
}
