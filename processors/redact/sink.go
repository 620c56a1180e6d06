package redact

import (
	"context"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/internal/strarena"
	"github.com/outrider-dev/outrider/pipeline"
)

// Sink scrubs the records of each batch, then hands the batch to the next sink.
//
// It scrubs Record.Line, Record.RequestID and the name and value of every
// Record.Metadata label (OTLP log attributes become metadata, named by the
// application). It leaves alone the stream labels (the agent's identity and configured
// labels), the level, and TraceID and SpanID, which are validated hex ids. A request
// id whose bytes are part of the line's (the parser takes it from the line) is
// searched only when the line held a value: otherwise it holds none either, and what
// it holds the line ships as it is.
//
// A batch large enough to probe most of the matcher's filters reads them in order
// first (see matcher.warm): the rest of the pipeline evicts them between batches.
//
// Scrubbing happens in place, in the batch's records: Line and RequestID are
// replaced. The scrubbed texts of a batch share blocks of scrubBlock bytes (see
// internal/strarena) instead of an allocation each. A Metadata slice may be shared
// by many records (the file source gives all records of a file the same one), so it
// is never written through: a record whose metadata changes gets a new slice. If
// next refuses the batch, the caller keeps the scrubbed records, which is harmless:
// they may be scrubbed again.
type Sink struct {
	next pipeline.Sink
	reg  *Registry

	line, requestID, metadata prometheus.Counter
}

var _ pipeline.Sink = (*Sink)(nil)

// NewSink returns a Sink scrubbing the values registered in r, now and as they
// change, before passing each batch to next. While r is empty a batch costs one
// atomic load.
func NewSink(next pipeline.Sink, r *Registry) *Sink {
	return &Sink{
		next:      next,
		reg:       r,
		line:      r.metrics.scrubbed.WithLabelValues("line"),
		requestID: r.metrics.scrubbed.WithLabelValues("request_id"),
		metadata:  r.metrics.scrubbed.WithLabelValues("metadata"),
	}
}

// Export implements pipeline.Sink: it scrubs b's records and returns next's answer.
func (k *Sink) Export(ctx context.Context, b pipeline.Batch) error {
	if m := k.reg.cur.Load(); m != nil {
		k.scrub(m, b.Records)
	}
	return k.next.Export(ctx, b)
}

// scrubBlock is the size of the blocks a batch's scrubbed texts share: a text up to
// 1 KiB takes part of one. In bench-redact (1% of the lines hold a secret) the
// allocation of each scrubbed line cost the sink 4–6 ns per line of the batch.
const scrubBlock = 8 << 10

func (k *Sink) scrub(m *matcher, recs []pipeline.Record) {
	var lines, ids, metas int
	a := strarena.Arena{BlockSize: scrubBlock}
	// Records usually share their metadata slice: remember what the last one
	// became.
	var lastIn, lastOut []pipeline.Label
	if n := m.warmLines(); n > 0 && len(recs)*warmProbesPerText >= n {
		m.warm()
	}
	for i := range recs {
		r := &recs[i]
		s, lineChanged := m.redact(r.Line, &a)
		if lineChanged {
			lines++
		}
		// A request id the parser took from the line is in the line's bytes:
		// when the line holds nothing, neither does it.
		if r.RequestID != "" && (lineChanged || !within(r.RequestID, r.Line)) {
			if s, ok := m.redact(r.RequestID, &a); ok {
				r.RequestID = s
				ids++
			}
		}
		// A record is written only where something changed: storing a pointer
		// into the batch costs a write barrier while the collector marks, and
		// the stores of every record cost the sink 4–9 ns per line in
		// bench-redact.
		if lineChanged {
			r.Line = s
		}
		if len(r.Metadata) == 0 {
			continue
		}
		if len(r.Metadata) != len(lastIn) || &r.Metadata[0] != &lastIn[0] {
			lastIn = r.Metadata
			lastOut = scrubLabels(m, r.Metadata, &a)
		}
		if &lastOut[0] != &lastIn[0] {
			r.Metadata = lastOut
			metas++
		}
	}
	if lines > 0 {
		k.line.Add(float64(lines))
	}
	if ids > 0 {
		k.requestID.Add(float64(ids))
	}
	if metas > 0 {
		k.metadata.Add(float64(metas))
	}
}

// scrubLabels returns ls, or a scrubbed copy of it when a name or value had to
// change.
func scrubLabels(m *matcher, ls []pipeline.Label, a *strarena.Arena) []pipeline.Label {
	var out []pipeline.Label
	for j, l := range ls {
		v, vok := m.redact(l.Value, a)
		n, nok := m.redact(l.Name, a)
		if !vok && !nok {
			continue
		}
		if out == nil {
			out = make([]pipeline.Label, len(ls))
			copy(out, ls)
		}
		if vok {
			out[j].Value = v
		}
		if nok {
			out[j].Name = metadataName(n)
		}
	}
	if out == nil {
		return ls
	}
	return out
}

// metadataName makes a scrubbed name a valid structured metadata name again:
// "[REDACTED]" becomes "_REDACTED_".
func metadataName(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// within reports whether the bytes of s are part of those of t.
func within(s, t string) bool {
	ps := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	pt := uintptr(unsafe.Pointer(unsafe.StringData(t)))
	return ps >= pt && ps+uintptr(len(s)) <= pt+uintptr(len(t))
}
