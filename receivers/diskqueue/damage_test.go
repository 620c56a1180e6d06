package diskqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// writeSegments stores entries 0..n-1 of entrySize (4 per segment), closes the
// queue and returns the segment files.
func writeSegments(t *testing.T, dir string, n int) []string {
	t.Helper()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, n, entrySize)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return segmentFiles(t, dir)
}

// recordOffset is where record i (0-based) of a segment of entrySize records starts.
func recordOffset(i int) int64 { return headerSize + int64(i)*(frameSize+entrySize) }

func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name  string
		cut   func(t *testing.T, path string)
		want  []int
		level string
	}{
		{"cut in the payload", func(t *testing.T, p string) { truncate(t, p, fileSize(t, p)-5) }, seq(0, 7), "INFO"},
		{"cut in the frame", func(t *testing.T, p string) { truncate(t, p, recordOffset(3)+3) }, seq(0, 7), "INFO"},
		{"zero-filled tail", func(t *testing.T, p string) {
			patchFile(t, p, fileSize(t, p), make([]byte, 100))
		}, seq(0, 8), "INFO"},
		{"cut in the header", func(t *testing.T, p string) { truncate(t, p, 10) }, seq(0, 4), "INFO"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := writeSegments(t, dir, 8)
			tc.cut(t, files[len(files)-1])
			q := openQueue(t, dir, smallConfig())
			if got := q.drainAll(t); !equalInts(got, tc.want) {
				t.Fatalf("got %v; want %v", got, tc.want)
			}
			if got := q.corrupt(ReasonTruncated); got != 1 {
				t.Fatalf("corrupt{truncated} = %v; want 1", got)
			}
			lines := q.logs.lines(files[len(files)-1])
			if len(lines) != 1 || !strings.Contains(lines[0], tc.level) || !strings.Contains(lines[0], `"offset"`) {
				t.Fatalf("want one %s line naming the file and offset; logs:\n%s", tc.level, q.logs)
			}
			if n, _ := q.Len(); n != 0 {
				t.Fatalf("Len = %d after draining; want 0", n)
			}
			// New entries after the damage are delivered.
			q.appendRange(t, 100, 102, 10)
			if got := q.drainAll(t); !equalInts(got, []int{100, 101}) {
				t.Fatalf("got %v after the damage; want [100 101]", got)
			}
		})
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestDamageSkipsRestOfSegment damages segment 1 of 3: the rest of segment 1 is
// skipped, segments 2 and 3 are delivered.
func TestDamageSkipsRestOfSegment(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		reason string
		want   []int
	}{
		{"payload byte", func(t *testing.T, p string) { patchFile(t, p, recordOffset(1)+frameSize+500, []byte{'!'}) }, ReasonChecksum, append([]int{0}, seq(4, 12)...)},
		{"checksum field", func(t *testing.T, p string) { patchFile(t, p, recordOffset(2)+4, []byte{0, 0, 0, 0}) }, ReasonChecksum, append([]int{0, 1}, seq(4, 12)...)},
		{"impossible length", func(t *testing.T, p string) {
			patchFile(t, p, recordOffset(1), binary.LittleEndian.AppendUint32(nil, 0xfffffff0))
		}, ReasonLength, append([]int{0}, seq(4, 12)...)},
		{"length past the end", func(t *testing.T, p string) {
			patchFile(t, p, recordOffset(3), binary.LittleEndian.AppendUint32(nil, 2000))
		}, ReasonTruncated, seq(0, 12)[:3:3],
		},
		{"header magic", func(t *testing.T, p string) { patchFile(t, p, 0, []byte("XXXX")) }, ReasonHeader, seq(4, 12)},
		{"header version", func(t *testing.T, p string) { patchFile(t, p, 4, []byte{9}) }, ReasonHeader, seq(4, 12)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := writeSegments(t, dir, 12)
			if len(files) != 3 {
				t.Fatalf("%d segments; want 3", len(files))
			}
			tc.damage(t, files[0])
			q := openQueue(t, dir, smallConfig())
			want := tc.want
			if tc.reason == ReasonTruncated {
				want = append(want, seq(4, 12)...)
			}
			if got := q.drainAll(t); !equalInts(got, want) {
				t.Fatalf("got %v; want %v", got, want)
			}
			if got := q.corrupt(tc.reason); got != 1 {
				t.Fatalf("corrupt{%s} = %v; want 1", tc.reason, got)
			}
			if lines := q.logs.lines(files[0]); len(lines) != 1 {
				t.Fatalf("want one log line naming %s; logs:\n%s", files[0], q.logs)
			}
			// The damaged segment is deleted once consumed; counted entries that were
			// never readable leave the count with it.
			if n, _ := q.Len(); n != 0 {
				t.Fatalf("Len = %d after draining; want 0", n)
			}
			if got := segmentFiles(t, dir); len(got) != 1 {
				t.Fatalf("segments after draining %v; want only the one being written", got)
			}
		})
	}
}

