package tail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// quickRelease lets files no longer followed be closed soon after they are read.
func quickRelease(s *Source) { s.releaseQuiet = 20 * time.Millisecond }

// tailerOf returns the tailer following path, or nil.
func (h *harness) tailerOf(path string) *tailer {
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	for _, t := range h.src.tailers {
		if t.path == path {
			return t
		}
	}
	return nil
}

// knownSize returns the size the source last saw for path, or -1.
func (h *harness) knownSize(path string) int64 {
	t := h.tailerOf(path)
	if t == nil {
		return -1
	}
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	return t.size
}

// TestSmallBatchesDoNotStallReading: batches handed over at the end of the file count
// for their records, so a steadily written file is read at once even while the sink
// holds its batches unacknowledged (as an exporter does until its request fills up).
func TestSmallBatchesDoNotStallReading(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, "")
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 100
	cfg.MaxInflightBatches = 2
	noStackTraces(&cfg)
	sink := newSink(false)
	h := start(t, cfg, sink, "")
	eventually(t, "the file opened", func() bool { return value(h.src.m.filesOpen) == 1 })
	for i := range 60 {
		appendFile(t, a, numbered("line", i, i+1))
		waitLines(t, sink, i+1)
	}
	if n := sink.numBatches(); n < 30 {
		t.Fatalf("%d batches for 60 lines written one by one; want small batches", n)
	}
	// 200 records of room, 60 taken: one full batch still goes out, the next waits.
	appendFile(t, a, numbered("line", 60, 300))
	waitLines(t, sink, 160)
	time.Sleep(10 * cfg.PollInterval)
	if n := len(sink.lines()); n != 160 {
		t.Fatalf("%d records in flight; want 160 (at most max_inflight_batches × batch_max_lines = 200)", n)
	}
	sink.setAuto(true)
	equalLines(t, waitLines(t, sink, 300), numberedLines("line", 0, 300))
}

// TestCopytruncateReadsTheCopy: with the reader behind (nothing acknowledged), the
// file is copied and truncated; the unread part is read from the copy, whatever its
// name, the line cut by the truncation is dropped and counted, and the window between
// copy and truncation is counted as lost.
func TestCopytruncateReadsTheCopy(t *testing.T) {
	for _, copyName := range []string{"a.log.1", "a.log-20261206"} {
		for _, mode := range []struct {
			name string
			opts []option
		}{{"notify", nil}, {"poll", []option{pollOnly}}} {
			t.Run(copyName+"/"+mode.name, func(t *testing.T) {
				dir := t.TempDir()
				a := filepath.Join(dir, "a.log")
				before := numbered("line", 0, 1000) + "partial"
				writeFile(t, a, before)
				cfg := testConfig(dir)
				cfg.BatchMaxLines = 10
				cfg.MaxInflightBatches = 2
				noStackTraces(&cfg)
				sink := newSink(false)
				h := start(t, cfg, sink, filepath.Join(dir, "positions.json"), append(mode.opts, quickRelease)...)
				eventually(t, "the reader to stall", func() bool { return sink.numBatches() == 2 })

				// copytruncate: copy, the app writes on (the window), truncate.
				writeFile(t, filepath.Join(dir, copyName), before)
				window := " rest\n" + numbered("window", 0, 5)
				appendFile(t, a, window)
				eventually(t, "the window seen", func() bool { return h.knownSize(a) == int64(len(before)+len(window)) })
				if err := os.Truncate(a, 0); err != nil {
					t.Fatal(err)
				}
				appendFile(t, a, numbered("new", 0, 3))
				eventually(t, "the copy found", func() bool { return value(h.src.m.copies) == 1 })
				sink.setAuto(true)
				waitLines(t, sink, 1003)
				time.Sleep(5 * cfg.PollInterval)
				equalPerFile(t, sink.lines(), numberedLines("line", 0, 1000), numberedLines("new", 0, 3))
				if v := value(h.src.m.cutLines); v != 1 {
					t.Errorf("cut lines dropped = %v; want 1 (\"partial\")", v)
				}
				if v, want := value(h.src.m.lostTruncated), float64(len(window)+len("partial")); v != want {
					t.Errorf("lost bytes = %v; want %v (the window and the cut line)", v, want)
				}
				eventually(t, "the copy released", func() bool { return value(h.src.m.filesOpen) == 1 })
				eventually(t, "the truncated file acknowledged", func() bool {
					return h.acked(a) == int64(len(numbered("new", 0, 3)))
				})
			})
		}
	}
}

