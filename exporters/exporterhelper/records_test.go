package exporterhelper

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// chunk is an item holding several records, like a chunk of spans.
type chunk struct{ seq, size, records int }

func chunkSize(c *chunk) int    { return c.size }
func chunkRecords(c *chunk) int { return c.records }

func chunks(records ...int) []chunk {
	out := make([]chunk, len(records))
	for i, n := range records {
		out[i] = chunk{seq: i, size: 1, records: n}
	}
	return out
}

func recordsOf(r *Request[chunk]) []int {
	var out []int
	for _, c := range r.Items {
		out = append(out, c.records)
	}
	return out
}

func newRecordBatcher(t *testing.T, maxBytes, maxRecords int) (*Batcher[chunk], *MemoryQueue[chunk]) {
	t.Helper()
	q := NewMemoryQueue[chunk]()
	b, err := NewBatcher(BatchConfig{MaxBytes: confval.ByteSize(maxBytes), MaxWait: time.Hour, MaxPendingBytes: 1 << 30},
		Settings{Name: "test"}, chunkSize, q, WithRecordCount(chunkRecords, maxRecords))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, q
}

func getChunkReq(t *testing.T, q *MemoryQueue[chunk]) *Request[chunk] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, ok := q.Get(ctx)
	if !ok {
		t.Fatal("no request arrived")
	}
	return r
}

func TestBatcherCutsAtMaxRecords(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]int // records per chunk, per Add
		want    [][]int // records per chunk, per request, in order (the last one flushed)
	}{
		{"fits", [][]int{{3, 3}, {3}}, [][]int{{3, 3, 3}}},
		{"cut before the chunk that would pass max", [][]int{{4, 4, 4}}, [][]int{{4, 4}, {4}}},
		{"cut across Adds", [][]int{{4, 4}, {4}}, [][]int{{4, 4}, {4}}},
		{"cut on reaching max exactly", [][]int{{5, 5, 1}}, [][]int{{5, 5}, {1}}},
		{"reaching max in the fast path", [][]int{{6}, {4}, {2}}, [][]int{{6, 4}, {2}}},
		{"a chunk over max goes alone", [][]int{{2, 25, 2}}, [][]int{{2}, {25}, {2}}},
		{"empty chunks ride along", [][]int{{0, 10, 0}}, [][]int{{0, 10}, {0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, q := newRecordBatcher(t, 1000, 10)
			for _, batch := range tt.batches {
				if err := b.Add(context.Background(), chunks(batch...), nil); err != nil {
					t.Fatal(err)
				}
			}
			b.Flush()
			var got [][]int
			for q.Len() > 0 {
				r := getChunkReq(t, q)
				got = append(got, recordsOf(r))
				r.Done(nil)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("requests %v, want %v", got, tt.want)
			}
			for i := range got {
				if len(got[i]) != len(tt.want[i]) {
					t.Fatalf("requests %v, want %v", got, tt.want)
				}
				for j := range got[i] {
					if got[i][j] != tt.want[i][j] {
						t.Fatalf("requests %v, want %v", got, tt.want)
					}
				}
			}
		})
	}
}

func TestBatcherRecordLimitKeepsByteLimit(t *testing.T) {
	b, q := newRecordBatcher(t, 10, 100)
	in := []chunk{{size: 6, records: 1}, {size: 6, records: 1}, {size: 4, records: 1}}
	if err := b.Add(context.Background(), in, nil); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	r1, r2 := getChunkReq(t, q), getChunkReq(t, q)
	if r1.Bytes != 6 || r2.Bytes != 10 {
		t.Fatalf("requests of %d and %d bytes, want 6 and 10", r1.Bytes, r2.Bytes)
	}
}

// TestBatcherRandomRecordSplits checks over random chunks that every chunk arrives once
// and in order, and that no request of more than one chunk passes either limit.
func TestBatcherRandomRecordSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		maxBytes, maxRecords := 50+rng.IntN(200), 5+rng.IntN(50)
		b, q := newRecordBatcher(t, maxBytes, maxRecords)
		next := 0
		for range 40 {
			batch := make([]chunk, rng.IntN(10))
			for i := range batch {
				batch[i] = chunk{seq: next, size: 1 + rng.IntN(maxBytes), records: rng.IntN(maxRecords * 3 / 2)}
				next++
			}
			if err := b.Add(context.Background(), batch, nil); err != nil {
				t.Fatal(err)
			}
		}
		b.Flush()
		seen := 0
		for q.Len() > 0 {
			r := getChunkReq(t, q)
			records := 0
			for _, c := range r.Items {
				if c.seq != seen {
					t.Fatalf("round %d: chunk #%d arrived as #%d", round, c.seq, seen)
				}
				seen++
				records += c.records
			}
			if len(r.Items) > 1 && (records > maxRecords || r.Bytes > maxBytes) {
				t.Fatalf("round %d: request of %d chunks holds %d records, %d bytes; max %d, %d",
					round, len(r.Items), records, r.Bytes, maxRecords, maxBytes)
			}
			r.Done(nil)
		}
		if seen != next {
			t.Fatalf("round %d: %d chunks arrived, want %d", round, seen, next)
		}
		b.Close()
	}
}

func TestSenderCountsRecords(t *testing.T) {
	partial := pipeline.PartlyRejected("partial_success", 7, errors.New("7 spans rejected"))
	permanent := pipeline.Permanent("bad_request", errors.New("invalid"))
	var pushes int
	push := func(_ context.Context, cs []chunk) error {
		pushes++
		switch pushes {
		case 1:
			return nil
		case 2:
			return partial
		default:
			return permanent
		}
	}
	cfg := testConfig()
	cfg.Batch.MaxBytes = 1000
	m := NewMetrics(nil)
	logs := &exportertest.LogBuffer{}
	s, err := New(cfg, Settings{Name: "test", Metrics: m, Logger: logs.Logger()}, chunkSize, push, WithRecordCount(chunkRecords, 100))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	acks := exportertest.NewAcks()
	// Three requests of 100 records each, cut by the record limit alone.
	for i := range 3 {
		if err := s.Add(context.Background(), chunks(50, 50), acks.Func(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		acks.Wait(t, i)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := value(t, m.sentRecords.WithLabelValues("test")); v != 100+93 {
		t.Errorf("sent records %v, want 193 (a whole request and the partly rejected one's rest)", v)
	}
	if v := value(t, m.dropped.WithLabelValues("test", "partial_success")); v != 7 {
		t.Errorf("dropped partial_success %v, want 7", v)
	}
	if v := value(t, m.dropped.WithLabelValues("test", "bad_request")); v != 100 {
		t.Errorf("dropped bad_request %v, want 100", v)
	}
	if lines := logs.Lines(); len(lines) != 2 || !strings.Contains(lines[1], `"request_records":100`) {
		t.Errorf("drop log lines %q, want two counting records", lines)
	}
}

func TestRecordCountValidated(t *testing.T) {
	push := func(context.Context, []chunk) error { return nil }
	for _, opt := range []Option[chunk]{WithRecordCount(chunkRecords, -1), WithRecordCount[chunk](nil, 5)} {
		if _, err := New(testConfig(), Settings{Name: "x"}, chunkSize, push, opt); err == nil || !confval.IsConfigError(err) {
			t.Errorf("New with a bad record limit = %v, want a configuration error", err)
		}
	}
}
