//go:build unix

package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
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
	const payload = `{"ts":"2024-05-01T10:00:00.%06dZ","level":"info","msg":"request served","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":12,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`
	formats := []struct {
		name   string
		format string
		line   func(i int) string
	}{
		{"json", FormatRaw, func(i int) string {
			return fmt.Sprintf(`{"ts":"2024-05-01T10:00:00.%06dZ","level":"info","msg":"request served","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":12,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`, i%1000000, i)
		}},
		{"logfmt", FormatRaw, func(i int) string {
			return fmt.Sprintf(`ts=2024-05-01T10:00:00.%06dZ level=info msg="request served" method=GET path=/api/v1/orders/%d status=200 duration_ms=12 trace_id=4bf92f3577b34da6a3ce929d0e0e4736`, i%1000000, i)
		}},
		// The json lines as the kubelet's runtime writes them, stdout and stderr.
		{"cri-json", FormatCRI, func(i int) string {
			stream := "stdout"
			if i%4 == 0 {
				stream = "stderr"
			}
			return fmt.Sprintf("2024-05-01T10:00:00.%09dZ %s F "+payload, i, stream, i%1000000, i)
		}},
		// The json lines as Docker's json-file writes them.
		{"docker-json", FormatDocker, func(i int) string {
			b, _ := json.Marshal(map[string]string{"log": fmt.Sprintf(payload, i%1000000, i) + "\n", "stream": "stdout", "time": fmt.Sprintf("2024-05-01T10:00:00.%09dZ", i)})
			return string(b)
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
			cfg := Config{Name: "bench", Path: path, Format: f.format, Multiline: multiline.Config{FlushAfter: time.Millisecond}}
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

// BenchmarkReadLag writes 5,000 lines a second, a few every millisecond, to a file
// followed by a source whose sink acknowledges each batch one second after it got it
// (what the Loki exporter's batch.max_wait does), and reports how long after its
// write each line reached the sink: reading must not wait for acknowledgements.
func BenchmarkReadLag(b *testing.B) {
	const (
		perMs    = 5
		duration = 3 * time.Second
	)
	var lags []time.Duration
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		path := filepath.Join(dir, "app.log")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var acks sync.WaitGroup
		sink := pipeline.SinkFunc(func(_ context.Context, batch pipeline.Batch) error {
			now := time.Now()
			mu.Lock()
			for _, r := range batch.Records {
				var ns int64
				if _, err := fmt.Sscanf(r.Line, "written=%d", &ns); err == nil {
					lags = append(lags, now.Sub(time.Unix(0, ns)))
				}
			}
			mu.Unlock()
			acks.Add(1)
			time.AfterFunc(time.Second, func() { batch.Done(nil); acks.Done() })
			return nil
		})
		off := false
		cfg := Config{Name: "bench", Path: path, Multiline: multiline.Config{StackTraces: &off}}
		src, err := New(cfg, Settings{Sink: sink, Metrics: NewMetrics(nil), DrainTimeout: 3 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- src.Run(ctx) }()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			b.Fatal(err)
		}
		tick := time.NewTicker(time.Millisecond)
		var buf bytes.Buffer
		for end := time.Now().Add(duration); time.Now().Before(end); {
			<-tick.C
			buf.Reset()
			now := time.Now().UnixNano()
			for range perMs {
				fmt.Fprintf(&buf, "written=%d some request was served in 12 ms\n", now)
			}
			if _, err := f.Write(buf.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		f.Close()
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		acks.Wait()
	}
	b.StopTimer()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	if len(lags) == 0 {
		b.Fatal("no lines reached the sink")
	}
	q := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-lag-ms")
	b.ReportMetric(q(0.99), "p99-lag-ms")
	b.ReportMetric(q(1), "max-lag-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkParseRuntimeLine parses one line of each runtime format: no allocation.
func BenchmarkParseRuntimeLine(b *testing.B) {
	cri := []byte(`2024-05-01T10:00:00.123456789Z stdout F {"level":"info","msg":"request served","path":"/api/v1/orders/1"}`)
	docker := []byte(`{"log":"{\"level\":\"info\",\"msg\":\"request served\",\"path\":\"/api/v1/orders/1\"}\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`)
	b.Run("cri", func(b *testing.B) {
		b.SetBytes(int64(len(cri)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := parseCRI(cri); !ok {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("docker", func(b *testing.B) {
		b.SetBytes(int64(len(docker)))
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var ok bool
			if _, buf, ok = parseDocker(docker, buf[:0]); !ok {
				b.Fatal("not parsed")
			}
		}
	})
}
