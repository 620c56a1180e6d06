package sentryexporter

import (
	"testing"

	"github.com/outrider-dev/outrider/internal/memtrim"
)

// TestReleaseDropsEncoders checks that the agent's memory release (memtrim.Release)
// makes a started exporter let go of its idle gzip encoders, and that the next
// envelope still goes out.
func TestReleaseDropsEncoders(t *testing.T) {
	f := newFakeSentry(t, nil)
	h := newHarness(t, testConfig(f))
	h.export(t, 1, makeEnvelope(t, eventID(1), "event"))
	if err := h.acks.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	if len(h.exp.encoders) == 0 {
		t.Fatal("no encoder kept for reuse after an envelope: the test proves nothing")
	}
	if _, err := memtrim.Release(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.exp.encoders); n != 0 {
		t.Errorf("%d idle encoders after the release, want none", n)
	}
	h.export(t, 2, makeEnvelope(t, eventID(2), "event"))
	if err := h.acks.Wait(t, 2); err != nil {
		t.Fatal(err)
	}
	if calls, _ := f.snapshot(); len(calls) != 2 {
		t.Errorf("%d requests, want 2", len(calls))
	}
}
