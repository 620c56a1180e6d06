//go:build unix

package tail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/agent/multiline"
	"github.com/outrider-dev/outrider/agent/pipeline"
)

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTail reads a 100k-line file into a sink that acknowledges at once, from
// the start of Run to the last record.
func BenchmarkTail(b *testing.B) {
	const lines = 100_000
	formats := []struct {
		name string
		line func(i int) string
	}{
		{"json", func(i int) string {
			return fmt.Sprintf(`{"ts":"2024-05-01T10:00:00.%06dZ","level":"info","msg":"request served","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":12,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`, i%1000000, i)
		}},
		{"logfmt", func(i int) string {
			return fmt.Sprintf(`ts=2024-05-01T10:00:00.%06dZ level=info msg="request served" method=GET path=/api/v1/orders/%d status=200 duration_ms=12 trace_id=4bf92f3577b34da6a3ce929d0e0e4736`, i%1000000, i)
		}},
	}
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "app.log")
			var buf bytes.Buffer
			for i := 0; i < lines; i++ {
				buf.WriteString(f.line(i))
				buf.WriteByte('\n')
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
			// The last plain-text line waits flush_after for a continuation; keep that
			// wait out of the measurement.
			cfg := Config{Name: "bench", Path: path, Multiline: multiline.Config{FlushAfter: time.Millisecond}}
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var count atomic.Int64
				done := make(chan struct{})
				sink := pipeline.SinkFunc(func(_ context.Context, batch pipeline.Batch) error {
					if count.Add(int64(len(batch.Records))) == lines {
						close(done)
					}
					batch.Done(nil)
					return nil
				})
				src, err := New(cfg, Settings{Sink: sink, Metrics: NewMetrics(nil)})
				if err != nil {
					b.Fatal(err)
				}
				src.noNotify = true
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- src.Run(ctx) }()
				<-done
				cancel()
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(lines)*float64(b.N)/(cpuTime(b)-cpu0).Seconds(), "lines/cpu-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
