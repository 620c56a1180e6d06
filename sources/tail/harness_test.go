package tail

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
)

// testSink records batches. It acknowledges them at once when auto is set; otherwise
// the test acknowledges them, in any order, or never.
type testSink struct {
	mu      sync.Mutex
	auto    bool
	ackErr  error
	batches []*gotBatch
	block   chan struct{} // when set, Export blocks until it is closed or ctx ends
}

type gotBatch struct {
	recs  []pipeline.Record
	ack   pipeline.AckFunc
	acked bool
}

func newSink(auto bool) *testSink { return &testSink{auto: auto} }

func (k *testSink) Export(ctx context.Context, b pipeline.Batch) error {
	k.mu.Lock()
	block := k.block
	k.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	k.mu.Lock()
	// The records are the source's again once acknowledged (pipeline.Batch): keep
	// a copy.
	g := &gotBatch{recs: slices.Clone(b.Records), ack: b.Ack}
	k.batches = append(k.batches, g)
	auto, err := k.auto, k.ackErr
	k.mu.Unlock()
	if auto {
		k.ackBatch(g, err)
	}
	return nil
}

func (k *testSink) ackBatch(g *gotBatch, err error) {
	k.mu.Lock()
	if g.acked {
		k.mu.Unlock()
		return
	}
	g.acked = true
	k.mu.Unlock()
	g.ack(err)
}

// ack acknowledges batch i (in order of arrival).
func (k *testSink) ack(i int, err error) {
	k.mu.Lock()
	g := k.batches[i]
	k.mu.Unlock()
	k.ackBatch(g, err)
}

func (k *testSink) ackAll() {
	k.mu.Lock()
	bs := append([]*gotBatch(nil), k.batches...)
	k.mu.Unlock()
	for _, g := range bs {
		k.ackBatch(g, nil)
	}
}

func (k *testSink) setAuto(on bool) {
	k.mu.Lock()
	k.auto = on
	k.mu.Unlock()
	if on {
		k.ackAll()
	}
}

func (k *testSink) numBatches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.batches)
}

func (k *testSink) batch(i int) []pipeline.Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.batches[i].recs
}

func (k *testSink) records() []pipeline.Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []pipeline.Record
	for _, b := range k.batches {
		out = append(out, b.recs...)
	}
	return out
}

func (k *testSink) lines() []string {
	var out []string
	for _, r := range k.records() {
		out = append(out, r.Line)
	}
	return out
}

// eventually fails the test if cond is not true within 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitLines(t testing.TB, k *testSink, n int) []string {
	t.Helper()
	eventually(t, fmt.Sprintf("%d lines", n), func() bool { return len(k.lines()) >= n })
	return k.lines()
}

// testConfig is a fast configuration for the files *.log in dir.
func testConfig(dir string) Config {
	return Config{
		Name:           "test",
		Path:           filepath.Join(dir, "*.log"),
		PollInterval:   20 * time.Millisecond,
		RescanInterval: 50 * time.Millisecond,
		Multiline:      multiline.Config{FlushAfter: 50 * time.Millisecond},
	}
}

func noStackTraces(c *Config) {
	off := false
	c.Multiline.StackTraces = &off
}

type harness struct {
	t       testing.TB
	src     *Source
	sink    *testSink
	metrics *Metrics
	cancel  context.CancelFunc
	done    chan error
}

// option changes a Source after New, before Run.
type option func(*Source)

func pollOnly(s *Source) { s.noNotify = true }

// start builds a Source and runs it until the test ends or stop is called.
func start(t testing.TB, cfg Config, sink *testSink, positions string, opts ...option) *harness {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	set := Settings{
		Metrics:       m,
		Sink:          sink,
		PositionsFile: positions,
		StreamLabels:  map[string]string{"service": "checkout", "namespace": ""},
		DrainTimeout:  200 * time.Millisecond,
		SyncInterval:  20 * time.Millisecond,
	}
	src, err := New(cfg, set)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, o := range opts {
		o(src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, src: src, sink: sink, metrics: m, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- src.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

// stop cancels Run and waits for it; it may be called more than once.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
}

// acked returns the acknowledged offset of the open file at path, or -1.
func (h *harness) acked(path string) int64 {
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	for _, t := range h.src.tailers {
		if t.path == path {
			return t.acked
		}
	}
	return -1
}

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
	}
	return 0
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

// numbered returns lines "<prefix> <i>\n" for i in [from, to).
func numbered(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %05d\n", prefix, i)
	}
	return b.String()
}

func numberedLines(prefix string, from, to int) []string {
	return strings.Split(strings.TrimSuffix(numbered(prefix, from, to), "\n"), "\n")
}

func readPositions(t testing.TB, path string) positionsFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pf positionsFile
	if err := json.Unmarshal(data, &pf); err != nil {
		t.Fatal(err)
	}
	return pf
}

func savedOffset(t testing.TB, positions, path string) int64 {
	t.Helper()
	for _, p := range readPositions(t, positions).Files {
		if p.Path == path {
			return p.Offset
		}
	}
	return -1
}

func equalLines(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d\nfirst got: %q\nfirst want: %q", len(got), len(want), head(got), head(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("line %d = %q; want %q", i, got[i], want[i])
		}
	}
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

// equalPerFile checks that got holds exactly the lines of each file, each file's in
// order: files read side by side interleave.
func equalPerFile(t testing.TB, got []string, files ...[]string) {
	t.Helper()
	total := 0
	for _, want := range files {
		total += len(want)
		prefix, _, _ := strings.Cut(want[0], " ")
		var mine []string
		for _, l := range got {
			if p, _, _ := strings.Cut(l, " "); p == prefix {
				mine = append(mine, l)
			}
		}
		equalLines(t, mine, want)
	}
	if len(got) != total {
		t.Fatalf("got %d lines, want %d: %q", len(got), total, got)
	}
}