// TestDamageReportedOnceAcrossRewind: re-reading up to damage does not count it again.
func TestDamageReportedOnceAcrossRewind(t *testing.T) {
	dir := t.TempDir()
	files := writeSegments(t, dir, 12)
	patchFile(t, files[0], recordOffset(2)+frameSize, []byte{'!'})
	q := openQueue(t, dir, smallConfig())
	got, _ := q.nextNums(t, 4)
	if want := []int{0, 1, 4, 5}; !equalInts(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	q.Rewind()
	if got := q.drainAll(t); !equalInts(got, append([]int{0, 1}, seq(4, 12)...)) {
		t.Fatalf("after Rewind got %v", got)
	}
	if got := q.corrupt(ReasonChecksum); got != 1 {
		t.Fatalf("corrupt{checksum} = %v; want 1", got)
	}
}

// faultyFile fails writes while fail > 0, after writing half of the bytes (a
// partial write, as a full disk does).
type faultyFile struct {
	segmentFile
	fail *atomic.Int32
	// during, if set, runs after the partial write, before the error returns.
	during *func()
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fail.Load() > 0 {
		f.fail.Add(-1)
		n, _ := f.segmentFile.WriteAt(p[:len(p)/2], off)
		if f.during != nil && *f.during != nil {
			(*f.during)()
		}
		return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.segmentFile.WriteAt(p, off)
}

func TestWriteErrorTruncates(t *testing.T) {
	var fail, failCreate atomic.Int32
	orig := createSegmentFile
	createSegmentFile = func(path string) (segmentFile, error) {
		if failCreate.Load() > 0 {
			failCreate.Add(-1)
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOSPC}
		}
		f, err := orig(path)
		if err != nil {
			return nil, err
		}
		return &faultyFile{segmentFile: f, fail: &fail}, nil
	}
	t.Cleanup(func() { createSegmentFile = orig })

	for _, mode := range []string{FsyncAlways, FsyncNever} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			cfg.Fsync = mode
			q := openQueue(t, dir, cfg)
			q.appendRange(t, 0, 2, entrySize)
			good := fileSize(t, segmentFiles(t, dir)[0])

			fail.Store(1)
			err := q.Append(context.Background(), payload(2, entrySize))
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append on a full disk: %v; want ENOSPC", err)
			}
			if !strings.Contains(err.Error(), "free space") {
				t.Errorf("error %q does not say what to do", err)
			}
			if got := fileSize(t, segmentFiles(t, dir)[0]); got != good {
				t.Fatalf("segment is %d bytes after the failed write; want it cut back to %d", got, good)
			}
			if got := value(q.metrics.writeErrors.WithLabelValues("traces")); got != 1 {
				t.Fatalf("write_errors = %v; want 1", got)
			}
			if n, size := q.Len(); n != 2 || size != good {
				t.Fatalf("Len = %d, %d; want 2, %d", n, size, good)
			}
			q.appendRange(t, 2, 4, entrySize) // space is back

			// Starting a new segment fails too, and later works.
			failCreate.Store(1)
			if err := q.Append(context.Background(), payload(4, entrySize)); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append needing a new segment on a full disk: %v; want ENOSPC", err)
			}
			fail.Store(1) // the header write of the next segment fails: the file goes
			if err := q.Append(context.Background(), payload(4, entrySize)); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append whose segment header write fails: %v; want ENOSPC", err)
			}
			if got := len(segmentFiles(t, dir)); got != 1 {
				t.Fatalf("%d segment files after failed creations; want 1", got)
			}
			q.appendRange(t, 4, 6, entrySize)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}

			q2 := openQueue(t, dir, cfg)
			if got := q2.drainAll(t); !equalInts(got, seq(0, 6)) {
				t.Fatalf("after restart got %v; want 0..5", got)
			}
			for _, r := range []string{ReasonChecksum, ReasonLength, ReasonHeader, ReasonTruncated} {
				if got := q2.corrupt(r); got != 0 {
					t.Fatalf("corrupt{%s} = %v after write errors; want 0", r, got)
				}
			}
		})
	}
}

