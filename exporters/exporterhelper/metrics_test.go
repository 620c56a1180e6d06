package exporterhelper

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDroppedExistsAtZero: an exporter's drop counter has a series for every shared
// reason from the start, so that rate() and alerts on drops see it before the first
// drop.
func TestDroppedExistsAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg).bind("loki")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "outrider_exporter_dropped_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					reasons[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, r := range []string{ReasonRetriesExhausted, ReasonUnauthorized, ReasonTooLarge, ReasonBadRequest} {
		if v, ok := reasons[r]; !ok || v != 0 {
			t.Errorf("dropped{exporter=\"loki\",reason=%q}: present %v, value %v; want a 0 series at start", r, ok, v)
		}
	}
}
