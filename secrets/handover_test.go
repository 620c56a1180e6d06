package secrets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// readState returns the lease IDs in a state file (current and orphans).
func readState(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the state: %v", err)
	}
	var st leaseState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range append(st.Current, st.Orphans...) {
		ids = append(ids, l.LeaseID)
	}
	slices.Sort(ids)
	return ids
}

func orphanIDs(s *Syncer) []string {
	var ids []string
	for _, l := range s.leases.takeOrphans() {
		ids = append(ids, l.LeaseID)
	}
	slices.Sort(ids)
	return ids
}

// TestHandOverKeepsLeasesTakenDuringAReload is the fault of two syncers sharing one
// state file during a reload of the secrets section: the new syncer is built while
// the old one still runs and takes a lease; that lease must reach the new syncer
// (which revokes it later), not be forgotten and left to expire. Leases move through
// HandOver, and the state file is read only when a syncer runs.
func TestHandOverKeepsLeasesTakenDuringAReload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sameDir bool
	}{
		{"same data_dir", true},
		{"data_dir changed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldState := filepath.Join(dir, "a", "secrets-leases.json")
			newState := oldState
			if !tc.sameDir {
				newState = filepath.Join(dir, "b", "secrets-leases.json")
			}
			old, err := New(validConfig(), Settings{StateFile: oldState})
			if err != nil {
				t.Fatal(err)
			}
			old.openLeases() // old runs
			if err := old.leases.setCurrent([]leaseRef{{Path: "db/creds/app", LeaseID: "L1"}}); err != nil {
				t.Fatal(err)
			}
			next, err := New(validConfig(), Settings{StateFile: newState}) // the reload builds the successor
			if err != nil {
				t.Fatal(err)
			}
			// The old syncer rotates while the successor is being built.
			if err := old.leases.setCurrent([]leaseRef{{Path: "db/creds/app", LeaseID: "L2"}}); err != nil {
				t.Fatal(err)
			}
			old.leases.orphans = append(old.leases.orphans, leaseRef{Path: "db/creds/app", LeaseID: "L1"}) // not revoked yet
			old.HandOver(next)                                                                             // old stopped
			next.openLeases()                                                                              // next runs
			if got, want := orphanIDs(next), []string{"L1", "L2"}; !slices.Equal(got, want) {
				t.Fatalf("successor's orphans %v, want %v: a lease would be left to expire", got, want)
			}
			if got := readState(t, newState); !slices.Equal(got, []string{"L1", "L2"}) {
				t.Fatalf("successor's state file holds %v", got)
			}
			if !tc.sameDir {
				if _, err := os.Stat(oldState); !os.IsNotExist(err) {
					t.Fatalf("the replaced syncer's state file is still there (%v): a restart with the old data_dir would revoke its leases again", err)
				}
			}
			if err := old.Run(t.Context()); err == nil {
				t.Fatal("a syncer that handed its leases over ran again")
			}
		})
	}
}

// TestHandOverBackFromASuccessorThatNeverRan: a reload rolled back before the new
// syncer started hands the leases back to the rebuilt previous syncer, with what its
// state file held.
func TestHandOverBackFromASuccessorThatNeverRan(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "a", "secrets-leases.json")
	other := filepath.Join(dir, "b", "secrets-leases.json")
	if err := os.MkdirAll(filepath.Dir(other), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte(`{"current":[{"path":"p","lease_id":"X"}],"orphans":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old, _ := New(validConfig(), Settings{StateFile: state})
	old.openLeases()
	_ = old.leases.setCurrent([]leaseRef{{Path: "p", LeaseID: "L1"}})
	failed, _ := New(validConfig(), Settings{StateFile: other})
	old.HandOver(failed)
	rebuilt, _ := New(validConfig(), Settings{StateFile: state})
	failed.HandOver(rebuilt)
	rebuilt.openLeases()
	if got, want := orphanIDs(rebuilt), []string{"L1", "X"}; !slices.Equal(got, want) {
		t.Fatalf("orphans %v, want %v", got, want)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("the state file of the syncer that never ran is still there: %v", err)
	}
}
