package exportertest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAcksConcurrentWaiters(t *testing.T) {
	a := NewAcks()
	boom := errors.New("boom")
	t.Run("waiters", func(t *testing.T) {
		for id := range 3 {
			t.Run(fmt.Sprint(id), func(t *testing.T) {
				t.Parallel()
				want := error(nil)
				if id == 1 {
					want = boom
				}
				if err := a.Wait(t, id); err != want {
					t.Errorf("batch %d acknowledged with %v, want %v", id, err, want)
				}
			})
		}
		// The parallel waiters run once this function returns; acknowledge meanwhile.
		go func() {
			for id := range 3 {
				var err error
				if id == 1 {
					err = boom
				}
				a.Func(id)(err)
			}
		}()
	})
	if a.Count() != 3 || len(a.Get(1)) != 1 || a.Get(7) != nil {
		t.Errorf("count %d, batch 1 %v, batch 7 %v", a.Count(), a.Get(1), a.Get(7))
	}
}

func TestMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"exporter"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("a").Add(2)
	c.WithLabelValues("b").Add(5)
	g.Set(3)
	h.Observe(1)
	h.Observe(2)
	tests := []struct {
		name   string
		family string
		want   map[string]string
		value  float64
	}{
		{"counter by label", "c_total", map[string]string{"exporter": "b"}, 5},
		{"no such label value", "c_total", map[string]string{"exporter": "z"}, 0},
		{"gauge", "g", nil, 3},
		{"histogram count", "h", nil, 2},
		{"no such family", "nope", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := Metric(t, reg, tt.family, tt.want); v != tt.value {
				t.Errorf("Metric = %v, want %v", v, tt.value)
			}
		})
	}
}

func TestLogBuffer(t *testing.T) {
	var l LogBuffer
	if l.Lines() != nil {
		t.Fatalf("empty buffer has lines %q", l.Lines())
	}
	l.Logger().Info("one", "k", 1)
	l.Logger().Warn("two")
	if lines := l.Lines(); len(lines) != 2 {
		t.Errorf("lines %q, want 2", lines)
	}
}
