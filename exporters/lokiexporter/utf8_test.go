package lokiexporter

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrider-dev/outrider/pipeline"
)

// TestUTF8FixSharedMetadata fixes a batch whose records share their metadata, as a
// file's records do: a valid shared slice is checked once and kept, an invalid one is
// fixed for every record that carries it, and the shared slice itself is not changed.
func TestUTF8FixSharedMetadata(t *testing.T) {
	f := utf8Fixer{line: prometheus.NewCounter(prometheus.CounterOpts{Name: "l"}), meta: prometheus.NewCounter(prometheus.CounterOpts{Name: "m"})}
	good := []pipeline.Label{{Name: "filename", Value: "/var/log/app.log"}}
	bad := []pipeline.Label{{Name: "filename", Value: "/var/log/\xffapp.log"}}
	recs := []pipeline.Record{
		{Line: "a", Metadata: good},
		{Line: "b\xfe", Metadata: good},
		{Line: "c", Metadata: bad},
		{Line: "d", Metadata: bad},
		{Line: "e", Metadata: good[:0]},
		{Line: "f", RequestID: "r\xff"},
	}
	var seen metaSeen
	for i := range recs {
		f.fixSeen(&recs[i], &seen)
	}
	for i, r := range recs {
		if !pipeline.ValidUTF8(r.Line) || !pipeline.ValidUTF8(r.RequestID) {
			t.Errorf("record %d: line %q, request id %q", i, r.Line, r.RequestID)
		}
		for _, m := range r.Metadata {
			if !pipeline.ValidUTF8(m.Value) {
				t.Errorf("record %d: metadata %q", i, m.Value)
			}
		}
	}
	if &recs[0].Metadata[0] != &good[0] || &recs[1].Metadata[0] != &good[0] {
		t.Error("valid shared metadata was copied")
	}
	if bad[0].Value != "/var/log/\xffapp.log" {
		t.Error("the shared invalid metadata was changed in place")
	}
	if got := counterValue(t, f.line); got != 1 {
		t.Errorf("%v lines fixed, want 1", got)
	}
	if got := counterValue(t, f.meta); got != 3 {
		t.Errorf("%v metadata and request ids fixed, want 3 (two records share the bad slice)", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
