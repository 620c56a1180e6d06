// Package memtrim returns memory to the kernel once the process has gone quiet after
// work: the free pages of the Go heap (debug.FreeOSMemory), and the pages of the
// executable that start-up or a burst touched (the configuration's parser, package
// initialisation, the code paths of a burst), which the kernel otherwise leaves
// mapped until memory runs short. What is needed again comes back on first use, a
// page at a time (from the page cache, or the disk when the kernel dropped it: the
// first burst after a release pays a few hundred page faults).
//
// Policy decides from the process's allocation counter alone, one sample per
// interval, so an idle process pays one runtime/metrics read per interval: it
// releases at the first quiet interval after start, then again only at the first
// quiet interval after a burst of allocation, never twice for the same quiet time
// and never while busy.
package memtrim

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Policy decides when to release memory. The zero value releases at the first quiet
// sample, and then at the first quiet sample after Busy bytes were allocated.
type Policy struct {
	// Quiet is the allocation between two samples, in bytes, at or below which the
	// process counts as quiet.
	Quiet uint64
	// Busy is how many bytes must have been allocated since the last release for a
	// quiet sample to release again.
	Busy uint64

	primed   bool   // a sample was taken
	released bool   // a release happened
	last     uint64 // the counter at the last sample
	atRel    uint64 // the counter at the last release
}

// Default thresholds: the agent allocates about 15 KiB a second when idle (its
// timers, the tail's polls, the syncer), a burst of a few thousand lines megabytes.
const (
	DefaultQuiet = 1 << 20
	DefaultBusy  = 8 << 20
)

// NewPolicy returns a Policy with the default thresholds.
func NewPolicy() *Policy { return &Policy{Quiet: DefaultQuiet, Busy: DefaultBusy} }

// Next takes the cumulative count of bytes allocated and reports whether to release
// memory now.
func (p *Policy) Next(allocs uint64) bool {
	if !p.primed {
		p.primed, p.last = true, allocs
		return false
	}
	delta := allocs - p.last
	p.last = allocs
	if delta > p.Quiet {
		return false
	}
	if p.released && allocs-p.atRel < p.Busy {
		return false
	}
	p.released, p.atRel = true, allocs
	return true
}

// allocsMetric is the cumulative count of bytes allocated on the heap.
const allocsMetric = "/gc/heap/allocs:bytes"

// Allocated returns the bytes the process has allocated on the heap so far.
func Allocated() uint64 {
	s := []metrics.Sample{{Name: allocsMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// hooks are the functions Release calls first, by registration number.
var hooks struct {
	mu   sync.Mutex
	next int
	m    map[int]func()
}

// OnRelease registers f, which Release calls before it returns the heap: a component
// drops there what it keeps for reuse (encoders, buffers), which the next burst
// allocates again. f must not block. The returned function unregisters f; it is safe
// to call more than once.
func OnRelease(f func()) (unregister func()) {
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if hooks.m == nil {
		hooks.m = map[int]func(){}
	}
	id := hooks.next
	hooks.next++
	hooks.m[id] = f
	return func() {
		hooks.mu.Lock()
		delete(hooks.m, id)
		hooks.mu.Unlock()
	}
}

// runHooks calls the registered functions.
func runHooks() {
	hooks.mu.Lock()
	fs := make([]func(), 0, len(hooks.m))
	for _, f := range hooks.m {
		fs = append(fs, f)
	}
	hooks.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Release calls the OnRelease functions, returns the free heap to the kernel (a
// garbage collection first) and pages out the executable's read-only mappings. It
// returns how many bytes of the executable were advised, and the error of the
// page-out, which leaves the rest done (kernels before 5.4 have no MADV_PAGEOUT).
func Release() (int64, error) {
	runHooks()
	debug.FreeOSMemory()
	return pageOutExecutable()
}

// UnmapExecutable unmaps the executable's read-only pages from the process and
// leaves them in the page cache, for a point after which the code that touched them
// does not run again while the code that runs next is about to: package
// initialisation, before the agent starts. Unlike Release it keeps what comes back
// cheap (a minor fault, with the neighbours the kernel maps around it) where Release
// makes each page that comes back a read from the disk: measured, exec to /readyz
// took 68 ms with neither, 210 ms with Release after initialisation, 68 ms with
// UnmapExecutable. It returns how many bytes were advised.
func UnmapExecutable() (int64, error) { return unmapExecutable() }
