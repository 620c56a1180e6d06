package errorevents

import (
	"sync"
	"time"
)

// limiter admits at most perWindow events of one fingerprint, and maxPerWindow of all
// fingerprints together, per fixed window, and counts what it holds back. The count of
// a fingerprint's suppressed events rides on its next admitted event.
type limiter struct {
	window       time.Duration
	perWindow    int
	maxPerWindow int
	maxKeys      int

	mu      sync.Mutex
	start   time.Time // the current window's start
	total   int       // events admitted in the current window
	entries map[string]*limitEntry
}

type limitEntry struct {
	admitted   int // in the current window
	suppressed int // since the last admitted event
	seen       time.Time
}

// defaultMaxKeys bounds the fingerprints remembered, so memory stays bounded under a
// flood of distinct errors. Entries idle for a whole window with nothing to report are
// forgotten when a window turns.
const defaultMaxKeys = 10000

func newLimiter(window time.Duration, perWindow, maxPerWindow int) *limiter {
	return &limiter{window: window, perWindow: perWindow, maxPerWindow: maxPerWindow, maxKeys: defaultMaxKeys, entries: map[string]*limitEntry{}}
}

// admit decides for one event of fingerprint fp at now. On true, suppressed is how
// many events of fp were held back since the last one admitted.
func (l *limiter) admit(fp string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window {
		l.start = now
		l.total = 0
		for k, e := range l.entries {
			e.admitted = 0
			if e.suppressed == 0 && now.Sub(e.seen) >= l.window {
				delete(l.entries, k)
			}
		}
	}
	e := l.entries[fp]
	if e == nil {
		if len(l.entries) >= l.maxKeys {
			// Too many kinds at once: a flood of distinct errors. Admit none of the new
			// kinds until the window turns; they are counted by the caller.
			return false, 0
		}
		e = &limitEntry{}
		l.entries[fp] = e
	}
	e.seen = now
	if e.admitted >= l.perWindow || l.total >= l.maxPerWindow {
		e.suppressed++
		return false, 0
	}
	e.admitted++
	l.total++
	suppressed, e.suppressed = e.suppressed, 0
	return true, suppressed
}
