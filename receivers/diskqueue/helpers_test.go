package diskqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// smallConfig has the smallest segments, so a few 1000-byte entries span several.
func smallConfig() Config {
	return Config{MaxSize: 1 << 20, SegmentSize: MinSegmentSize, Fsync: FsyncNever}
}

// entrySize makes 4 entries fill a MinSegmentSize segment: 16 + 4*(8+1000) = 4048.
const entrySize = 1000

// payload returns entry i: its number, padded to size bytes.
func payload(i, size int) []byte {
	b := []byte(fmt.Sprintf("entry-%06d", i))
	if size > len(b) {
		b = append(b, bytes.Repeat([]byte{'x'}, size-len(b))...)
	}
	return b
}

// entryNum parses the number out of a payload made by payload.
func entryNum(t testing.TB, p []byte) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(string(p[:min(len(p), 12)]), "entry-%06d", &n); err != nil {
		t.Fatalf("payload %.20q is not a test entry: %v", p, err)
	}
	return n
}

type testQueue struct {
	*Queue
	metrics *Metrics
	logs    *logBuffer
}

func openQueue(t testing.TB, dir string, cfg Config) *testQueue {
	t.Helper()
	tq := &testQueue{metrics: NewMetrics(nil), logs: &logBuffer{}}
	q, err := Open(cfg, Settings{Name: "traces", Dir: dir, Logger: tq.logs.logger(), Metrics: tq.metrics})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tq.Queue = q
	t.Cleanup(func() { _ = q.Close() })
	return tq
}

func (tq *testQueue) corrupt(reason string) float64 {
	return value(tq.metrics.corrupt.WithLabelValues("traces", reason))
}

func (tq *testQueue) appendRange(t testing.TB, from, to, size int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := tq.Append(context.Background(), payload(i, size)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// next returns the next entry, failing the test if none comes within a generous
// deadline.
func (tq *testQueue) next(t testing.TB) Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := tq.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return e
}

// nextNums reads n entries and returns their numbers.
func (tq *testQueue) nextNums(t testing.TB, n int) ([]int, []Entry) {
	t.Helper()
	nums := make([]int, n)
	es := make([]Entry, n)
	for i := range n {
		es[i] = tq.next(t)
		nums[i] = entryNum(t, es[i].Payload)
	}
	return nums, es
}

// expectNoEntry checks that Next has nothing to hand out.
func (tq *testQueue) expectNoEntry(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	e, err := tq.Next(ctx)
	if err == nil {
		t.Fatalf("Next handed out %.20q; want nothing", e.Payload)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v; want context.DeadlineExceeded", err)
	}
}

// drainAll reads until nothing more comes, acks everything, and returns the numbers.
func (tq *testQueue) drainAll(t testing.TB) []int {
	t.Helper()
	var nums []int
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		e, err := tq.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return nums
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		nums = append(nums, entryNum(t, e.Payload))
		tq.Ack(e.ID)
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// segmentFiles lists the segment files in dir, oldest first.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// value reads a counter or gauge; for a histogram it returns the sample count.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	panic(fmt.Sprintf("unsupported metric %v", &d))
}

// logBuffer is a concurrency-safe slog destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) lines(substr string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
