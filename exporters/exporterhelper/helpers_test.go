package exporterhelper

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter or gauge; for a histogram it returns the sample count.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	t.Fatalf("unsupported metric %v", &d)
	return 0
}

// item is the test payload: its size is its value.
type item int

func itemSize(i *item) int { return int(*i) }

func items(sizes ...int) []item {
	out := make([]item, len(sizes))
	for i, s := range sizes {
		out[i] = item(s)
	}
	return out
}

func getReq(t *testing.T, q Queue[item]) *Request[item] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, ok := q.Get(ctx)
	if !ok {
		t.Fatal("no request arrived")
	}
	return r
}
