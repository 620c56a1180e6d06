package memtrim

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"testing"
)

func TestPolicy(t *testing.T) {
	const mib = 1 << 20
	p := &Policy{Quiet: mib, Busy: 8 * mib}
	steps := []struct {
		what   string
		allocs uint64 // cumulative
		want   bool
	}{
		{"first sample: nothing to compare with", 40 * mib, false},
		{"start-up still allocating", 60 * mib, false},
		{"first quiet interval after start", 60*mib + 100<<10, true},
		{"quiet again: already released", 60*mib + 200<<10, false},
		{"quiet for long", 60*mib + 300<<10, false},
		{"a burst", 90 * mib, false},
		{"still busy", 120 * mib, false},
		{"quiet after the burst", 120*mib + 10<<10, true},
		{"quiet", 120*mib + 20<<10, false},
		{"a little work, under Busy in all", 124 * mib, false},
		{"quiet after little work", 124*mib + 1, false},
		{"idle trickle adds up past Busy", 128*mib + 20<<10, false},
		{"quiet once the trickle passed Busy", 128*mib + 30<<10, true},
	}
	for _, s := range steps {
		if got := p.Next(s.allocs); got != s.want {
			t.Errorf("%s: Next(%d) = %v, want %v", s.what, s.allocs, got, s.want)
		}
	}
}

func TestNewPolicy(t *testing.T) {
	p := NewPolicy()
	if p.Quiet != DefaultQuiet || p.Busy != DefaultBusy {
		t.Errorf("NewPolicy() = %+v", p)
	}
}

func TestAllocated(t *testing.T) {
	before := Allocated()
	sink = make([]byte, 1<<20)
	if after := Allocated(); after < before+1<<20 {
		t.Errorf("Allocated went from %d to %d over a 1 MiB allocation", before, after)
	}
}

var sink []byte

func TestReadOnlyMappings(t *testing.T) {
	maps := []byte(`00400000-01270000 r-xp 00000000 08:01 123 /usr/bin/outrider
01270000-021fc000 r--p 00e70000 08:01 123 /usr/bin/outrider
021fc000-022a6000 rw-p 01dfc000 08:01 123 /usr/bin/outrider
022a6000-0443c000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 08:01 456 /usr/bin/outrider-other
7f0000002000-7f0000003000 r--p 00000000 08:01 789 /opt/my app/outrider
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 [vdso]
`)
	got := readOnlyMappings(maps, "/usr/bin/outrider")
	want := []mapping{{0x400000, 0x1270000}, {0x1270000, 0x21fc000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("readOnlyMappings = %#v, want %#v", got, want)
	}
	if got := readOnlyMappings(maps, "/opt/my app/outrider"); len(got) != 1 || got[0] != (mapping{0x7f0000002000, 0x7f0000003000}) {
		t.Errorf("a path with a space: %#v", got)
	}
}

// TestGivingBackShrinksResidentMemory checks on the test binary itself that Release
// and UnmapExecutable give back mapped executable pages (the file-backed resident
// memory falls) and that code runs on afterwards.
func TestGivingBackShrinksResidentMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("madvise(MADV_PAGEOUT) is Linux's")
	}
	for _, c := range []struct {
		name string
		give func() (int64, error)
	}{{"Release", Release}, {"UnmapExecutable", UnmapExecutable}} {
		before := rssFile(t)
		advised, err := c.give()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		after := rssFile(t)
		t.Logf("%s: RssFile %d KiB -> %d KiB, %d KiB advised", c.name, before>>10, after>>10, advised>>10)
		if advised <= 0 || after >= before {
			t.Errorf("%s: RssFile %d -> %d bytes after advising %d bytes of the executable", c.name, before, after, advised)
		}
		if got := strconv.Itoa(12345); got != "12345" { // code and constants come back
			t.Errorf("%s: strconv.Itoa afterwards: %q", c.name, got)
		}
	}
}

// rssFile returns RssFile from /proc/self/status.
func rssFile(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		if f := bytes.Fields(line); len(f) == 3 && string(f[0]) == "RssFile:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestOnRelease(t *testing.T) {
	var a, b int
	unA := OnRelease(func() { a++ })
	unB := OnRelease(func() { b++ })
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
	unA()
	unA() // twice is harmless
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
	unB()
	if a != 1 || b != 2 {
		t.Errorf("hooks ran %d and %d times, want 1 and 2", a, b)
	}
}
