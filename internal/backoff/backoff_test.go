package backoff

import (
	"testing"
	"time"
)

// seq returns a deterministic rand source cycling through vals.
func seq(vals ...float64) func() float64 {
	i := 0
	return func() float64 {
		v := vals[i%len(vals)]
		i++
		return v
	}
}

func TestNoJitterGrowsAndCaps(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: JitterNone}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("Next #%d = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Fatalf("after Reset Next = %v, want 100ms", got)
	}
}

func TestZeroValueUsesDefaults(t *testing.T) {
	var b Backoff
	b.Jitter = JitterNone
	if got := b.Next(); got != DefaultInitial {
		t.Fatalf("first = %v, want %v", got, DefaultInitial)
	}
	if got := b.Next(); got != time.Duration(float64(DefaultInitial)*DefaultMultiplier) {
		t.Fatalf("second = %v", got)
	}
}

func TestMaxBelowInitial(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Millisecond, Jitter: JitterNone}
	for i := 0; i < 3; i++ {
		if got := b.Next(); got != time.Second {
			t.Fatalf("Next = %v, want 1s (max raised to initial)", got)
		}
	}
}

func TestFullJitterBounds(t *testing.T) {
	cases := []struct {
		name string
		r    float64
	}{{"low", 0}, {"mid", 0.5}, {"high", 0.999999}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Initial: 10 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 3, Rand: seq(tc.r)}
			ceil := 10 * time.Millisecond
			for i := 0; i < 20; i++ {
				d := b.Next()
				if d < 10*time.Millisecond || d > ceil {
					t.Fatalf("attempt %d: %v outside [10ms, %v]", i, d, ceil)
				}
				ceil = min(ceil*3, 500*time.Millisecond)
			}
		})
	}
}

func TestFullJitterReachesCeiling(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Rand: seq(0.999999)}
	var last time.Duration
	for i := 0; i < 10; i++ {
		last = b.Next()
	}
	if last < 79*time.Millisecond {
		t.Fatalf("with rand≈1 delays should reach the cap, got %v", last)
	}
}

func TestDecorrelatedBounds(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: 300 * time.Millisecond, Multiplier: 3, Jitter: JitterDecorrelated,
		Rand: seq(0.9, 0.1, 0.99, 0.5, 0.0, 0.7)}
	prev := 10 * time.Millisecond
	for i := 0; i < 50; i++ {
		d := b.Next()
		hi := min(prev*3, 300*time.Millisecond)
		if d < 10*time.Millisecond || d > hi+time.Nanosecond {
			t.Fatalf("attempt %d: %v outside [10ms, %v]", i, d, hi)
		}
		prev = d
	}
}

func TestDecorrelatedGrows(t *testing.T) {
	b := Backoff{Initial: time.Millisecond, Max: time.Hour, Jitter: JitterDecorrelated, Rand: seq(0.999)}
	var d time.Duration
	for i := 0; i < 10; i++ {
		d = b.Next()
	}
	if d < 500*time.Millisecond {
		t.Fatalf("decorrelated delays did not grow: %v after 10 attempts", d)
	}
}

func TestBadRandIsClamped(t *testing.T) {
	for _, r := range []float64{-1, 1, 7} {
		b := Backoff{Initial: time.Millisecond, Max: time.Second, Rand: seq(r)}
		for i := 0; i < 5; i++ {
			if d := b.Next(); d < time.Millisecond || d > time.Second {
				t.Fatalf("rand %v: %v out of range", r, d)
			}
		}
	}
}

func TestDefaultRandInRange(t *testing.T) {
	for _, j := range []Jitter{JitterFull, JitterDecorrelated} {
		b := Backoff{Initial: time.Millisecond, Max: 50 * time.Millisecond, Jitter: j}
		for i := 0; i < 1000; i++ {
			if d := b.Next(); d < time.Millisecond || d > 50*time.Millisecond {
				t.Fatalf("jitter %d: %v out of range", j, d)
			}
		}
	}
}

func BenchmarkNext(b *testing.B) {
	b.ReportAllocs()
	bo := Backoff{Initial: time.Millisecond, Max: time.Second}
	for b.Loop() {
		bo.Next()
	}
}
