package agent

import (
	"testing"
	"time"

	"github.com/outrider-dev/outrider/processors/redact"
)

// TestReplacedSyncerValuesStayScrubbed: a new syncer registering the same owner keeps
// the old syncer's values scrubbed until they are retired.
func TestReplacedSyncerValuesStayScrubbed(t *testing.T) {
	reg := redact.NewRegistry(nil)
	old, next := newSyncerOwners(reg), newSyncerOwners(reg)
	old.Set("database/creds/app", []string{"old-password-123"})
	next.Set("database/creds/app", []string{"new-password-456"})
	line := "old-password-123 new-password-456"
	if got, _ := reg.Redact(line); got != "[REDACTED] [REDACTED]" {
		t.Fatalf("both syncers' values must be scrubbed: %q", got)
	}

	a := &Agent{scrub: reg}
	a.retireOwners(&syncerRun{owners: old})
	a.releaseRetired(time.Now())
	if got, _ := reg.Redact(line); got != "[REDACTED] [REDACTED]" {
		t.Fatalf("retired values released too early: %q", got)
	}
	a.releaseRetired(time.Now().Add(retiredOwnersKeep + time.Second))
	if got, _ := reg.Redact(line); got != "[REDACTED] [REDACTED]" {
		t.Fatalf("after retirement: %q, want both values still scrubbed for the redaction retention", got)
	}
	if len(a.retired) != 0 {
		t.Errorf("%d retired entries left", len(a.retired))
	}
	// The secrets section's retention reaches the process-wide registry; ending it
	// drops the old syncer's value only.
	next.SetRetention(0, 10)
	if got, _ := reg.Redact(line); got != "old-password-123 [REDACTED]" {
		t.Fatalf("after the retention: %q, want only the new value scrubbed", got)
	}
	next.Remove("database/creds/app")
	if got, _ := reg.Redact(line); got != line {
		t.Errorf("after Remove: %q", got)
	}
}