// TestTruncatedWithoutCopyDropsTheCutLine: a file truncated in place, with an
// unfinished line read: the line is dropped and counted, never shipped cut.
func TestTruncatedWithoutCopyDropsTheCutLine(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, "one\nunfini")
	cfg := testConfig(dir)
	cfg.Multiline.FlushAfter = time.Hour
	noStackTraces(&cfg)
	sink := newSink(true)
	h := start(t, cfg, sink, "")
	waitLines(t, sink, 1)
	eventually(t, "the unfinished line read", func() bool { return value(h.src.m.bytesRead) == float64(len("one\nunfini")) })
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, "two\n")
	got := waitLines(t, sink, 2)
	equalLines(t, got, []string{"one", "two"})
	if v := value(h.src.m.cutLines); v != 1 {
		t.Errorf("cut lines dropped = %v; want 1", v)
	}
}

// TestRewrittenPastTheReadPosition: truncated and written again beyond the read
// position before the source looked: the new first bytes give it away.
func TestRewrittenPastTheReadPosition(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, numbered("old", 0, 3))
	cfg := testConfig(dir)
	sink := newSink(true)
	h := start(t, cfg, sink, "", pollOnly)
	waitLines(t, sink, 3)
	h.src.mu.Lock() // hold the reader while the file is replaced in place
	f, err := os.OpenFile(a, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		h.src.mu.Unlock()
		t.Fatal(err)
	}
	_, err = f.WriteString(numbered("rewritten", 0, 5))
	f.Close()
	h.src.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got := waitLines(t, sink, 8)
	equalLines(t, got, append(numberedLines("old", 0, 3), numberedLines("rewritten", 0, 5)...))
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the logged JSON records with message msg.
func (l *lockedBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.b.Bytes()))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return out
		} else if err != nil {
			return out
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
}

func logTo(l *lockedBuffer) option {
	return func(s *Source) {
		s.log = slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// TestStopReadsToTheEnd: lines written just before the stop, which the source has not
// even been told about, are read and shipped before Run returns.
func TestStopReadsToTheEnd(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	writeFile(t, a, numbered("line", 0, 10))
	cfg := testConfig(dir)
	cfg.PollInterval = time.Hour // no notifications, no polling: only the stop reads on
	cfg.RescanInterval = time.Hour
	cfg.BatchMaxLines = 100
	// The whole file fits the window: the drain is not held up by the acknowledgements'
	// pace, only by reading.
	cfg.MaxInflightBatches = 64
	// Acknowledged late, as an exporter does.
	sink := newSink(false)
	var wg sync.WaitGroup
	stopAcks := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopAcks:
				return
			case <-time.After(30 * time.Millisecond):
				sink.ackAll()
			}
		}
	}()
	defer func() { close(stopAcks); wg.Wait() }()
	h := start(t, cfg, sink, positions, pollOnly)
	waitLines(t, sink, 10)
	appendFile(t, a, numbered("line", 10, 5000))
	h.stop()
	equalLines(t, sink.lines(), numberedLines("line", 0, 5000))
	if off := savedOffset(t, positions, a); off != int64(len(numbered("line", 0, 5000))) {
		t.Fatalf("saved offset %d; want the end of the file", off)
	}
}

