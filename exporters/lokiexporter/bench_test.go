package lokiexporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/pipeline"
)

// BenchmarkExportPush pushes 100k records per iteration through Export (in source
// batches of 1000, as a tailer hands them over) into a server that discards the body,
// and waits for every acknowledgement. Default batching: 1 MiB requests, 2 workers.
func BenchmarkExportPush(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	const total, perBatch = 100_000, 1000
	recs := make([]pipeline.Record, 0, total)
	for len(recs) < total {
		recs = append(recs, benchRecords(4<<20)...)
	}
	recs = recs[:total]
	e, err := New(Config{URL: srv.URL}, Settings{})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	var wg sync.WaitGroup
	ack := func(err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(total / perBatch)
		for i := 0; i < total; i += perBatch {
			if err := e.Export(ctx, pipeline.Batch{Records: recs[i : i+perBatch], Ack: ack}); err != nil {
				b.Fatal(err)
			}
		}
		// Do not wait for max_wait on the tail of the last request.
		e.sender.Flush()
		wg.Wait()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(total), "records/op")
}

// BenchmarkUTF8Fix is the cost Export adds per record to keep invalid UTF-8 from
// costing a push: a 200-byte line and two metadata labels, all valid.
func BenchmarkUTF8Fix(b *testing.B) {
	f := utf8Fixer{line: prometheus.NewCounter(prometheus.CounterOpts{Name: "l"}), meta: prometheus.NewCounter(prometheus.CounterOpts{Name: "m"})}
	r := pipeline.Record{
		Line:     strings.Repeat("GET /api/orders/12345 200 1.2ms user=alice ", 5),
		Metadata: []pipeline.Label{{Name: "filename", Value: "/var/log/app/current.log"}, {Name: "user", Value: "alice"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		f.fix(&r)
	}
}
