package tail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestRecords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, `{"level":"error","msg":"boom","ts":"2024-05-01T10:00:00Z","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`+"\nplain line\n")
	cfg := testConfig(dir)
	cfg.Labels = map[string]string{"team": "payments"}
	sink := newSink(true)
	before := time.Now()
	start(t, cfg, sink, "")
	waitLines(t, sink, 2)
	recs := sink.records()

	r := recs[0]
	if r.Level != pipeline.LevelError || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("parsed fields: level %q trace %q; want error and the trace id", r.Level, r.TraceID)
	}
	if want := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC); !r.Time.Equal(want) {
		t.Errorf("Time = %v; want the parsed %v", r.Time, want)
	}
	if r.Stream == nil || recs[1].Stream != r.Stream {
		t.Fatal("records of one source must share one *Stream")
	}
	wantLabels := []pipeline.Label{{Name: "service", Value: "checkout"}, {Name: "source", Value: "test"}, {Name: "team", Value: "payments"}}
	if len(r.Stream.Labels) != len(wantLabels) {
		t.Fatalf("stream labels %v; want %v (empty values left out)", r.Stream.Labels, wantLabels)
	}
	for i, l := range wantLabels {
		if r.Stream.Labels[i] != l {
			t.Errorf("stream label %d = %v; want %v", i, r.Stream.Labels[i], l)
		}
	}
	if len(r.Metadata) != 1 || r.Metadata[0] != (pipeline.Label{Name: "filename", Value: path}) {
		t.Errorf("metadata %v; want filename=%s", r.Metadata, path)
	}

	r = recs[1]
	if r.Line != "plain line" || r.Level != pipeline.LevelUnknown {
		t.Errorf("record %q level %q; want the plain line with no level", r.Line, r.Level)
	}
	if r.Time.Before(before) || r.Time.After(time.Now()) {
		t.Errorf("Time = %v; want the read time", r.Time)
	}
}

// scenario is file activity a source must follow, checked with notifications and with
// polling alone.
type scenario struct {
	name string
	run  func(t *testing.T, dir string, h *harness)
}

var scenarios = []scenario{
	{"new files are picked up", func(t *testing.T, dir string, h *harness) {
		a := filepath.Join(dir, "a.log")
		writeFile(t, a, "a1\n")
		waitLines(t, h.sink, 1)
		appendFile(t, a, "a2\n")
		writeFile(t, filepath.Join(dir, "b.log"), "b1\n")
		writeFile(t, filepath.Join(dir, "skip.txt"), "not matched\n")
		writeFile(t, filepath.Join(dir, "c.gz.log"), "excluded\n")
		got := waitLines(t, h.sink, 3)
		eventually(t, "2 files open", func() bool { return value(h.src.m.filesOpen) == 2 })
		if strings.Join(got, ",") != "a1,a2,b1" && strings.Join(got, ",") != "a1,b1,a2" {
			t.Errorf("lines %q; want a1, a2 and b1", got)
		}
	}},
	{"rename and create", func(t *testing.T, dir string, h *harness) {
		a := filepath.Join(dir, "a.log")
		writeFile(t, a, numbered("old", 0, 3))
		waitLines(t, h.sink, 3)
		f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(a, a+".1"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, a, numbered("new", 0, 2))
		if _, err := f.WriteString(numbered("old", 3, 5)); err != nil { // the app has not reopened yet
			t.Fatal(err)
		}
		f.Close()
		got := waitLines(t, h.sink, 7)
		equalPerFile(t, got, numberedLines("old", 0, 5), numberedLines("new", 0, 2))
		eventually(t, "the rotated file closed", func() bool { return value(h.src.m.filesOpen) == 1 })
		if v := value(h.src.m.rotations); v != 1 {
			t.Errorf("rotations = %v; want 1", v)
		}
	}},
	{"rename within the glob and create", func(t *testing.T, dir string, h *harness) {
		a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
		writeFile(t, a, numbered("old", 0, 3))
		waitLines(t, h.sink, 3)
		if err := os.Rename(a, b); err != nil {
			t.Fatal(err)
		}
		writeFile(t, a, numbered("new", 0, 2))
		equalPerFile(t, waitLines(t, h.sink, 5), numberedLines("old", 0, 3), numberedLines("new", 0, 2))
		// The renamed file is still matched: it stays open under its new name.
		eventually(t, "both files open", func() bool { return value(h.src.m.filesOpen) == 2 })
		appendFile(t, b, "old again\n")
		got := waitLines(t, h.sink, 6)
		if got[5] != "old again" {
			t.Fatalf("lines %q; want the renamed file still followed", got)
		}
		if r := h.sink.records()[5]; r.Metadata[0].Value != b {
			t.Errorf("filename %q; want the new name %s", r.Metadata[0].Value, b)
		}
		if v := value(h.src.m.rotations); v != 1 {
			t.Errorf("rotations = %v; want 1", v)
		}
	}},
	{"copytruncate", func(t *testing.T, dir string, h *harness) {
		a := filepath.Join(dir, "a.log")
		writeFile(t, a, numbered("before", 0, 5))
		waitLines(t, h.sink, 5)
		if err := os.Truncate(a, 0); err != nil {
			t.Fatal(err)
		}
		appendFile(t, a, "after 1\n")
		got := waitLines(t, h.sink, 6)
		equalLines(t, got, append(numberedLines("before", 0, 5), "after 1"))
		if v := value(h.src.m.truncations); v != 1 {
			t.Errorf("truncations = %v; want 1", v)
		}
		eventually(t, "offset acknowledged after truncation", func() bool { return h.acked(a) == int64(len("after 1\n")) })
	}},
	{"deleted file is drained then closed", func(t *testing.T, dir string, h *harness) {
		a := filepath.Join(dir, "a.log")
		writeFile(t, a, "first\n")
		waitLines(t, h.sink, 1)
		appendFile(t, a, numbered("more", 0, 500))
		if err := os.Remove(a); err != nil {
			t.Fatal(err)
		}
		got := waitLines(t, h.sink, 501)
		equalLines(t, got, append([]string{"first"}, numberedLines("more", 0, 500)...))
		eventually(t, "the deleted file closed", func() bool { return value(h.src.m.filesOpen) == 0 })
	}},
}

