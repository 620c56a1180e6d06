package secrets

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/outrider-dev/outrider/internal/atomicfile"
)

// leaseState is what the Syncer remembers about leases across restarts — lease IDs
// and the paths they came from, never a value: the leases it holds now, and the
// orphans, leases an earlier run (a previous agent process, `render --once` in an init
// container, or the syncer a reload replaced) held and nobody has revoked yet. A new
// run fetches new credentials; once its first render is done and the application
// reloaded with them, it revokes the orphans after revoke_grace, so restarts do not
// leave credentials valid until their TTL runs out.
type leaseState struct {
	Current []leaseRef `json:"current"`
	Orphans []leaseRef `json:"orphans"`
}

// StateFile is where the agent and `render --once` keep the lease state: in
// data_dir, which outlives the process (and, in Kubernetes, is shared with the init
// container).
func StateFile(dataDir string) string { return filepath.Join(dataDir, "secrets-leases.json") }

type leaseRef struct {
	Path    string `json:"path"`
	LeaseID string `json:"lease_id"`
}

// leaseBook keeps the state file. Its methods are safe for concurrent use: the loop
// saves current leases, revocations drop orphans.
type leaseBook struct {
	path string // "" keeps nothing

	mu      sync.Mutex
	orphans []leaseRef
	current []leaseRef
	saved   []byte
}

// openLeaseBook reads the state at path; every lease in it is an orphan of this run.
// A missing file is an empty state; an unreadable one is reported (and replaced).
func openLeaseBook(path string) (*leaseBook, error) {
	b := &leaseBook{path: path}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("read the lease state %s: %w", path, err)
	}
	var st leaseState
	if err := json.Unmarshal(data, &st); err != nil {
		return b, fmt.Errorf("the lease state %s is not valid JSON (%v); leases of earlier runs will end at their TTL", path, err)
	}
	seen := map[string]bool{}
	for _, l := range append(st.Current, st.Orphans...) {
		if l.LeaseID != "" && !seen[l.LeaseID] {
			seen[l.LeaseID] = true
			b.orphans = append(b.orphans, l)
		}
	}
	return b, nil
}

// takeOrphans returns the orphans; they stay in the file until dropped.
func (b *leaseBook) takeOrphans() []leaseRef {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.orphans)
}

// drop forgets an orphan (revoked, or left to expire) and saves.
func (b *leaseBook) drop(leaseID string) error {
	b.mu.Lock()
	b.orphans = slices.DeleteFunc(b.orphans, func(l leaseRef) bool { return l.LeaseID == leaseID })
	b.mu.Unlock()
	return b.save()
}

// setCurrent records the leases held now and saves when anything changed.
func (b *leaseBook) setCurrent(current []leaseRef) error {
	slices.SortFunc(current, func(a, c leaseRef) int { return strings.Compare(a.LeaseID, c.LeaseID) })
	b.mu.Lock()
	b.current = current
	b.mu.Unlock()
	return b.save()
}

func (b *leaseBook) save() error {
	if b.path == "" {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	data, err := json.Marshal(leaseState{Current: b.current, Orphans: b.orphans})
	if err != nil {
		return err
	}
	if string(data) == string(b.saved) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.path), 0o700); err != nil {
		return fmt.Errorf("save the lease state: %w", err)
	}
	if _, err := atomicfile.Write(b.path, data, atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("save the lease state %s: %w", b.path, err)
	}
	b.saved = data
	return nil
}

// currentLeases returns the leases of the Syncer's dependencies.
func (s *Syncer) currentLeases() []leaseRef {
	var out []leaseRef
	for _, d := range s.deps {
		if d.leaseID != "" {
			out = append(out, leaseRef{Path: d.path, LeaseID: d.leaseID})
		}
	}
	return out
}

// saveLeases records the current leases, logging (once per problem) when it cannot.
func (s *Syncer) saveLeases() {
	if err := s.leases.setCurrent(s.currentLeases()); err != nil && err.Error() != s.leaseErr {
		s.leaseErr = err.Error()
		s.log.Warn("cannot save the lease state; after a restart the current leases end at their TTL instead of being revoked", "error", err)
	}
}
