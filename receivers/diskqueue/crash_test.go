package diskqueue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyDir copies the queue's files (not LOCK): the state a crash at this moment
// leaves, since a killed process leaves exactly what it wrote.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashRedeliversAtLeastOnce: without Close the saved cursor is older than the
// acknowledgements; nothing is lost and the duplicates are those acknowledged since
// the last save.
func TestCrashRedeliversAtLeastOnce(t *testing.T) {
	defer func(d time.Duration) { cursorDelay = d }(cursorDelay)
	cursorDelay = time.Hour // no save after the first Close during the test

	dir := t.TempDir()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, 100, 300)
	_, es := q.nextNums(t, 60)
	for _, e := range es {
		q.Ack(e.ID)
	}
	if err := q.Close(); err != nil { // saves the cursor at 60
		t.Fatal(err)
	}
	q = openQueue(t, dir, smallConfig())
	got, es := q.nextNums(t, 30) // 60..89
	if !equalInts(got, seq(60, 90)) {
		t.Fatalf("after restart got %v; want 60..89", got)
	}
	for _, e := range es[:20] { // 60..79 acked, 80..89 in flight
		q.Ack(e.ID)
	}
	q.appendRange(t, 100, 110, 300)
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, dir, crashed)

	q2 := openQueue(t, crashed, smallConfig())
	delivered := q2.drainAll(t)
	count := map[int]int{}
	for _, n := range delivered {
		count[n]++
	}
	dups := 0
	for i := range 110 {
		switch {
		case i < 60 && count[i] > 0:
			t.Fatalf("entry %d acknowledged before the last cursor save was delivered again", i)
		case i >= 60 && i < 80:
			// Acknowledged since the last save: delivered again at most once (its
			// segment may be gone already).
			if count[i] > 1 {
				t.Fatalf("entry %d delivered %d times", i, count[i])
			}
			dups += count[i]
		case i >= 80 && count[i] != 1:
			t.Fatalf("entry %d delivered %d times; want once (nothing lost)", i, count[i])
		}
	}
	if dups == 0 || len(delivered) != 30+dups {
		t.Fatalf("delivered %d entries with %d acknowledged ones again; want the 30 unacknowledged plus some of the 20 acknowledged since the save", len(delivered), dups)
	}
}

// TestCursorSavedWhileRunning: acknowledgements reach the cursor file without Close,
// coalesced.
func TestCursorSavedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, smallConfig())
	q.appendRange(t, 0, 10, 100)
	_, es := q.nextNums(t, 10)
	for _, e := range es[:7] {
		q.Ack(e.ID)
	}
	want := pos{seg: es[7].ID.seg, off: es[7].ID.off}
	waitFor(t, "the cursor to be saved", func() bool {
		p, err := readCursor(dir)
		return err == nil && p == want
	})
}

const helperEnv = "OUTRIDER_DISK_QUEUE_HELPER_DIR"

// TestHelperProcess is the child of TestSIGKILL: it appends entries and prints the
// number of each one Append accepted, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestSIGKILL")
	}
	cfg := smallConfig()
	cfg.MaxSize = 64 << 20
	cfg.Fsync = os.Getenv(helperEnv + "_FSYNC")
	q, err := Open(cfg, Settings{Name: "traces", Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; i < 1_000_000; i++ {
		if err := q.Append(context.Background(), payload(i, 10+(i*37)%1500)); err != nil {
			fmt.Fprintln(w, "append:", err)
			w.Flush()
			os.Exit(2)
		}
		fmt.Fprintln(w, i)
		if i%16 == 0 {
			w.Flush()
		}
	}
	w.Flush()
	os.Exit(3) // not reached in time: the parent kills it first
}

// TestSIGKILL kills a process while it appends; every entry it reported appended is
// delivered after reopening, in order, and the torn tail (if any) is reported.
func TestSIGKILL(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		killAt int
	}{{FsyncNever, 3000}, {FsyncAlways, 50}} {
		mode := tc.mode
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+dir, helperEnv+"_FSYNC="+mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			reported := -1
			killed := false
			for sc.Scan() {
				line := sc.Text()
				n, err := strconv.Atoi(line)
				if err != nil {
					if strings.HasPrefix(line, "append:") || strings.HasPrefix(line, "open:") {
						t.Fatalf("helper failed: %s", line)
					}
					continue // test framework output
				}
				if n != reported+1 {
					t.Fatalf("helper reported %d after %d", n, reported)
				}
				reported = n
				if !killed && n >= tc.killAt {
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			}
			if _, err := io.Copy(io.Discard, out); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("helper ended with %v; want killed by SIGKILL", err)
			}
			if !killed {
				t.Fatal("helper ended before it was killed")
			}

			q := openQueue(t, dir, Config{MaxSize: 64 << 20, SegmentSize: MinSegmentSize, Fsync: FsyncNever})
			got := q.drainAll(t)
			if len(got) <= reported {
				t.Fatalf("%d entries delivered; the helper reported %d appended", len(got), reported+1)
			}
			for i, n := range got {
				if n != i {
					t.Fatalf("entry %d is %d; want every entry once, in order", i, n)
				}
			}
			// The process may have been killed inside a write (a torn tail) or
			// between writes (none).
			if c := q.corrupt(ReasonTruncated); c > 1 {
				t.Fatalf("corrupt{truncated} = %v; want at most 1", c)
			}
			for _, r := range []string{ReasonChecksum, ReasonLength, ReasonHeader} {
				if c := q.corrupt(r); c != 0 {
					t.Fatalf("corrupt{%s} = %v; want 0", r, c)
				}
			}
		})
	}
}
