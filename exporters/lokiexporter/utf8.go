package lokiexporter

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/pipeline"
)

// utf8Fixer makes the strings of records valid UTF-8 before they are sent: Loki
// refuses a push holding invalid UTF-8 as a whole, with every valid record in it.
// Each maximal run of invalid bytes becomes U+FFFD (strings.ToValidUTF8), and each
// string fixed is counted by field. Label values are fixed where labels are built
// (buildLabels, labelValue), with "?" rather than U+FFFD, which Loki's label parser
// refuses.
type utf8Fixer struct {
	line, meta prometheus.Counter
}

// fix makes r's line, request ID and metadata valid UTF-8. Metadata is copied before
// it is changed, as sources may share it between records.
func (f *utf8Fixer) fix(r *pipeline.Record) {
	var seen metaSeen
	f.fixSeen(r, &seen)
}

// metaSeen is the metadata slice fixSeen last found valid: the records of one file
// share theirs, which is then checked once per batch instead of once per record.
type metaSeen struct {
	first *pipeline.Label
	n     int
}

// fixSeen is fix for the records of one batch, with seen shared between them.
func (f *utf8Fixer) fixSeen(r *pipeline.Record, seen *metaSeen) {
	if !pipeline.ValidUTF8(r.Line) {
		r.Line = strings.ToValidUTF8(r.Line, "\uFFFD")
		f.line.Inc()
	}
	if !pipeline.ValidUTF8(r.RequestID) {
		r.RequestID = strings.ToValidUTF8(r.RequestID, "\uFFFD")
		f.meta.Inc()
	}
	if len(r.Metadata) == 0 || (&r.Metadata[0] == seen.first && len(r.Metadata) == seen.n) {
		return
	}
	copied := false
	for i, m := range r.Metadata {
		if pipeline.ValidUTF8(m.Name) && pipeline.ValidUTF8(m.Value) {
			continue
		}
		if !copied {
			r.Metadata = slices.Clone(r.Metadata)
			copied = true
		}
		r.Metadata[i] = pipeline.Label{Name: strings.ToValidUTF8(m.Name, "\uFFFD"), Value: strings.ToValidUTF8(m.Value, "\uFFFD")}
		f.meta.Inc()
	}
	if !copied {
		*seen = metaSeen{first: &r.Metadata[0], n: len(r.Metadata)}
	}
}
