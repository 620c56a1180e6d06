package lokiexporter

import (
	"slices"
	"strings"
	"unicode/utf8"

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
	if !utf8.ValidString(r.Line) {
		r.Line = strings.ToValidUTF8(r.Line, "\uFFFD")
		f.line.Inc()
	}
	if !utf8.ValidString(r.RequestID) {
		r.RequestID = strings.ToValidUTF8(r.RequestID, "\uFFFD")
		f.meta.Inc()
	}
	copied := false
	for i, m := range r.Metadata {
		if utf8.ValidString(m.Name) && utf8.ValidString(m.Value) {
			continue
		}
		if !copied {
			r.Metadata = slices.Clone(r.Metadata)
			copied = true
		}
		r.Metadata[i] = pipeline.Label{Name: strings.ToValidUTF8(m.Name, "\uFFFD"), Value: strings.ToValidUTF8(m.Value, "\uFFFD")}
		f.meta.Inc()
	}
}
