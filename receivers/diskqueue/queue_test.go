package diskqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRoundTrip(t *testing.T) {
	for _, mode := range []string{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(mode, func(t *testing.T) {
			cfg := smallConfig()
			cfg.Fsync = mode
			dir := t.TempDir()
			q := openQueue(t, dir, cfg)
			payloads := [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0xff, 0}, 700), []byte("last")}
			for _, p := range payloads {
				if err := q.Append(context.Background(), p); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			n, size := q.Len()
			wantBytes := int64(headerSize + 4*frameSize + 5 + 0 + 1400 + 4)
			if n != len(payloads) || size != wantBytes {
				t.Fatalf("Len = %d, %d; want %d, %d", n, size, len(payloads), wantBytes)
			}
			if got := fileSize(t, segmentFiles(t, dir)[0]); got != wantBytes {
				t.Fatalf("segment file has %d bytes; want %d", got, wantBytes)
			}
			for i, want := range payloads {
				e := q.next(t)
				if !bytes.Equal(e.Payload, want) {
					t.Fatalf("entry %d = %.20q; want %.20q", i, e.Payload, want)
				}
				q.Ack(e.ID)
			}
			q.expectNoEntry(t)
			if n, _ := q.Len(); n != 0 {
				t.Fatalf("Len entries = %d after acking all; want 0", n)
			}
			if got := value(q.metrics.appendedEntries.WithLabelValues("traces")); got != 4 {
				t.Fatalf("appended entries metric = %v; want 4", got)
			}
			if got := value(q.metrics.appendedBytes.WithLabelValues("traces")); got != 1409 {
				t.Fatalf("appended bytes metric = %v; want 1409", got)
			}
			if got := value(q.metrics.ackedEntries.WithLabelValues("traces")); got != 4 {
				t.Fatalf("acked entries metric = %v; want 4", got)
			}
			if err := q.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if mode != FsyncNever && value(q.metrics.fsyncDuration.WithLabelValues("traces").(prometheus.Metric)) == 0 {
				t.Fatal("no fsync observed")
			}
		})
	}
}

func TestOrderAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, 50, entrySize)
	if files := segmentFiles(t, dir); len(files) != 13 {
		t.Fatalf("%d segment files for 50 entries of 4 per segment; want 13", len(files))
	}
	got, _ := q.nextNums(t, 50)
	if !equalInts(got, seq(0, 50)) {
		t.Fatalf("entries out of order: %v", got)
	}
}

