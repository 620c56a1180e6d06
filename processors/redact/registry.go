package redact

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Retention defaults: see SetRetention.
const (
	// DefaultRetention is how long a value stays registered after its last owner
	// dropped it: a day covers a backlog read after a day-long backend outage or
	// agent stop, and the previous file kept by a daily log rotation.
	DefaultRetention = 24 * time.Hour
	// DefaultMaxRetained bounds the values kept after being dropped: with 5-minute
	// database leases (two values each) a day of rotations is 576 values.
	DefaultMaxRetained = 1000
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
	// owners that registered it; a value no owner holds any more stays until its
	// retention ends (retained).
	patterns map[string]*valuePatterns
	retained map[string]time.Time // value → when it stops being scrubbed
	keep     time.Duration
	maxKeep  int
	next     time.Time // the earliest time in retained
	now      func() time.Time
}

// ownerValues are the values an owner set: all of them, sorted and distinct, and
// those long enough to register.
type ownerValues struct {
	all, keep []string
}

type valuePatterns struct {
	patterns []form
	owners   int // 0: retained only
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
		retained: make(map[string]time.Time),
		keep:     DefaultRetention,
		maxKeep:  DefaultMaxRetained,
		now:      time.Now,
	}
}

// SetRetention sets how long a value stays registered after its last owner dropped
// it (a rotation replaced it, Set without it, Remove), and how many such values are
// kept at most: past max, the ones whose retention ends first go first, counted in
// outrider_redact_retained_dropped_total. A log line written with an old credential
// may be read long after the rotation (a backlog after an outage), so the old value
// must still be scrubbed then. keep 0 drops values at once. It applies to values
// retained already too.
func (r *Registry) SetRetention(keep time.Duration, max int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if keep == r.keep && max == r.maxKeep {
		return
	}
	now := r.now()
	for v, until := range r.retained {
		// Shorten or lengthen from when the value was dropped.
		r.retained[v] = until.Add(keep - r.keep)
	}
	r.keep, r.maxKeep = keep, max
	r.next = time.Time{} // expire looks at every value
	if r.expire(now) {
		r.rebuild()
	}
}

// Expire drops the retained values whose retention has ended. Set and Remove do it
// too; a caller that changes nothing for a long time may call it on a ticker.
func (r *Registry) Expire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.expire(r.now()) {
		r.rebuild()
	}
}

// expire drops retained values whose time is up, then the earliest ones past
// maxKeep, and reports whether any was dropped. r.mu is held.
func (r *Registry) expire(now time.Time) bool {
	if len(r.retained) == 0 || (now.Before(r.next) && len(r.retained) <= r.maxKeep) {
		return false
	}
	changed := false
	for v, until := range r.retained {
		if !now.Before(until) {
			delete(r.retained, v)
			delete(r.patterns, v)
			changed = true
		}
	}
	if over := len(r.retained) - max(r.maxKeep, 0); over > 0 {
		type kept struct {
			v     string
			until time.Time
		}
		all := make([]kept, 0, len(r.retained))
		for v, until := range r.retained {
			all = append(all, kept{v, until})
		}
		slices.SortFunc(all, func(a, b kept) int { return a.until.Compare(b.until) })
		for _, k := range all[:over] {
			delete(r.retained, k.v)
			delete(r.patterns, k.v)
		}
		r.metrics.retainedDropped.Add(float64(over))
		changed = true
	}
	r.next = time.Time{}
	for _, until := range r.retained {
		if r.next.IsZero() || until.Before(r.next) {
			r.next = until
		}
	}
	r.metrics.retained.Set(float64(len(r.retained)))
	return changed
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
		if r.expire(r.now()) {
			r.rebuild()
		}
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
		if vp.owners == 0 {
			delete(r.retained, v) // registered again
		}
		vp.owners++
	}
	if old != nil {
		r.release(old.keep)
	}
	r.expire(r.now())
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
		r.expire(r.now())
		r.rebuild()
	}
}

// release drops one owner's reference to each of values; a value no owner holds any
// more is retained (see SetRetention). r.mu is held.
func (r *Registry) release(values []string) {
	now := r.now()
	for _, v := range values {
		if vp := r.patterns[v]; vp != nil {
			if vp.owners--; vp.owners <= 0 {
				vp.owners = 0
				until := now.Add(r.keep)
				r.retained[v] = until
				if r.next.IsZero() || until.Before(r.next) {
					r.next = until
				}
			}
		}
	}
	r.metrics.retained.Set(float64(len(r.retained)))
}

// rebuild publishes a matcher for the values now registered. r.mu is held.
func (r *Registry) rebuild() {
	var all []form
	for _, vp := range r.patterns {
		all = append(all, vp.patterns...)
	}
	all = dedupe(all)
	r.cur.Store(newMatcher(all))
	r.metrics.retained.Set(float64(len(r.retained)))
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
	return m.redact(s, nil)
}

// MayHold reports whether b may hold a registered value: an occurrence of any form
// of one, or a prefix of at least 8 bytes of one anywhere in b (a value cut where a
// field inside b ends). It does not look for values split by line breaks: a caller
// that uses it to decide whether structured data (an OTLP request, whose protobuf
// bytes are full of 0x0a) needs scrubbing field by field must treat a field holding
// a line break as needing it. It never allocates; b is not kept.
func (r *Registry) MayHold(b []byte) bool {
	m := r.cur.Load()
	if m == nil {
		return false
	}
	return m.mayHold(unsafe.String(unsafe.SliceData(b), len(b)))
}

// Empty reports whether no value is registered, in which case Redact returns its
// argument unchanged. A scrubber may use it to skip walking a structure.
func (r *Registry) Empty() bool { return r.cur.Load() == nil }