// TestStopReportsWhatWasNotShipped: with the sink never acknowledging, the stop logs
// per file how many lines and bytes were not shipped.
func TestStopReportsWhatWasNotShipped(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	data := numbered("line", 0, 50)
	writeFile(t, a, data)
	var logs lockedBuffer
	sink := newSink(false)
	h := start(t, testConfig(dir), sink, "", logTo(&logs))
	waitLines(t, sink, 50)
	h.stop()
	recs := logs.records("stopping before these lines of the file were shipped; they are read again on the next start")
	if len(recs) != 1 {
		t.Fatalf("%d per-file reports; want 1", len(recs))
	}
	r := recs[0]
	if r["path"] != a || r["lines"] != float64(50) || r["bytes"] != float64(len(data)) {
		t.Errorf("report %v; want path %s, 50 lines, %d bytes", r, a, len(data))
	}
}

// TestRotationStormBoundsOpenFiles: files rotated faster than they can be shipped
// stay at most max_rotated_files open; the others are reopened by inode later, and a
// rotated file deleted meanwhile is counted as lost.
func TestRotationStormBoundsOpenFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	cfg := testConfig(dir)
	cfg.MaxRotatedFiles = 3
	cfg.BatchMaxLines = 10
	cfg.MaxInflightBatches = 1
	noStackTraces(&cfg)
	sink := newSink(false)
	writeFile(t, a, numbered("f00", 0, 20))
	h := start(t, cfg, sink, "", quickRelease)
	eventually(t, "the reader to stall", func() bool { return sink.numBatches() == 1 })

	var want [][]string
	want = append(want, numberedLines("f00", 0, 20))
	peak := 0.0
	const files = 20
	for i := 1; i < files; i++ {
		if err := os.Rename(a, filepath.Join(dir, fmt.Sprintf("a.log.%03d", i))); err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("f%02d", i)
		writeFile(t, a, numbered(prefix, 0, 20))
		want = append(want, numberedLines(prefix, 0, 20))
		eventually(t, "the rotation noticed", func() bool { return value(h.src.m.rotations) == float64(i) })
		time.Sleep(2 * cfg.PollInterval)
		peak = max(peak, value(h.src.m.filesOpen))
	}
	if limit := float64(cfg.MaxRotatedFiles + 1); peak > limit {
		t.Fatalf("%v files open at the peak; want at most max_rotated_files + 1 = %v", peak, limit)
	}
	// A parked rotated file (a.log.019 holds f18) is deleted before its turn: lost,
	// and counted.
	if err := os.Remove(filepath.Join(dir, "a.log.019")); err != nil {
		t.Fatal(err)
	}
	want[18] = want[18][:10] // read before it was parked

	sink.setAuto(true)
	eventually(t, "every file shipped", func() bool { return len(sink.lines()) >= 19*20+10 })
	time.Sleep(10 * cfg.PollInterval)
	equalPerFile(t, sink.lines(), want...)
	if v := value(h.src.m.lostDeleted); v != float64(len(numbered("f18", 10, 20))) {
		t.Errorf("lost bytes (deleted) = %v; want %d", v, len(numbered("f18", 10, 20)))
	}
	eventually(t, "rotated files released", func() bool { return value(h.src.m.filesOpen) == 1 })
}

// TestCopytruncateCompletesTheCutLine: the reader had half a line when the file was
// copied and truncated; the copy holds the rest of it.
func TestCopytruncateCompletesTheCutLine(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, "one\nhal")
	cfg := testConfig(dir)
	cfg.PollInterval = time.Hour // nothing is noticed until the stop reads on
	cfg.RescanInterval = time.Hour
	cfg.Multiline.FlushAfter = time.Hour
	noStackTraces(&cfg)
	sink := newSink(true)
	h := start(t, cfg, sink, "", pollOnly)
	waitLines(t, sink, 1)
	eventually(t, "the half line read", func() bool { return value(h.src.m.bytesRead) == float64(len("one\nhal")) })
	appendFile(t, a, "f\nmore\n")
	writeFile(t, filepath.Join(dir, "a.log.1"), "one\nhalf\nmore\n")
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, "new\n")
	h.stop()
	equalLines(t, sink.lines(), []string{"one", "half", "more", "new"})
	if v := value(h.src.m.cutLines); v != 0 {
		t.Errorf("cut lines dropped = %v; want 0", v)
	}
}