// TestReaderFollowsWriter reads entries while they are appended, including across
// rotations of the segment being read.
func TestReaderFollowsWriter(t *testing.T) {
	q := openQueue(t, t.TempDir(), smallConfig())
	const n = 200
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := q.Append(context.Background(), payload(i, 10+i*7%900)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		e := q.next(t)
		if got := entryNum(t, e.Payload); got != i {
			t.Fatalf("entry %d is %d", i, got)
		}
		if len(e.Payload) != max(12, 10+i*7%900) {
			t.Fatalf("entry %d has %d bytes", i, len(e.Payload))
		}
		q.Ack(e.ID)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestOutOfOrderAcksDeleteSegments(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, 12, entrySize) // segments 1, 2, 3 with 4 entries each
	const segBytes = headerSize + 4*(frameSize+entrySize)
	files := segmentFiles(t, dir)
	if len(files) != 3 {
		t.Fatalf("%d segment files; want 3", len(files))
	}
	_, es := q.nextNums(t, 12)

	step := func(name string, ack []int, wantFiles []string, wantEntries int, wantBytes int64) {
		t.Helper()
		for _, i := range ack {
			q.Ack(es[i].ID)
		}
		if got := segmentFiles(t, dir); !equalStrings(got, wantFiles) {
			t.Fatalf("%s: segment files %v; want %v", name, got, wantFiles)
		}
		n, size := q.Len()
		if n != wantEntries || size != wantBytes {
			t.Fatalf("%s: Len = %d, %d; want %d, %d", name, n, size, wantEntries, wantBytes)
		}
		if got := value(q.metrics.bytes.WithLabelValues("traces")); got != float64(wantBytes) {
			t.Fatalf("%s: bytes gauge %v; want %d", name, got, wantBytes)
		}
		if got := value(q.metrics.entries.WithLabelValues("traces")); got != float64(wantEntries) {
			t.Fatalf("%s: entries gauge %v; want %d", name, got, wantEntries)
		}
	}
	step("segment 2 acked first", []int{7, 5, 4, 6}, files, 8, 3*segBytes)
	step("segment 1 but its first", []int{3, 1, 2}, files, 5, 3*segBytes)
	step("first entry", []int{0}, files[2:], 4, segBytes)
	step("twice", []int{0, 4}, files[2:], 4, segBytes)
	// The segment being written stays, even when all of it is acknowledged.
	step("segment 3", []int{8, 9, 10, 11}, files[2:], 0, segBytes)

	// The reader moves on to a new segment: the old one goes.
	q.appendRange(t, 12, 14, entrySize)
	nums, es2 := q.nextNums(t, 2)
	if !equalInts(nums, []int{12, 13}) {
		t.Fatalf("entries %v; want [12 13]", nums)
	}
	q.Ack(es2[0].ID)
	q.Ack(es2[1].ID)
	if got := segmentFiles(t, dir); len(got) != 1 || got[0] == files[2] {
		t.Fatalf("segment files %v; want only the new one", got)
	}
}

func equalStrings(a, b []string) bool {
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

func TestRestartAfterClose(t *testing.T) {
	t.Run("in-order acks: exactly the unacked", func(t *testing.T) {
		dir := t.TempDir()
		q := openQueue(t, dir, smallConfig())
		q.appendRange(t, 0, 20, entrySize)
		_, es := q.nextNums(t, 12)
		for _, i := range []int{1, 0, 3, 2, 4, 5, 6, 7, 9, 8} {
			q.Ack(es[i].ID)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q2 := openQueue(t, dir, smallConfig())
		if n, _ := q2.Len(); n != 10 {
			t.Fatalf("Len entries after restart = %d; want 10", n)
		}
		if got := segmentFiles(t, dir); len(got) != 4 {
			// Segments 1 and 2 were acked and deleted; 3, 4 and 5 remain, plus the new one.
			t.Fatalf("segment files after restart %v; want 4", got)
		}
		if got := q2.drainAll(t); !equalInts(got, seq(10, 20)) {
			t.Fatalf("after restart got %v; want 10..19", got)
		}
		if n, _ := q2.Len(); n != 0 {
			t.Fatalf("Len entries = %d after draining; want 0", n)
		}
		if got := segmentFiles(t, dir); len(got) != 1 {
			t.Fatalf("segment files after draining %v; want only the one being written", got)
		}
		// New appends after a restart go on in order.
		q2.appendRange(t, 20, 23, entrySize)
		if err := q2.Close(); err != nil {
			t.Fatal(err)
		}
		q3 := openQueue(t, dir, smallConfig())
		if got := q3.drainAll(t); !equalInts(got, seq(20, 23)) {
			t.Fatalf("after second restart got %v; want 20..22", got)
		}
	})
	t.Run("a gap: from the first unacked", func(t *testing.T) {
		dir := t.TempDir()
		q := openQueue(t, dir, smallConfig())
		q.appendRange(t, 0, 10, entrySize)
		_, es := q.nextNums(t, 6)
		for _, i := range []int{0, 1, 3, 4} { // 2 is still out
			q.Ack(es[i].ID)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q2 := openQueue(t, dir, smallConfig())
		if got := q2.drainAll(t); !equalInts(got, seq(2, 10)) {
			t.Fatalf("after restart got %v; want 2..9 (3 and 4 again: acknowledged after the gap)", got)
		}
	})
	t.Run("nothing read", func(t *testing.T) {
		dir := t.TempDir()
		q := openQueue(t, dir, smallConfig())
		q.appendRange(t, 0, 5, entrySize)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q2 := openQueue(t, dir, smallConfig())
		if got := q2.drainAll(t); !equalInts(got, seq(0, 5)) {
			t.Fatalf("after restart got %v; want 0..4", got)
		}
	})
}

func TestUnreadableCursorRedeliversEverything(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, 6, 100)
	_, es := q.nextNums(t, 3)
	for _, e := range es {
		q.Ack(e.ID)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, cursorName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, dir, smallConfig())
	if got := q2.drainAll(t); !equalInts(got, seq(0, 6)) {
		t.Fatalf("got %v; want 0..5 again", got)
	}
	if len(q2.logs.lines("queue cursor unreadable")) != 1 {
		t.Fatalf("want one warning about the cursor; logs:\n%s", q2.logs)
	}
}

func TestFull(t *testing.T) {
	cfg := smallConfig()
	cfg.MaxSize = 2 * cfg.SegmentSize
	dir := t.TempDir()
	q := openQueue(t, dir, cfg)
	q.appendRange(t, 0, 8, entrySize) // two full segments: 8096 bytes
	err := q.Append(context.Background(), payload(8, entrySize))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append to a full queue: %v; want ErrFull", err)
	}
	for _, want := range []string{`"traces"`, "8096B", "8KiB", "max_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if got := value(q.metrics.rejectedFull.WithLabelValues("traces")); got != 1 {
		t.Fatalf("rejected_full = %v; want 1", got)
	}
	// A smaller entry still fitting in the current segment is not refused for size.
	if n, _ := q.Len(); n != 8 {
		t.Fatalf("Len = %d; want 8 (the refused entry is not stored)", n)
	}
	_, es := q.nextNums(t, 4)
	for _, e := range es[:3] {
		q.Ack(e.ID)
	}
	if err := q.Append(context.Background(), payload(8, entrySize)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append before the first segment is acked: %v; want ErrFull", err)
	}
	q.Ack(es[3].ID)
	q.appendRange(t, 8, 12, entrySize)
	if got := q.drainAll(t); !equalInts(got, seq(4, 12)) {
		t.Fatalf("got %v; want 4..11", got)
	}
}

func TestTooLarge(t *testing.T) {
	q := openQueue(t, t.TempDir(), smallConfig())
	limit := int(MinSegmentSize) - framing
	err := q.Append(context.Background(), make([]byte, limit+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of %d bytes: %v; want ErrTooLarge", limit+1, err)
	}
	if !strings.Contains(err.Error(), "segment_size") {
		t.Errorf("error %q does not say what to raise", err)
	}
	big := payload(1, limit)
	if err := q.Append(context.Background(), big); err != nil {
		t.Fatalf("Append of exactly %d bytes: %v", limit, err)
	}
	q.appendRange(t, 2, 3, 10)
	if e := q.next(t); !bytes.Equal(e.Payload, big) {
		t.Fatal("the largest entry did not round-trip")
	}
	if got := entryNum(t, q.next(t).Payload); got != 2 {
		t.Fatalf("entry after the largest is %d; want 2", got)
	}
}

func TestRewind(t *testing.T) {
	q := openQueue(t, t.TempDir(), smallConfig())
	q.appendRange(t, 0, 10, entrySize)
	_, es := q.nextNums(t, 6)
	q.Ack(es[1].ID)
	q.Ack(es[3].ID)
	q.Ack(es[4].ID)
	q.Rewind()
	got, es2 := q.nextNums(t, 6)
	if want := []int{0, 2, 5, 6, 7, 8}; !equalInts(got, want) {
		t.Fatalf("after Rewind got %v; want %v", got, want)
	}
	before, _ := q.Len()
	q.Ack(es[0].ID) // handed out before the Rewind: ignored, though 0 is out again
	q.Ack(es[2].ID)
	if after, _ := q.Len(); after != before || before != 7 {
		t.Fatalf("Len %d before and %d after acking old IDs; want 7 both", before, after)
	}
	// A second Rewind with some of the new ones acked.
	q.Ack(es2[1].ID) // 2
	q.Ack(es2[4].ID) // 7
	q.Rewind()
	if got := q.drainAll(t); !equalInts(got, []int{0, 5, 6, 8, 9}) {
		t.Fatalf("after the second Rewind got %v; want [0 5 6 8 9]", got)
	}
	if n, _ := q.Len(); n != 0 {
		t.Fatalf("Len = %d after acking everything; want 0", n)
	}
	// Rewind with nothing outstanding changes nothing.
	q.Rewind()
	q.expectNoEntry(t)
}

func TestCloseUnblocksNext(t *testing.T) {
	q, err := Open(smallConfig(), Settings{Name: "logs", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := q.Next(context.Background())
			errc <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them block; the test holds without it too
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked Next returned %v; want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not unblock Next")
		}
	}
	if err := q.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v; want ErrClosed", err)
	}
	if _, err := q.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v; want ErrClosed", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	q.Ack(ID{})
	q.Rewind()
}

func TestNextContext(t *testing.T) {
	q := openQueue(t, t.TempDir(), smallConfig())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := q.Next(ctx)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next: %v; want context.Canceled", err)
	}
	if err := q.Append(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a done context: %v; want context.Canceled", err)
	}
}

func TestLockConflict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue", "traces")
	q := openQueue(t, dir, smallConfig())
	_, err := Open(smallConfig(), Settings{Name: "traces", Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v; want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the directory", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, err := Open(smallConfig(), Settings{Name: "traces", Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Fatalf("queue directory mode %o; want 700", perm)
	}
	for _, f := range segmentFiles(t, dir) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Fatalf("segment %s mode %o; want 600", f, perm)
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := Open(Config{SegmentSize: 1 << 20, MaxSize: 1 << 20}, Settings{Name: "logs", Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "max_size") {
		t.Fatalf("Open with max_size < 2*segment_size: %v; want a max_size problem", err)
	}
	if _, err := Open(smallConfig(), Settings{Name: "logs"}); err == nil {
		t.Fatal("Open without a directory succeeded")
	}
}

// TestConcurrentAppendersAndReader runs appenders against a reader acknowledging in
// a different order, with fsync "always"; run with -race.
func TestConcurrentAppendersAndReader(t *testing.T) {
	cfg := smallConfig()
	cfg.Fsync = FsyncAlways
	cfg.MaxSize = 64 << 20
	q := openQueue(t, t.TempDir(), cfg)
	const writers, each = 8, 150
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := q.Append(context.Background(), payload(w*each+i, 20+i%300)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	seen := make(map[int]bool)
	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	var held []ID
	for range writers * each {
		e := q.next(t)
		n := entryNum(t, e.Payload)
		if seen[n] {
			t.Fatalf("entry %d handed out twice", n)
		}
		seen[n] = true
		w, i := n/each, n%each
		if i <= last[w] {
			t.Fatalf("writer %d: entry %d after %d", w, i, last[w])
		}
		last[w] = i
		held = append(held, e.ID)
		if len(held) == 5 { // ack in reverse, like several workers
			for j := len(held) - 1; j >= 0; j-- {
				q.Ack(held[j])
			}
			held = held[:0]
		}
	}
	for _, id := range held {
		q.Ack(id)
	}
	wg.Wait()
	if n, _ := q.Len(); n != 0 {
		t.Fatalf("Len = %d; want 0", n)
	}
}

// TestConcurrentNext has several consumers share one queue: each entry goes to one.
func TestConcurrentNext(t *testing.T) {
	q := openQueue(t, t.TempDir(), smallConfig())
	const n = 400
	var mu sync.Mutex
	seen := make(map[int]int)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				e, err := q.Next(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				seen[entryNum(t, e.Payload)]++
				done := len(seen) == n
				mu.Unlock()
				q.Ack(e.ID)
				if done {
					cancel()
				}
			}
		})
	}
	q.appendRange(t, 0, n, 50)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Error("consumers did not get every entry")
		cancel()
	}
	wg.Wait()
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("entry %d handed out %d times", i, seen[i])
		}
	}
}