func TestFileEvents(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []option
	}{{"notify", nil}, {"poll", []option{pollOnly}}} {
		for _, sc := range scenarios {
			t.Run(mode.name+"/"+sc.name, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				cfg.Exclude = []string{"*.gz.log"}
				if mode.name == "poll" {
					// Rescans are rare: polling the open files must find rotations itself.
					cfg.RescanInterval = 200 * time.Millisecond
				}
				h := start(t, cfg, newSink(true), filepath.Join(dir, "positions.json"), mode.opts...)
				sc.run(t, dir, h)
			})
		}
	}
}

func TestPositionsFileNeverTailed(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Path = filepath.Join(dir, "*")
	sink := newSink(true)
	h := start(t, cfg, sink, filepath.Join(dir, "positions.json"))
	writeFile(t, filepath.Join(dir, "app"), "line\n")
	waitLines(t, sink, 1)
	eventually(t, "a few saves", func() bool {
		_, err := os.Stat(filepath.Join(dir, "positions.json"))
		return err == nil
	})
	time.Sleep(5 * cfg.PollInterval)
	h.stop()
	if got := sink.lines(); len(got) != 1 {
		t.Fatalf("lines %q; the positions file must not be tailed", got)
	}
}

// TestRotationDoesNotWaitForAcks: the file that took a rotated file's path is read
// (and watched for truncation) while the old one still waits for acknowledgements.
func TestRotationDoesNotWaitForAcks(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, numbered("old", 0, 3))
	sink := newSink(false)
	h := start(t, testConfig(dir), sink, "")
	waitLines(t, sink, 3)
	if err := os.Rename(a, a+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, a, numbered("new", 0, 2))
	eventually(t, "the rotation noticed", func() bool { return value(h.src.m.rotations) == 1 })
	got := waitLines(t, sink, 5)
	equalLines(t, got, append(numberedLines("old", 0, 3), numberedLines("new", 0, 2)...))

	// Truncated while the old file's batch is still unacknowledged: noticed.
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, "after\n")
	got = waitLines(t, sink, 6)
	if got[5] != "after" {
		t.Fatalf("lines %q; want the truncated file read again", got)
	}
	if v := value(h.src.m.truncations); v != 1 {
		t.Errorf("truncations = %v; want 1", v)
	}
	sink.setAuto(true)
	eventually(t, "the rotated file closed", func() bool { return value(h.src.m.filesOpen) == 1 })
}