// TestReaderIgnoresUnpublishedBytes: a reader reading the segment being written
// while a write fails half-way never buffers the partial record.
func TestReaderIgnoresUnpublishedBytes(t *testing.T) {
	var fail atomic.Int32
	var during func()
	wrapSegmentFiles(t, func(_ string, f segmentFile) segmentFile {
		return &faultyFile{segmentFile: f, fail: &fail, during: &during}
	})

	q := openQueue(t, t.TempDir(), smallConfig())
	q.appendRange(t, 0, 2, 100)
	type result struct {
		e   Entry
		err error
	}
	results := make(chan result, 1)
	during = func() {
		// Read entry 0 while half of entry 2 is in the file. The writer does not
		// wait for long: a wrong reader may block on it.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e, err := q.Next(ctx)
			results <- result{e, err}
		}()
		select {
		case r := <-results:
			results <- r
		case <-time.After(time.Second):
		}
	}
	fail.Store(1)
	if err := q.Append(context.Background(), payload(2, 100)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append: %v; want ENOSPC", err)
	}
	during = nil
	r := <-results
	if r.err != nil || entryNum(t, r.e.Payload) != 0 {
		t.Fatalf("Next during the failed write: %v; want entry 0", r.err)
	}
	q.Ack(r.e.ID)
	q.appendRange(t, 3, 5, 100)
	if got := q.drainAll(t); !equalInts(got, []int{1, 3, 4}) {
		t.Fatalf("got %v after the failed write; want [1 3 4]", got)
	}
	if got := q.corrupt(ReasonTruncated) + q.corrupt(ReasonChecksum) + q.corrupt(ReasonLength); got != 0 {
		t.Fatalf("damage counted: %v", got)
	}
}

// TestSegmentRemovedUnderneath: a segment deleted by someone else is reported and
// skipped.
func TestSegmentRemovedUnderneath(t *testing.T) {
	dir := t.TempDir()
	files := writeSegments(t, dir, 12)
	q := openQueue(t, dir, smallConfig())
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	if got := q.drainAll(t); !equalInts(got, append(seq(0, 4), seq(8, 12)...)) {
		t.Fatalf("got %v; want 0..3 and 8..11", got)
	}
	if got := q.corrupt(ReasonMissing); got != 1 {
		t.Fatalf("corrupt{missing} = %v; want 1", got)
	}
}

// TestDamageInSegmentBeingWritten: damage found in the segment being written makes
// the writer start a new one, so entries appended afterwards are delivered.
func TestDamageInSegmentBeingWritten(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, 3, 100)
	files := segmentFiles(t, dir)
	patchFile(t, files[0], headerSize+(frameSize+100)+frameSize+50, []byte{'!'}) // entry 1
	if got := q.drainAll(t); !equalInts(got, []int{0}) {
		t.Fatalf("got %v; want [0] (1 and 2 are lost to the damage)", got)
	}
	q.appendRange(t, 3, 5, 100)
	if got := q.drainAll(t); !equalInts(got, []int{3, 4}) {
		t.Fatalf("got %v after the damage; want [3 4]", got)
	}
	if got := q.corrupt(ReasonChecksum); got != 1 {
		t.Fatalf("corrupt{checksum} = %v; want 1", got)
	}
	if got := segmentFiles(t, dir); len(got) != 1 || got[0] == files[0] {
		t.Fatalf("segments %v; want only a new one", got)
	}
}
