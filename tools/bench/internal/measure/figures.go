// Package measure starts a system under test as a child process and measures it:
// CPU time and peak RSS from /proc while it runs, or the kernel's rusage once it has
// exited, and the per-second figures the benchmarks print and compare.
package measure

import (
	"slices"
	"time"
)

// Figures are the numbers of one run that the benchmarks print and compare.
type Figures struct {
	// Name labels the run: the system or the configuration measured.
	Name string
	// Round is the round of a benchmark that alternates its systems over several
	// rounds, from 1; 0 in one that runs each once.
	Round int
	// Complete is true when every item arrived before the timeout.
	Complete bool
	// Delivered is how many items (lines, spans) arrived.
	Delivered int64
	// Wall is how long the run took; CPU the measured process's CPU time over it.
	Wall, CPU time.Duration
	// PeakRSS is the measured process's resident set high-water mark, in bytes.
	PeakRSS int64
}

// PerSecond is Delivered divided by the wall time, 0 without wall time.
func (f Figures) PerSecond() float64 {
	if f.Wall <= 0 {
		return 0
	}
	return float64(f.Delivered) / f.Wall.Seconds()
}

// PerCPUSecond is Delivered divided by the CPU time, 0 without CPU time.
func (f Figures) PerCPUSecond() float64 {
	if f.CPU <= 0 {
		return 0
	}
	return float64(f.Delivered) / f.CPU.Seconds()
}

// Measured is a result type that embeds Figures.
type Measured interface {
	Measurement() Figures
}

// Measurement returns f; embedding Figures makes a result type Measured.
func (f Figures) Measurement() Figures { return f }

// FiguresOf returns the Figures of each result.
func FiguresOf[T Measured](results []T) []Figures {
	out := make([]Figures, len(results))
	for i, r := range results {
		out[i] = r.Measurement()
	}
	return out
}

// MiB is 2^20 bytes, the MB the benchmarks print.
const MiB = 1 << 20

// PeakRSSMiB is PeakRSS in MiB.
func (f Figures) PeakRSSMiB() float64 { return float64(f.PeakRSS) / MiB }

// Median returns the median of xs (the mean of the middle two for an even count),
// which must not be empty; xs is left as it is.
func Median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}