func TestCheckpointAdvancesOnlyOnAck(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	writeFile(t, a, numbered("line", 0, 10000))
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 100
	cfg.MaxInflightBatches = 16
	sink := newSink(false)
	h := start(t, cfg, sink, positions)

	// Acknowledge the first 50 batches (5000 lines) only, while the source reads on
	// up to max_inflight_batches.
	for i := 0; i < 50; i++ {
		eventually(t, "a batch", func() bool { return sink.numBatches() > i })
		if n := len(sink.batch(i)); n != 100 {
			t.Fatalf("batch %d has %d records; want 100", i, n)
		}
		sink.ack(i, nil)
	}
	half := int64(len(numbered("line", 0, 5000)))
	eventually(t, "the acknowledged offset", func() bool { return h.acked(a) == half })
	eventually(t, "the reader to stall", func() bool { return sink.numBatches() == 50+cfg.MaxInflightBatches })
	if v := value(h.src.m.batchesInflight); v != float64(cfg.MaxInflightBatches) {
		t.Errorf("batches_inflight = %v; want %d", v, cfg.MaxInflightBatches)
	}
	h.stop()
	if off := savedOffset(t, positions, a); off != half {
		t.Fatalf("saved offset %d; want %d (the end of the acknowledged lines)", off, half)
	}
	if v := value(h.src.m.batchesInflight); v != 0 {
		t.Errorf("batches_inflight after stop = %v; want 0", v)
	}

	// A new source on the same positions sends exactly the unacknowledged tail.
	sink2 := newSink(true)
	h2 := start(t, cfg, sink2, positions)
	waitLines(t, sink2, 5000)
	eventually(t, "everything acknowledged", func() bool { return h2.acked(a) == int64(len(numbered("line", 0, 10000))) })
	h2.stop()
	equalLines(t, sink2.lines(), numberedLines("line", 5000, 10000))
}

func TestOutOfOrderAcks(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, numbered("line", 0, 50))
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	noStackTraces(&cfg)
	sink := newSink(false)
	h := start(t, cfg, sink, "")
	eventually(t, "5 batches", func() bool { return sink.numBatches() == 5 })
	end := func(batches int) int64 { return int64(len(numbered("line", 0, 10*batches))) }

	steps := []struct {
		ack  int
		err  error
		want int64
	}{
		{1, nil, 0},
		{3, nil, 0},
		{0, nil, end(2)},
		{4, pipeline.Permanent("bad_request", os.ErrInvalid), end(2)},
		{2, nil, end(5)},
	}
	for _, st := range steps {
		sink.ack(st.ack, st.err)
		eventually(t, "the offset to settle", func() bool { return h.acked(a) == st.want })
		time.Sleep(5 * time.Millisecond)
		if got := h.acked(a); got != st.want {
			t.Fatalf("after acknowledging batch %d: offset %d; want %d", st.ack, got, st.want)
		}
	}
}

func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), numbered("line", 0, 100))
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	cfg.MaxInflightBatches = 2
	sink := newSink(false)
	h := start(t, cfg, sink, "")
	eventually(t, "2 batches", func() bool { return sink.numBatches() == 2 })
	time.Sleep(10 * cfg.PollInterval)
	if n := sink.numBatches(); n != 2 {
		t.Fatalf("%d batches handed over with max_inflight_batches 2 and no acknowledgement", n)
	}
	sink.ack(0, nil)
	eventually(t, "a third batch", func() bool { return sink.numBatches() == 3 })
	sink.setAuto(true)
	waitLines(t, sink, 100)
	eventually(t, "inflight back to 0", func() bool { return value(h.src.m.batchesInflight) == 0 })
}

