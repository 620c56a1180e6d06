package diskqueue

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

func benchConfig() Config {
	return Config{MaxSize: 256 << 20, SegmentSize: 8 << 20, Fsync: FsyncInterval}
}

// drain reads and acknowledges everything stored, freeing the queue's space.
func drain(b *testing.B, q *Queue) {
	n, _ := q.Len()
	for range n {
		e, err := q.Next(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		q.Ack(e.ID)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"16KiB", 16 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			q, err := Open(benchConfig(), Settings{Name: "bench", Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			p := payload(0, bc.size)
			ctx := context.Background()
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				err := q.Append(ctx, p)
				if errors.Is(err, ErrFull) {
					b.StopTimer()
					drain(b, q)
					b.StartTimer()
					err = q.Append(ctx, p)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendParallel appends from several goroutines, with fsync "always" (group
// commit) and "interval", while a consumer drains the queue.
func BenchmarkAppendParallel(b *testing.B) {
	for _, mode := range []string{FsyncInterval, FsyncAlways} {
		b.Run(mode, func(b *testing.B) {
			cfg := benchConfig()
			cfg.Fsync = mode
			q, err := Open(cfg, Settings{Name: "bench", Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			ctx, cancel := context.WithCancel(context.Background())
			consumed := make(chan struct{})
			go func() {
				defer close(consumed)
				for {
					e, err := q.Next(ctx)
					if err != nil {
						return
					}
					q.Ack(e.ID)
				}
			}()
			p := payload(0, 1<<10)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					for {
						err := q.Append(context.Background(), p)
						if err == nil {
							break
						}
						if !errors.Is(err, ErrFull) {
							b.Error(err)
							return
						}
						runtime.Gosched()
					}
				}
			})
			b.StopTimer()
			cancel()
			<-consumed
		})
	}
}

// BenchmarkAppendNextAck is the queue's steady state: a receiver appends while an
// exporter pump reads and acknowledges, at most 1024 entries behind.
func BenchmarkAppendNextAck(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"16KiB", 16 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			q, err := Open(benchConfig(), Settings{Name: "bench", Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			p := payload(0, bc.size)
			ctx := context.Background()
			lag := make(chan struct{}, 1024)
			done := make(chan error, 1)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for range b.N {
					e, err := q.Next(ctx)
					if err != nil {
						done <- err
						return
					}
					q.Ack(e.ID)
					<-lag
				}
				done <- nil
			}()
			for range b.N {
				lag <- struct{}{}
				if err := q.Append(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
