package diskqueue

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBeginCountsRunsThatStoppedOnAnEntry(t *testing.T) {
	dir := t.TempDir()
	tq := openQueue(t, dir, smallConfig())
	tq.appendRange(t, 0, 2, entrySize)
	_, es := tq.nextNums(t, 2)
	if n := tq.Begin(es[0].ID); n != 0 {
		t.Fatalf("Begin of a fresh entry = %d", n)
	}
	tq.End()
	if n := tq.Begin(es[1].ID); n != 0 {
		t.Fatalf("Begin = %d", n)
	}
	// The process dies while processing entry 1 (no End, no Ack), twice.
	for want := 1; want <= 3; want++ {
		if err := tq.Close(); err != nil {
			t.Fatal(err)
		}
		tq = openQueue(t, dir, smallConfig())
		nums, es2 := tq.nextNums(t, 2)
		if nums[1] != 1 {
			t.Fatalf("entries %v", nums)
		}
		if n := tq.Begin(es2[0].ID); n != 0 {
			t.Errorf("run %d: Begin of entry 0, which was ended, = %d", want, n)
		}
		tq.End()
		if n := tq.Begin(es2[1].ID); n != want {
			t.Errorf("run %d: Begin of the entry the process stopped on = %d, want %d", want, n, want)
		}
		if n := tq.Begin(es2[1].ID); n != want {
			t.Errorf("run %d: Begin again in the same run = %d, want %d", want, n, want)
		}
	}
	tq.End()
	if err := tq.Close(); err != nil {
		t.Fatal(err)
	}
	tq = openQueue(t, dir, smallConfig())
	_, es3 := tq.nextNums(t, 2)
	if n := tq.Begin(es3[1].ID); n != 0 {
		t.Errorf("Begin after End and a clean stop = %d", n)
	}
}

func TestBeginIgnoresADamagedProcessingFile(t *testing.T) {
	dir := t.TempDir()
	tq := openQueue(t, dir, smallConfig())
	tq.appendRange(t, 0, 1, entrySize)
	e := tq.next(t)
	tq.Begin(e.ID)
	if err := tq.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, processingName)
	b, err := os.ReadFile(path)
	if err != nil || len(b) != processingSize {
		t.Fatalf("processing file: %d bytes, %v", len(b), err)
	}
	b[5] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tq = openQueue(t, dir, smallConfig())
	if n := tq.Begin(tq.next(t).ID); n != 0 {
		t.Errorf("Begin with a damaged processing file = %d, want 0", n)
	}
}
