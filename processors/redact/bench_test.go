package redact

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
)

// The benchmark of Redact on loggen's lines, with 0 to 1000 secrets, is
// BenchmarkRedact in tools/bench/cmd/benchredact (loggen is internal to tools/bench).

// benchValues returns n values of 8 to 40 characters.
func benchValues(n int) []string {
	rng := rand.New(rand.NewPCG(uint64(n), 9))
	out := make([]string, n)
	for i := range out {
		out[i] = randomString(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:/+", 8+rng.IntN(33))
	}
	return out
}

// benchRecords returns n records like the file source's: a JSON access log line, a
// request id, the file name shared by all; one in a hundred lines holds a value.
func benchRecords(n int, values []string) []pipeline.Record {
	stream := pipeline.NewStream(map[string]string{"service": "bench"})
	meta := []pipeline.Label{{Name: "filename", Value: "/var/log/app/access.log"}}[:1:1]
	recs := make([]pipeline.Record, n)
	for i := range recs {
		extra := ""
		if i%100 == 50 && len(values) > 0 {
			extra = fmt.Sprintf(`,"password":%q`, values[i%len(values)])
		}
		recs[i] = pipeline.Record{
			Line: fmt.Sprintf(`{"time":"2026-11-21T10:00:%02d.%06dZ","level":"info","msg":"GET /api/orders/%d 200","trace_id":"%032x","span_id":"%016x","request_id":"req-%07d","latency_ms":%d.%d%s}`,
				i%60, i, i*7919%99999, uint64(i)*0x9e3779b97f4a7c15, uint64(i)*0x85ebca6b, i, i%300, i%10, extra),
			Stream:    stream,
			RequestID: fmt.Sprintf("req-%07d", i),
			Metadata:  meta,
		}
	}
	return recs
}

// BenchmarkSinkExport scrubs batches of 1000 records, as the file source hands them
// over; ns/op is per batch.
func BenchmarkSinkExport(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			values := benchValues(max(n, 1))
			r := NewRegistry(nil)
			if n > 0 {
				r.Set("bench", values)
			}
			orig := benchRecords(1000, values)
			recs := make([]pipeline.Record, len(orig))
			discard := pipeline.SinkFunc(func(context.Context, pipeline.Batch) error { return nil })
			k := NewSink(discard, r)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				copy(recs, orig)
				if err := k.Export(ctx, pipeline.Batch{Records: recs}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}

// BenchmarkSet measures a registry change: encoding one owner's values and
// rebuilding the matcher over every owner's.
func BenchmarkSet(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			values := benchValues(n)
			r := NewRegistry(nil)
			r.SetRetention(0, 0) // the cost of a change, not of a day of retained values
			r.Set("others", values[1:])
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.Set("one", []string{fmt.Sprintf("rotated-%d-%s", i, values[0])})
				i++
			}
			b.ReportMetric(float64(r.Len()), "patterns")
		})
	}
}