// gatedFile blocks its first Sync until the gate is closed and counts Syncs.
type gatedFile struct {
	segmentFile
	gate  chan struct{}
	once  sync.Once
	syncs *countingInt
}

type countingInt struct {
	mu sync.Mutex
	n  int
}

func (c *countingInt) inc() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *countingInt) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (f *gatedFile) Sync() error {
	f.once.Do(func() { <-f.gate })
	f.syncs.inc()
	return f.segmentFile.Sync()
}

// TestGroupCommit: while one fsync runs, the appenders that wrote meanwhile wait and
// then share the next one.
func TestGroupCommit(t *testing.T) {
	gate := make(chan struct{})
	syncs := &countingInt{}
	wrapSegmentFiles(t, func(_ string, f segmentFile) segmentFile {
		return &gatedFile{segmentFile: f, gate: gate, syncs: syncs}
	})

	cfg := smallConfig()
	cfg.Fsync = FsyncAlways
	q := openQueue(t, t.TempDir(), cfg)
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release) // runs before Close, also when the test fails early
	const appenders = 8
	errc := make(chan error, appenders)
	go func() { errc <- q.Append(context.Background(), payload(0, 10)) }()
	waitFor(t, "the first fsync to start", func() bool { q.smu.Lock(); defer q.smu.Unlock(); return q.syncing })
	for i := 1; i < appenders; i++ {
		go func() { errc <- q.Append(context.Background(), payload(i, 10)) }()
	}
	waitFor(t, "all appenders to write", func() bool {
		return value(q.metrics.appendedEntries.WithLabelValues("traces")) == appenders
	})
	select {
	case err := <-errc:
		t.Fatalf("an Append returned (%v) before its fsync", err)
	default:
	}
	release()
	for range appenders {
		if err := <-errc; err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if got := syncs.get(); got != 2 {
		t.Fatalf("%d fsyncs for %d appenders; want 2 (the blocked one, then one for all the others)", got, appenders)
	}
}