func TestBlockingSinkStops(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	writeFile(t, a, numbered("line", 0, 10))
	sink := newSink(true)
	sink.block = make(chan struct{})
	h := start(t, testConfig(dir), sink, positions)
	time.Sleep(5 * testConfig(dir).PollInterval)
	h.stop() // Export is blocked: cancelling must still stop Run
	if off := savedOffset(t, positions, a); off != 0 {
		t.Fatalf("saved offset %d with nothing acknowledged; want 0", off)
	}
	sink2 := newSink(true)
	start(t, testConfig(dir), sink2, positions)
	equalLines(t, waitLines(t, sink2, 10), numberedLines("line", 0, 10))
}

func TestCrashRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 50
	cfg.MaxInflightBatches = 100
	sink := newSink(true)
	h := start(t, cfg, sink, positions)
	writeFile(t, a, numbered("line", 0, 1000))
	saved := int64(len(numbered("line", 0, 1000)))
	eventually(t, "positions saved", func() bool {
		_, err := os.Stat(positions)
		return err == nil && savedOffset(t, positions, a) == saved
	})

	// Lines sent but not acknowledged when the agent dies.
	sink.setAuto(false)
	batches := sink.numBatches()
	appendFile(t, a, numbered("line", 1000, 2000))
	waitLines(t, sink, 2000)
	// A crash leaves the positions file of the last save; acknowledgements after it
	// (and the save on stop) never reach the disk.
	snapshot, err := os.ReadFile(positions)
	if err != nil {
		t.Fatal(err)
	}
	sink.ack(batches, nil)
	sink.ack(batches+1, nil)
	h.stop()
	if off := savedOffset(t, positions, a); off <= saved {
		t.Fatalf("the stop save did not record the later acknowledgements: offset %d", off)
	}
	writeFile(t, positions, string(snapshot))
	if off := savedOffset(t, positions, a); off != saved {
		t.Fatalf("snapshot offset %d; want %d", off, saved)
	}

	sink2 := newSink(true)
	start(t, cfg, sink2, positions)
	waitLines(t, sink2, 1000)
	eventually(t, "the last line", func() bool {
		got := sink2.lines()
		return got[len(got)-1] == "line 01999"
	})
	equalLines(t, sink2.lines(), numberedLines("line", 1000, 2000))
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	writeFile(t, a, numbered("line", 0, 10))
	cfg := testConfig(dir)

	h := start(t, cfg, newSink(true), positions)
	eventually(t, "all acknowledged", func() bool { return h.acked(a) == int64(len(numbered("line", 0, 10))) })
	h.stop()

	t.Run("from the saved position", func(t *testing.T) {
		appendFile(t, a, numbered("line", 10, 12))
		sink := newSink(true)
		h := start(t, cfg, sink, positions)
		equalLines(t, waitLines(t, sink, 2), numberedLines("line", 10, 12))
		eventually(t, "saved", func() bool { return savedOffset(t, positions, a) == int64(len(numbered("line", 0, 12))) })
		h.stop()
	})
	t.Run("saved offset past the end reads from the start", func(t *testing.T) {
		// Truncated while stopped, to something shorter, with the same first bytes.
		writeFile(t, a, numbered("line", 0, 3))
		sink := newSink(true)
		h := start(t, cfg, sink, positions)
		equalLines(t, waitLines(t, sink, 3), numberedLines("line", 0, 3))
		if v := value(h.src.m.truncations); v != 1 {
			t.Errorf("truncations = %v; want 1", v)
		}
		h.stop()
	})
	t.Run("recycled inode is a new file", func(t *testing.T) {
		// Same inode, other content: the fingerprint differs, so offset 0.
		f, err := os.OpenFile(a, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(numbered("other", 0, 20))
		f.Close()
		sink := newSink(true)
		h := start(t, cfg, sink, positions)
		equalLines(t, waitLines(t, sink, 20), numberedLines("other", 0, 20))
		h.stop()
	})
}

func TestStartAtEnd(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, numbered("old", 0, 5))
	cfg := testConfig(dir)
	cfg.StartAt = StartAtEnd
	sink := newSink(true)
	h := start(t, cfg, sink, "")
	eventually(t, "the file opened", func() bool { return value(h.src.m.filesOpen) == 1 })
	appendFile(t, a, "fresh\n")
	writeFile(t, filepath.Join(dir, "b.log"), "later file\n") // appeared after start: from 0
	got := waitLines(t, sink, 2)
	if strings.Join(got, ",") != "fresh,later file" && strings.Join(got, ",") != "later file,fresh" {
		t.Fatalf("lines %q; want only what was written after the start", got)
	}
}

func TestRotatedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	writeFile(t, a, numbered("old", 0, 3))
	cfg := testConfig(dir)
	h := start(t, cfg, newSink(true), positions)
	eventually(t, "saved", func() bool {
		_, err := os.Stat(positions)
		return err == nil && savedOffset(t, positions, a) == int64(len(numbered("old", 0, 3)))
	})
	h.stop()

	appendFile(t, a, numbered("old", 3, 6))
	if err := os.Rename(a, filepath.Join(dir, "a.log.1")); err != nil { // not matched by *.log
		t.Fatal(err)
	}
	writeFile(t, a, numbered("new", 0, 2))
	cfg.StartAt = StartAtEnd // must not skip the new file: it took a path with a saved position
	sink := newSink(true)
	h = start(t, cfg, sink, positions)
	equalPerFile(t, waitLines(t, sink, 5), numberedLines("old", 3, 6), numberedLines("new", 0, 2))
	eventually(t, "the old file closed", func() bool { return value(h.src.m.filesOpen) == 1 })
}

func TestPartialLines(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	writeFile(t, a, "")
	cfg := testConfig(dir)
	cfg.Multiline.FlushAfter = time.Hour
	sink := newSink(true)
	h := start(t, cfg, sink, "")
	eventually(t, "the file opened", func() bool { return value(h.src.m.filesOpen) == 1 })
	appendFile(t, a, `{"n":1,"msg":"hal`)
	time.Sleep(10 * cfg.PollInterval)
	if got := sink.lines(); len(got) != 0 {
		t.Fatalf("lines %q before the newline", got)
	}
	appendFile(t, a, `f"}`+"\n")
	equalLines(t, waitLines(t, sink, 1), []string{`{"n":1,"msg":"half"}`})
	h.stop()

	// With a short flush_after, an unfinished line goes out after a quiet spell.
	cfg.Multiline.FlushAfter = 30 * time.Millisecond
	sink = newSink(true)
	h = start(t, cfg, sink, "")
	appendFile(t, a, "unfinished")
	got := waitLines(t, sink, 2)
	if got[len(got)-1] != "unfinished" {
		t.Fatalf("lines %q; want the unfinished line last", got)
	}
	appendFile(t, a, "\nnext\n") // ends the flushed line: no empty record
	got = waitLines(t, sink, 3)
	if len(got) != 3 || got[2] != "next" {
		t.Fatalf("lines %q; want next after the flushed line", got)
	}
}

func TestLongAndBinaryLines(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	long := strings.Repeat("x", 5000)
	garbage := "bin\x00\xff\xfe\x00\x01\xc3(ary"
	writeFile(t, a, long+"\n"+garbage+"\nok\n"+strings.Repeat("\x00", 3000)+"\nend\n")
	cfg := testConfig(dir)
	cfg.MaxLineBytes = 1024
	sink := newSink(true)
	h := start(t, cfg, sink, "")
	got := waitLines(t, sink, 5)
	if got[0] != long[:1024] {
		t.Errorf("long line: %d bytes; want cut to 1024", len(got[0]))
	}
	if got[1] != "bin\x00\uFFFD\x00\x01\uFFFD(ary" {
		t.Errorf("binary line %q; want invalid bytes replaced", got[1])
	}
	if got[2] != "ok" || got[4] != "end" || len(got[3]) != 1024 {
		t.Errorf("lines after the garbage: %q, %d NULs, %q", got[2], len(got[3]), got[4])
	}
	for i, l := range got {
		if !utf8.ValidString(l) || len(l) > 1024 {
			t.Errorf("line %d: valid UTF-8 %v, %d bytes", i, utf8.ValidString(l), len(l))
		}
	}
	eventually(t, "metrics", func() bool {
		return value(h.src.m.linesTruncated) == 2 && value(h.src.m.invalidUTF8) == 1 &&
			value(h.src.m.linesRead) == 5
	})
}

