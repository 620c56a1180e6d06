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

// handover is what a Syncer knows of its state file and of the leases its predecessor
// handed over.
type handover struct {
	mu sync.Mutex
	// statePath is Settings.StateFile.
	statePath string
	// inherited are the predecessor's leases, orphans of this Syncer.
	inherited []leaseRef
	// release are predecessors' state files other than statePath: they are removed
	// once this Syncer has saved the inherited leases in its own.
	release []string
}

// openLeases opens the state file at the start of Run or RenderOnce: every lease in
// it and every inherited one is an orphan of this run. The inherited leases are saved
// at once, before the predecessor's file (if another) is removed, so a crash in
// between loses none.
func (s *Syncer) openLeases() {
	h := &s.handover
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := openLeaseBook(h.statePath)
	if err != nil {
		s.log.Warn("cannot use the lease state of an earlier run", "error", err)
	}
	if len(h.inherited) > 0 {
		seen := map[string]bool{}
		for _, l := range b.orphans {
			seen[l.LeaseID] = true
		}
		for _, l := range h.inherited {
			if !seen[l.LeaseID] {
				seen[l.LeaseID] = true
				b.orphans = append(b.orphans, l)
			}
		}
		if err := b.save(); err != nil {
			s.log.Warn("cannot save the leases handed over by the replaced syncer; they end at their TTL if the agent restarts now", "error", err)
		} else {
			h.inherited = nil
		}
	}
	if h.inherited == nil {
		for _, p := range h.release {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("cannot remove the replaced syncer's lease state; after a restart with that data_dir its leases are revoked again, which Vault accepts", "path", p, "error", err)
			}
		}
		h.release = nil
	}
	s.leases = b
}

// HandOver gives next the leases s held and the ones it had still to revoke, so that
// next revokes them once its own first render has been reloaded, as after a restart,
// and never loses one that s took while next was being built. It also hands over the
// state file: when next keeps its state elsewhere (data_dir changed), s's file is
// removed once next has saved the leases in its own.
//
// Call it when s has stopped (its Run returned) or never ran, and before next runs;
// afterwards s must not run. A Syncer may hand over several times (a reload that is
// rolled back hands the leases back to a rebuilt predecessor).
func (s *Syncer) HandOver(next *Syncer) {
	if s == nil || next == nil || s == next {
		return
	}
	h := &s.handover
	h.mu.Lock()
	var refs []leaseRef
	release := h.release
	if s.leases != nil {
		s.leases.mu.Lock()
		refs = append(append(refs, s.leases.current...), s.leases.orphans...)
		s.leases.mu.Unlock()
	} else {
		// s never ran: what its state file holds was never read.
		refs = append(refs, h.inherited...)
		if b, err := openLeaseBook(h.statePath); err == nil {
			refs = append(refs, b.orphans...)
		}
	}
	if h.statePath != "" {
		release = append(release, h.statePath)
	}
	h.inherited, h.release = nil, nil
	s.used.Store(true)
	h.mu.Unlock()

	n := &next.handover
	n.mu.Lock()
	n.inherited = append(n.inherited, refs...)
	for _, p := range release {
		if p != n.statePath && !slices.Contains(n.release, p) {
			n.release = append(n.release, p)
		}
	}
	n.mu.Unlock()
}
