package diskqueue

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCorruptSeriesExistFromTheStart checks that binding a queue exports its
// damage counter for every reason at 0, so dashboards and alerts see a series before
// the first damage.
func TestCorruptSeriesExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg).bind("traces")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "outrider_queue_corrupt_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["queue"] == "traces" && m.GetCounter().GetValue() == 0 {
				got[labels["reason"]] = true
			}
		}
	}
	for _, r := range []string{ReasonChecksum, ReasonLength, ReasonHeader, ReasonTruncated, ReasonMissing} {
		if !got[r] {
			t.Errorf("reason %s: no series at 0 (have %v)", r, got)
		}
	}
}