func TestMultilineOffsets(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	crash, err := os.ReadFile(filepath.Join("..", "..", "processors", "multiline", "testdata", "go_panic.log"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, a, string(crash))
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 2
	sink := newSink(true)
	h := start(t, cfg, sink, positions)
	got := waitLines(t, sink, 7)
	if len(got) != 7 || !strings.HasPrefix(got[1], "2024-05-01T10:00:01Z panic:") || !strings.HasSuffix(got[1], "exit status 2") {
		t.Fatalf("records %q; want the panic joined into one", got)
	}
	if strings.Join(got, "\n")+"\n" != string(crash) {
		t.Fatal("records joined do not give the file back")
	}
	eventually(t, "the whole file acknowledged", func() bool { return h.acked(a) == int64(len(crash)) })
	h.stop()
	if off := savedOffset(t, positions, a); off != int64(len(crash)) {
		t.Fatalf("saved offset %d; want %d", off, len(crash))
	}
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	data := numbered("line", 0, 30)
	writeFile(t, a, data)
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	noStackTraces(&cfg) // no line held back: exactly 3 batches
	sink := newSink(false)
	h := start(t, cfg, sink, filepath.Join(dir, "positions.json"))
	eventually(t, "3 batches", func() bool { return sink.numBatches() == 3 })
	eventually(t, "counters", func() bool {
		return value(h.src.m.linesRead) == 30 && value(h.src.m.bytesRead) == float64(len(data)) &&
			value(h.src.m.filesOpen) == 1 && value(h.src.m.batchesInflight) == 3
	})
	eventually(t, "lag of the whole file", func() bool { return value(h.src.m.positionLag) == float64(len(data)) })
	sink.ackAll()
	eventually(t, "no lag", func() bool { return value(h.src.m.positionLag) == 0 && value(h.src.m.batchesInflight) == 0 })
	h.stop()
	if v := value(h.src.m.filesOpen); v != 0 {
		t.Errorf("files_open after stop = %v; want 0", v)
	}
}

func TestRunTwice(t *testing.T) {
	dir := t.TempDir()
	h := start(t, testConfig(dir), newSink(true), "")
	eventually(t, "Run to start", h.src.started.Load)
	if err := h.src.Run(t.Context()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

// TestBatchMaxBytes: long lines cut batches by bytes before batch_max_lines, so a
// batch never outgrows an exporter's pending budget.
func TestBatchMaxBytes(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 4000)
	var b strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "line %03d %s\n", i, long)
	}
	writeFile(t, filepath.Join(dir, "a.log"), b.String())
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 1000
	cfg.BatchMaxBytes = 20 << 10
	sink := newSink(true)
	start(t, cfg, sink, "")
	waitLines(t, sink, 50)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for i, g := range sink.batches {
		bytes := 0
		for j := range g.recs {
			bytes += g.recs[j].Size()
		}
		if bytes > int(cfg.BatchMaxBytes)+4200 {
			t.Errorf("batch %d holds %d bytes, over batch_max_bytes %d by more than one record", i, bytes, cfg.BatchMaxBytes)
		}
	}
	if len(sink.batches) < 10 {
		t.Errorf("%d batches for 50 records of ~4 KB with batch_max_bytes 20KiB; want >= 10", len(sink.batches))
	}
}