// wrapSegmentFiles makes the queue's new segment files wrap(path, file) for the
// rest of the test.
func wrapSegmentFiles(t *testing.T, wrap func(path string, f segmentFile) segmentFile) {
	orig := createSegmentFile
	createSegmentFile = func(path string) (segmentFile, error) {
		f, err := orig(path)
		if err != nil {
			return nil, err
		}
		return wrap(path, f), nil
	}
	t.Cleanup(func() { createSegmentFile = orig })
}

// waitFor polls cond until it holds; the deadline is generous and not a timing
// assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIntervalFsync(t *testing.T) {
	syncs := &countingInt{}
	gate := make(chan struct{})
	close(gate)
	wrapSegmentFiles(t, func(_ string, f segmentFile) segmentFile {
		return &gatedFile{segmentFile: f, gate: gate, syncs: syncs}
	})
	cfg := smallConfig()
	cfg.Fsync = FsyncInterval
	cfg.FsyncInterval = 5 * time.Millisecond
	q := openQueue(t, t.TempDir(), cfg)
	q.appendRange(t, 0, 3, 10)
	waitFor(t, "a background fsync", func() bool { return syncs.get() > 0 })
	waitFor(t, "the writes to be covered", func() bool { return !q.dirty() })
}

// syncCountingFile counts the fsyncs of one segment file by its path.
type syncCountingFile struct {
	segmentFile
	path  string
	syncs *syncCounts
}

type syncCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *syncCountingFile) Sync() error {
	f.syncs.mu.Lock()
	f.syncs.n[filepath.Base(f.path)]++
	f.syncs.mu.Unlock()
	return f.segmentFile.Sync()
}

// TestDeliveredSegmentsAreNotFsynced: a rotated-out segment whose entries are all
// acknowledged (and so deleted) is closed without an fsync; the others are fsynced.
func TestDeliveredSegmentsAreNotFsynced(t *testing.T) {
	syncs := &syncCounts{n: map[string]int{}}
	wrapSegmentFiles(t, func(path string, f segmentFile) segmentFile {
		return &syncCountingFile{segmentFile: f, path: path, syncs: syncs}
	})
	cfg := smallConfig()
	cfg.Fsync = FsyncInterval
	cfg.FsyncInterval = time.Hour // rounds only when the test runs one
	q := openQueue(t, t.TempDir(), cfg)
	q.appendRange(t, 0, 9, entrySize) // segments 1 (0-3), 2 (4-7) and 3 (8)
	_, es := q.nextNums(t, 5)         // the reader moves into segment 2
	for _, e := range es[:4] {
		q.Ack(e.ID)
	}
	if err := q.syncNow(); err != nil {
		t.Fatalf("fsync round: %v", err)
	}
	syncs.mu.Lock()
	defer syncs.mu.Unlock()
	want := map[string]int{segmentName(2): 1, segmentName(3): 1}
	if len(syncs.n) != len(want) || syncs.n[segmentName(2)] != 1 || syncs.n[segmentName(3)] != 1 {
		t.Fatalf("fsyncs per segment %v; want %v (segment 1 is delivered and deleted)", syncs.n, want)
	}
	if q.dirty() {
		t.Fatal("the queue still has writes to fsync after a round")
	}
}

func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	q, err := Open(smallConfig(), Settings{Name: "logs", Dir: t.TempDir(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Append(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	m.corrupt.WithLabelValues("logs", ReasonChecksum)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		for _, mt := range f.GetMetric() {
			if mt.GetLabel()[0].GetName() != "queue" || mt.GetLabel()[0].GetValue() != "logs" {
				t.Errorf("%s has labels %v; want queue=logs first", f.GetName(), mt.GetLabel())
			}
		}
	}
	for _, want := range []string{"outrider_queue_bytes", "outrider_queue_entries", "outrider_queue_appended_entries_total",
		"outrider_queue_appended_bytes_total", "outrider_queue_corrupt_total", "outrider_queue_fsync_duration_seconds"} {
		if !names[want] {
			t.Errorf("metric %s not gathered; have %v", want, names)
		}
	}
	// A second queue may share the metrics (after a reload): nothing registers twice.
	q2, err := Open(smallConfig(), Settings{Name: "traces", Dir: t.TempDir(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(ID{seg: 1, off: 16}); s != "1:16" {
		t.Errorf("ID prints as %q; want 1:16", s)
	}
}

// TestSegmentSizeChangedBetweenRuns: entries written under a larger segment_size are
// still read after it is lowered; the limit comes from each segment's header.
func TestSegmentSizeChangedBetweenRuns(t *testing.T) {
	dir := t.TempDir()
	big := smallConfig()
	big.SegmentSize = 16 << 10
	q := openQueue(t, dir, big)
	q.appendRange(t, 0, 3, 10000)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2 := openQueue(t, dir, smallConfig())
	if got := q2.drainAll(t); !equalInts(got, seq(0, 3)) {
		t.Fatalf("got %v; want 0..2", got)
	}
	if err := q2.Append(context.Background(), payload(3, 10000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of 10000 bytes with 4KiB segments: %v; want ErrTooLarge", err)
	}
}
