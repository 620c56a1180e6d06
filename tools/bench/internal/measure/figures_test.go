package measure

import (
	"slices"
	"testing"
	"time"
)

func TestFigures(t *testing.T) {
	tests := []struct {
		name                 string
		f                    Figures
		perSecond, perCPUSec float64
		peakMiB              float64
	}{
		{name: "measured", f: Figures{Delivered: 1000, Wall: 2 * time.Second, CPU: 500 * time.Millisecond, PeakRSS: 3 * MiB / 2},
			perSecond: 500, perCPUSec: 2000, peakMiB: 1.5},
		{name: "no time to divide by", f: Figures{Delivered: 1000}},
		{name: "negative durations count as none", f: Figures{Delivered: 10, Wall: -time.Second, CPU: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.PerSecond(); got != tt.perSecond {
				t.Errorf("PerSecond = %v, want %v", got, tt.perSecond)
			}
			if got := tt.f.PerCPUSecond(); got != tt.perCPUSec {
				t.Errorf("PerCPUSecond = %v, want %v", got, tt.perCPUSec)
			}
			if got := tt.f.PeakRSSMiB(); got != tt.peakMiB {
				t.Errorf("PeakRSSMiB = %v, want %v", got, tt.peakMiB)
			}
		})
	}
}

func TestFiguresOf(t *testing.T) {
	type result struct {
		Figures
		extra int
	}
	got := FiguresOf([]result{{Figures{Name: "a"}, 1}, {Figures{Name: "b"}, 2}})
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Errorf("FiguresOf = %+v", got)
	}
	if got := FiguresOf[result](nil); len(got) != 0 {
		t.Errorf("FiguresOf(nil) = %+v", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := slices.Clone(tt.in)
		if got := Median(in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Median reordered its argument: %v", in)
		}
	}
}