// TestAcknowledgedBatchesAreReused checks the reuse of batches that pipeline.Batch
// allows: a batch's records are intact until it is acknowledged, whatever the
// source reads meanwhile, and their memory serves a later batch once it is.
func TestAcknowledgedBatchesAreReused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), numbered("line", 0, 400))
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	cfg.MaxInflightBatches = 4
	noStackTraces(&cfg)

	var (
		mu      sync.Mutex
		held    []pipeline.Batch // handed over, not acknowledged
		copies  [][]pipeline.Record
		arrays  = map[*pipeline.Record]int{}
		lines   []string
		reused  int
		changed []string
	)
	sink := pipeline.SinkFunc(func(_ context.Context, b pipeline.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if arrays[&b.Records[0]] > 0 {
			reused++
		}
		arrays[&b.Records[0]]++
		held = append(held, b)
		copies = append(copies, slices.Clone(b.Records))
		return nil
	})
	src, err := New(cfg, Settings{Sink: sink, DrainTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Acknowledge the oldest batch whenever the reader has filled its window, after
	// checking that none of the batches it holds changed meanwhile.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("the source did not hand over 400 lines within 30s")
		}
		var ack pipeline.Batch
		mu.Lock()
		pending := 0
		for _, b := range held {
			pending += len(b.Records)
		}
		if len(held) == cfg.MaxInflightBatches || (len(held) > 0 && len(lines)+pending == 400) {
			for i, b := range held {
				if !slices.EqualFunc(b.Records, copies[i], sameRecord) {
					changed = append(changed, b.Records[0].Line)
				}
			}
			ack = held[0]
			for _, r := range ack.Records {
				lines = append(lines, r.Line)
			}
			held, copies = held[1:], copies[1:]
		}
		n := len(lines)
		mu.Unlock()
		if ack.Ack != nil {
			ack.Ack(nil)
		}
		if n == 400 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if len(changed) > 0 {
		t.Fatalf("records of batches not yet acknowledged changed: %q", changed)
	}
	equalLines(t, lines, numberedLines("line", 0, 400))
	if reused == 0 {
		t.Fatalf("no batch reused the records of an acknowledged one (%d arrays for 40 batches)", len(arrays))
	}
	// Quiet for a poll interval, the source lets the kept batches go.
	eventually(t, "the recycled batches to be released", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.free) == 0
	})
}

func sameRecord(a, b pipeline.Record) bool {
	return a.Line == b.Line && a.Time.Equal(b.Time) && a.Stream == b.Stream && a.Level == b.Level &&
		a.TraceID == b.TraceID && a.SpanID == b.SpanID && a.RequestID == b.RequestID &&
		slices.Equal(a.Metadata, b.Metadata)
}

// TestPositionSavesWaitForInflightAcks: while batches are still in flight, the
// position is saved once max_inflight_batches acknowledgements are unsaved, not after
// each one; once nothing is in flight it is saved at once. The saver's ticker is off,
// so every save seen comes from the acknowledgements.
func TestPositionSavesWaitForInflightAcks(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	positions := filepath.Join(dir, "positions.json")
	writeFile(t, a, numbered("line", 0, 190))
	cfg := testConfig(dir)
	cfg.BatchMaxLines = 10
	cfg.MaxInflightBatches = 4
	sink := newSink(false)
	h := start(t, cfg, sink, positions, func(s *Source) { s.syncInterval = time.Hour })
	end := func(batches int) int64 { return int64(len(numbered("line", 0, 10*batches))) }
	saved := func() int64 {
		if _, err := os.Stat(positions); err != nil {
			return -1
		}
		return savedOffset(t, positions, a)
	}

	eventually(t, "the reader to fill its window", func() bool { return sink.numBatches() == cfg.MaxInflightBatches })
	for i := range 3 {
		eventually(t, "a batch", func() bool { return sink.numBatches() > i+3 }) // the reader refills
		sink.ack(i, nil)
	}
	eventually(t, "three batches acknowledged", func() bool { return h.acked(a) == end(3) })
	time.Sleep(100 * time.Millisecond) // a save would be written by now
	if off := saved(); off >= end(1) {
		t.Fatalf("saved offset %d after 3 acknowledgements with batches in flight; want no save before the 4th", off)
	}
	sink.ack(3, nil)
	eventually(t, "the save after the 4th acknowledgement", func() bool { return saved() == end(4) })

	// The rest, then one more batch alone: an acknowledgement that leaves nothing
	// in flight is saved at once, however few came before it.
	eventually(t, "the whole file acknowledged", func() bool {
		sink.ackAll()
		return h.acked(a) == end(19)
	})
	eventually(t, "the save with nothing in flight", func() bool { return saved() == end(19) })
	n := sink.numBatches()
	more := numbered("line", 190, 200)
	appendFile(t, a, more)
	eventually(t, "the appended lines acknowledged", func() bool {
		sink.ackAll() // the reader may hand them over in more than one batch
		return sink.numBatches() > n && h.acked(a) == end(19)+int64(len(more))
	})
	eventually(t, "the save of the appended lines", func() bool { return saved() == end(19)+int64(len(more)) })
}
