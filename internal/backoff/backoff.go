// Package backoff computes exponential retry delays with jitter.
//
// A Backoff is not safe for concurrent use: give each retry loop its own.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Jitter selects how a delay is randomised.
type Jitter int

const (
	// JitterFull draws each delay uniformly from [Initial, c], where
	// c = min(Max, Initial·Multiplier^n) after n earlier calls to Next: full jitter with a
	// floor of Initial, so that a retry never fires at once.
	JitterFull Jitter = iota
	// JitterDecorrelated draws each delay uniformly from [Initial, previous·Multiplier],
	// capped at Max ("decorrelated jitter"): delays still grow, but retries of many
	// clients spread out instead of moving in step.
	JitterDecorrelated
	// JitterNone returns the plain exponential sequence Initial, Initial·Multiplier, …
	// capped at Max. Meant for tests and for callers that add their own jitter.
	JitterNone
)

// Defaults used for zero-valued fields.
const (
	DefaultInitial    = 250 * time.Millisecond
	DefaultMax        = 30 * time.Second
	DefaultMultiplier = 2.0
)

// Backoff yields growing delays between Initial and Max. The zero value uses the
// defaults above and full jitter.
type Backoff struct {
	// Initial is the first (and smallest) delay; 0 means DefaultInitial.
	Initial time.Duration
	// Max caps every delay; 0 means DefaultMax. A Max below Initial is raised to Initial.
	Max time.Duration
	// Multiplier is the growth factor per attempt; values <= 1 mean DefaultMultiplier.
	Multiplier float64
	// Jitter selects the randomisation.
	Jitter Jitter
	// Rand returns a number in [0, 1); nil uses math/rand/v2. Inject it for
	// deterministic tests.
	Rand func() float64

	cur  float64 // the un-jittered ceiling for the next delay (full, none) or the previous delay (decorrelated)
	init bool
}

func (b *Backoff) params() (initial, maxD, mult float64) {
	initial = float64(b.Initial)
	if b.Initial <= 0 {
		initial = float64(DefaultInitial)
	}
	maxD = float64(b.Max)
	if b.Max <= 0 {
		maxD = float64(DefaultMax)
	}
	if maxD < initial {
		maxD = initial
	}
	mult = b.Multiplier
	if mult <= 1 {
		mult = DefaultMultiplier
	}
	return initial, maxD, mult
}

func (b *Backoff) rand() float64 {
	var f float64
	if b.Rand != nil {
		f = b.Rand()
	} else {
		f = rand.Float64()
	}
	if f < 0 || f >= 1 || f != f {
		return 0
	}
	return f
}

// Next returns the delay to wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	initial, maxD, mult := b.params()
	if !b.init {
		b.init = true
		b.cur = initial
	}
	var d float64
	switch b.Jitter {
	case JitterNone:
		d = b.cur
		b.cur = min(b.cur*mult, maxD)
	case JitterDecorrelated:
		hi := min(b.cur*mult, maxD)
		d = initial + b.rand()*(hi-initial)
		b.cur = d
	default:
		d = initial + b.rand()*(b.cur-initial)
		b.cur = min(b.cur*mult, maxD)
	}
	d = min(max(d, initial), maxD)
	return time.Duration(d)
}

// Reset starts the sequence again from Initial, after a success.
func (b *Backoff) Reset() {
	b.init = false
	b.cur = 0
}
