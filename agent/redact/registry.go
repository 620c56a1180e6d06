package redact

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Registry holds the secret values to scrub, grouped by owner (whatever registers
// them: a Vault path, a rendered file), and the matcher built from them.
//
// It is safe for concurrent use. Readers (Redact, Sink) load the current matcher
// with one atomic load and never wait; writers (Set, Remove) are serialised, build a
// new immutable matcher and publish it atomically, so a reader sees either the old
// or the new set of values, never a mix.
type Registry struct {
	metrics *Metrics
	cur     atomic.Pointer[matcher]

	mu     sync.Mutex
	owners map[string]*ownerValues
	// patterns caches the encodings of every value registered, with the number of
	// owners that registered it.
	patterns map[string]*valuePatterns
}

// ownerValues are the values an owner set: all of them, sorted and distinct, and
// those long enough to register.
type ownerValues struct {
	all, keep []string
}

type valuePatterns struct {
	patterns []string
	owners   int
}

// NewRegistry returns an empty Registry reporting to metrics (nil: unregistered
// metrics).
func NewRegistry(metrics *Metrics) *Registry {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Registry{
		metrics:  metrics,
		owners:   make(map[string]*ownerValues),
		patterns: make(map[string]*valuePatterns),
	}
}

// Set replaces the values registered under owner with values, each registered as
// is and in its encodings (see the package documentation). Values shorter than
// MinValueLen bytes are ignored and counted in outrider_redact_values_ignored_total.
// Setting no values is Remove. Setting the values already set does nothing, so a
// caller may set them on every poll.
func (r *Registry) Set(owner string, values []string) {
	if len(values) == 0 {
		r.Remove(owner)
		return
	}
	all := slices.Clone(values)
	slices.Sort(all)
	all = slices.Compact(all)
	var keep []string
	short := 0
	for _, v := range all {
		if len(v) < MinValueLen {
			short++
			continue
		}
		keep = append(keep, v)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.owners[owner]
	if old != nil && slices.Equal(old.all, all) {
		return
	}
	r.metrics.short.Add(float64(short))
	r.owners[owner] = &ownerValues{all: all, keep: keep}
	if old != nil && slices.Equal(old.keep, keep) {
		return
	}
	for _, v := range keep {
		vp := r.patterns[v]
		if vp == nil {
			vp = &valuePatterns{patterns: encodings(v)}
			r.patterns[v] = vp
		}
		vp.owners++
	}
	if old != nil {
		r.release(old.keep)
	}
	r.rebuild()
}

// Remove forgets the values registered under owner.
func (r *Registry) Remove(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.owners[owner]
	if old == nil {
		return
	}
	delete(r.owners, owner)
	if len(old.keep) > 0 {
		r.release(old.keep)
		r.rebuild()
	}
}

// release drops one owner's reference to each of values. r.mu is held.
func (r *Registry) release(values []string) {
	for _, v := range values {
		if vp := r.patterns[v]; vp != nil {
			if vp.owners--; vp.owners <= 0 {
				delete(r.patterns, v)
			}
		}
	}
}

// rebuild publishes a matcher for the values now registered. r.mu is held.
func (r *Registry) rebuild() {
	seen := make(map[string]bool)
	var all []string
	for _, vp := range r.patterns {
		for _, p := range vp.patterns {
			if !seen[p] {
				seen[p] = true
				all = append(all, p)
			}
		}
	}
	slices.Sort(all)
	r.cur.Store(newMatcher(all))
	r.metrics.values.Set(float64(len(r.patterns)))
	r.metrics.patterns.Set(float64(len(all)))
}

// Len returns the number of patterns searched for: the distinct registered values
// and encodings of them.
func (r *Registry) Len() int {
	if m := r.cur.Load(); m != nil {
		return len(m.patterns)
	}
	return 0
}

// Redact returns s with every occurrence of a registered value or encoding of one
// replaced by Marker (overlapping or touching occurrences become one Marker), and
// whether anything was replaced. When nothing was, it returns s itself without
// allocating. It is meant for any text on its way out: log lines, metadata, span
// attributes and events, error event fields.
func (r *Registry) Redact(s string) (string, bool) {
	m := r.cur.Load()
	if m == nil {
		return s, false
	}
	return m.redact(s)
}

// Empty reports whether no value is registered, in which case Redact returns its
// argument unchanged. A scrubber may use it to skip walking a structure.
func (r *Registry) Empty() bool { return r.cur.Load() == nil }
