package agent

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/memtrim"
)

// TestIdleRelease checks the agent's side of runtime.idle_release: the ticker follows
// the setting (off, on, changed by a reload), each tick feeds the allocation counter
// to the policy, and the memory is released when the policy says so, with a failing
// page-out logged once.
func TestIdleRelease(t *testing.T) {
	var logs strings.Builder
	r := newIdleRelease(slog.New(slog.NewTextHandler(&logs, nil)))
	var allocs uint64
	releases := 0
	r.allocs = func() uint64 { return allocs }
	r.release = func() (int64, error) { releases++; return 0, errors.New("madvise: invalid argument") }

	if r.C() != nil {
		t.Fatal("ticking before set")
	}
	r.set(0)
	if r.C() != nil {
		t.Fatal("ticking when off")
	}
	r.set(time.Hour)
	if r.C() == nil {
		t.Fatal("not ticking when on")
	}
	r.set(2 * time.Hour) // a reload that changes it
	if r.C() == nil || r.every != 2*time.Hour {
		t.Fatal("a changed interval stopped the ticker")
	}

	steps := []struct {
		allocs       uint64
		wantReleases int
	}{
		{40 << 20, 0},      // first sample
		{60 << 20, 0},      // start-up still allocating
		{60<<20 + 1000, 1}, // quiet: the start-up's memory goes back
		{60<<20 + 2000, 1}, // quiet again: nothing new
		{90 << 20, 1},      // a burst
		{90<<20 + 1000, 2}, // quiet after the burst
	}
	for i, s := range steps {
		allocs = s.allocs
		r.tick()
		if releases != s.wantReleases {
			t.Fatalf("step %d: %d releases, want %d", i, releases, s.wantReleases)
		}
	}
	if n := strings.Count(logs.String(), "cannot page out"); n != 1 {
		t.Errorf("the failing page-out was logged %d times, want once:\n%s", n, logs.String())
	}
	r.stop()
	if r.C() != nil {
		t.Error("ticking after stop")
	}

	// Start-up releases whatever the allocation counter says, unless idle_release is
	// off, and the policy's first quiet look still comes after it.
	r = newIdleRelease(discard())
	releases = 0
	r.allocs = func() uint64 { return allocs }
	r.release = func() (int64, error) { releases++; return 0, nil }
	r.startUp(0, "units started")
	if releases != 0 {
		t.Fatalf("released at start-up with idle_release off")
	}
	r.startUp(5*time.Second, "units started")
	if releases != 1 {
		t.Fatalf("%d releases at start-up, want 1", releases)
	}
	allocs = 100 << 20
	r.tick()
	r.tick()
	if releases != 2 {
		t.Fatalf("%d releases after the first quiet look, want 2", releases)
	}

	if p := newIdleRelease(discard()).policy; p.Quiet != memtrim.DefaultQuiet || p.Busy != memtrim.DefaultBusy {
		t.Errorf("policy %+v, want memtrim's defaults", p)
	}
}
