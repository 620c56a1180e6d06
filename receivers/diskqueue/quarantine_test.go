package diskqueue

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quarantined lists the names (without suffix) of the quarantined entries in dir.
func quarantinedNames(t *testing.T, dir string) []string {
	t.Helper()
	list, err := listQuarantine(filepath.Join(dir, QuarantineDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list {
		out = append(out, e.name)
	}
	return out
}

func TestQuarantineSetsAsideAcksAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	tq := openQueue(t, dir, smallConfig())
	tq.appendRange(t, 0, 6, entrySize)
	nums, es := tq.nextNums(t, 6)
	if !equalInts(nums, seq(0, 6)) {
		t.Fatalf("entries %v", nums)
	}
	for i, e := range es {
		if i == 2 {
			if err := tq.Quarantine(e, "does not decode: bad kind 9"); err != nil {
				t.Fatalf("Quarantine: %v", err)
			}
			continue
		}
		tq.Ack(e.ID)
	}
	if n, _ := tq.Len(); n != 0 {
		t.Errorf("%d entries left after quarantine and acks", n)
	}
	if got := value(tq.metrics.quarantined.WithLabelValues("traces")); got != 1 {
		t.Errorf("quarantined_total = %v, want 1", got)
	}
	if lines := tq.logs.lines("set aside a queue entry"); len(lines) != 1 || !strings.Contains(lines[0], es[2].ID.String()) ||
		!strings.Contains(lines[0], "bad kind 9") {
		t.Errorf("want one log line with the entry's ID and reason, got %q", lines)
	}
	names := quarantinedNames(t, dir)
	if len(names) != 1 {
		t.Fatalf("quarantine holds %v", names)
	}
	qdir := filepath.Join(dir, QuarantineDir)
	got, err := os.ReadFile(filepath.Join(qdir, names[0]+quarantineEntry))
	if err != nil || !bytes.Equal(got, es[2].Payload) {
		t.Fatalf("quarantined payload differs from the entry (%v)", err)
	}
	note, _ := os.ReadFile(filepath.Join(qdir, names[0]+quarantineReason))
	if !strings.Contains(string(note), "reason: does not decode: bad kind 9") || !strings.Contains(string(note), "entry: "+es[2].ID.String()) {
		t.Errorf("reason file:\n%s", note)
	}
	if got := value(tq.metrics.quarantineBytes.WithLabelValues("traces")); got != float64(entrySize+len(note)) {
		t.Errorf("quarantine_bytes = %v, want %d", got, entrySize+len(note))
	}
	if err := tq.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		tq = openQueue(t, dir, smallConfig())
		tq.expectNoEntry(t)
		if err := tq.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if names := quarantinedNames(t, dir); len(names) != 1 {
		t.Errorf("after restarts the quarantine holds %v", names)
	}
}

func TestQuarantineKeepsTheNewestWithinItsBound(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	cfg.QuarantineMaxSize = 3*entrySize + 3*200 // three entries with their notes
	tq := openQueue(t, dir, cfg)
	// A temporary file left by a crash during an earlier quarantine write.
	if err := os.MkdirAll(filepath.Join(dir, QuarantineDir), 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, QuarantineDir, ".x.entry.tmp-123")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	tq.appendRange(t, 0, 5, entrySize)
	_, es := tq.nextNums(t, 5)
	for _, e := range es {
		if err := tq.Quarantine(e, "test"); err != nil {
			t.Fatal(err)
		}
	}
	names := quarantinedNames(t, dir)
	want := []string{quarantineName(pos{es[2].ID.seg, es[2].ID.off}), quarantineName(pos{es[3].ID.seg, es[3].ID.off}), quarantineName(pos{es[4].ID.seg, es[4].ID.off})}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("quarantine holds %v, want the newest three %v", names, want)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file not deleted: %v", err)
	}
	if got := value(tq.metrics.quarantineBytes.WithLabelValues("traces")); got > float64(cfg.QuarantineMaxSize) {
		t.Errorf("quarantine_bytes %v over quarantine_max_size %d", got, cfg.QuarantineMaxSize)
	}

	// An entry larger than the bound is acknowledged and counted, with no copy.
	tq.appendRange(t, 5, 6, 4000)
	e := tq.next(t)
	if err := tq.Quarantine(e, "test"); err == nil || !strings.Contains(err.Error(), "quarantine_max_size") {
		t.Errorf("Quarantine of an oversized entry = %v, want an error naming quarantine_max_size", err)
	}
	if n, _ := tq.Len(); n != 0 {
		t.Errorf("oversized entry not acknowledged: %d left", n)
	}
	if got := value(tq.metrics.quarantined.WithLabelValues("traces")); got != 6 {
		t.Errorf("quarantined_total = %v, want 6", got)
	}
	if names := quarantinedNames(t, dir); len(names) != 3 {
		t.Errorf("quarantine holds %v after an oversized entry", names)
	}
}

func TestQuarantineMaxSizeValidated(t *testing.T) {
	cfg := Config{QuarantineMaxSize: -1}
	cfg.ApplyDefaults()
	if _, err := Open(cfg, Settings{Name: "x", Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "quarantine_max_size") {
		t.Errorf("Open with quarantine_max_size -1 = %v", err)
	}
	cfg = Config{}
	cfg.ApplyDefaults()
	if cfg.QuarantineMaxSize != DefaultQuarantineMaxSize {
		t.Errorf("default quarantine_max_size = %s", cfg.QuarantineMaxSize)
	}
}
