package sentryexporter

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/internal/confval"
)

// TestRateLimitSeriesExistFromTheStart checks that a new exporter exports its
// rate-limit counters for "all" and "error" at 0 before any limit, so dashboards and
// alerts see a series and increase() counts the first limit.
func TestRateLimitSeriesExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{DSN: confval.Secret("http://key@127.0.0.1:1/1")}, Settings{Name: "sentry"}, NewMetrics(reg)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "outrider_sentry_rate_limited_seconds_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["exporter"] == "sentry" {
				got[labels["category"]] = m.GetCounter().GetValue()
			}
		}
	}
	for _, c := range []string{"all", "error"} {
		if v, ok := got[c]; !ok || v != 0 {
			t.Errorf("category %s: %v, %v; want a series at 0", c, v, ok)
		}
	}
}