// TestCopytruncateSurvivesRestart: stopped while the copy's rest was still unshipped,
// the next start finds the copy by inode and ships the rest, then the truncated file.
func TestCopytruncateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	before := numbered("line", 0, 1000)
	writeFile(t, a, before)
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	cfg.MaxInflightBatches = 2
	noStackTraces(&cfg)
	sink := newSink(false)
	h := start(t, cfg, sink, positions)
	eventually(t, "the reader to stall", func() bool { return sink.numBatches() == 2 })
	sink.ack(0, nil)
	eventually(t, "the first batch acknowledged", func() bool { return h.acked(a) == int64(len(numbered("line", 0, 10))) })
	writeFile(t, a+".1", before)
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, numbered("new", 0, 3))
	eventually(t, "the copy found", func() bool { return value(h.src.m.copies) == 1 })
	h.stop() // nothing more acknowledged

	sink2 := newSink(true)
	start(t, cfg, sink2, positions)
	waitLines(t, sink2, 993)
	time.Sleep(5 * cfg.PollInterval)
	equalPerFile(t, sink2.lines(), numberedLines("line", 10, 1000), numberedLines("new", 0, 3))
}

// TestTruncationNoticedWhileTheSinkBlocks: the sink's Export blocks (the exporter's
// pending budget is used up); the reader still notices the copytruncate and takes
// hold of the copy before a later rotation could compress it away.
func TestTruncationNoticedWhileTheSinkBlocks(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	before := numbered("line", 0, 10000) // more than one read buffer
	writeFile(t, a, before)
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	cfg.MaxInflightBatches = 2
	noStackTraces(&cfg)
	sink := newSink(true)
	sink.block = make(chan struct{})
	h := start(t, cfg, sink, "")
	eventually(t, "the reader to stall", func() bool { return value(h.src.m.bytesRead) == readBufferSize })
	writeFile(t, a+".1", before)
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, numbered("new", 0, 3))
	eventually(t, "the copy found", func() bool { return value(h.src.m.copies) == 1 })
	if err := os.Remove(a + ".1"); err != nil { // compressed away: the open copy still reads
		t.Fatal(err)
	}
	sink.mu.Lock()
	close(sink.block)
	sink.block = nil
	sink.mu.Unlock()
	waitLines(t, sink, 10003)
	time.Sleep(5 * cfg.PollInterval)
	equalPerFile(t, sink.lines(), numberedLines("line", 0, 10000), numberedLines("new", 0, 3))
}

// TestOldLookalikeIsNotTheCopy: a file in the directory with the same first bytes,
// but written before the truncated file was opened, is not taken for its copy.
func TestOldLookalikeIsNotTheCopy(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	old := filepath.Join(dir, "a.log.7")
	writeFile(t, old, numbered("line", 0, 5)+numbered("older", 0, 5))
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	writeFile(t, a, numbered("line", 0, 5))
	cfg := testConfig(dir)
	noStackTraces(&cfg)
	sink := newSink(true)
	h := start(t, cfg, sink, "")
	waitLines(t, sink, 5)
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, numbered("new", 0, 2))
	waitLines(t, sink, 7)
	time.Sleep(5 * cfg.PollInterval)
	equalPerFile(t, sink.lines(), numberedLines("line", 0, 5), numberedLines("new", 0, 2))
	if v := value(h.src.m.copies); v != 0 {
		t.Errorf("read from a copy %v times; the old file is not a copy", v)
	}
}
