package lokiexporter

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/outrider-dev/outrider/pipeline"
)

// Structured metadata names of the correlation fields.
const (
	MetaTraceID   = "trace_id"
	MetaSpanID    = "span_id"
	MetaRequestID = "request_id"
)

// encoder turns records into a snappy-compressed push.PushRequest. Encoders are pooled
// and keep their buffers between requests, so a steady stream of requests allocates
// (almost) nothing per record. Each encoder keeps its compressed output, which must
// live until its request is sent; the uncompressed protobuf is only needed while
// compressing, so all encoders of an exporter share one buffer for it.
type encoder struct {
	labels *labelCache
	raw    *rawBuffer

	streams  []push.Stream
	index    map[streamKey]int
	byLabels map[string]int
	meta     []push.LabelAdapter
	sizes    []int
	out      []byte
}

// rawBuffer is the uncompressed-protobuf buffer the encoders of one exporter share.
type rawBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func newEncoder(labels *labelCache, raw *rawBuffer) *encoder {
	return &encoder{
		labels:   labels,
		raw:      raw,
		index:    make(map[streamKey]int),
		byLabels: make(map[string]int),
	}
}

// grow returns b if it holds n bytes, else a new buffer of n bytes rounded up to
// 64 KiB, so that requests of slightly varying size reuse one buffer without keeping
// a large slack.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	const step = 64 << 10
	return make([]byte, n, (n+step-1)/step*step)
}

// maxRetainedBuffer keeps an encoder's byte buffers out of reuse after an unusually
// large request.
const maxRetainedBuffer = 16 << 20

// encode returns the compressed request body. It stays valid until reset. With strip,
// no entry carries structured metadata: the IDs go into the line (lineWithIDs).
func (e *encoder) encode(recs []pipeline.Record, now time.Time, strip bool) ([]byte, error) {
	nmeta := 0
	for i := range recs {
		if strip {
			break
		}
		r := &recs[i]
		nmeta += len(r.Metadata)
		if r.TraceID != "" {
			nmeta++
		}
		if r.SpanID != "" {
			nmeta++
		}
		if r.RequestID != "" {
			nmeta++
		}
	}
	if cap(e.meta) < nmeta {
		e.meta = make([]push.LabelAdapter, 0, nmeta)
	}
	meta := e.meta[:0]

	var (
		lastKey streamKey
		lastIdx = -1
	)
	for i := range recs {
		r := &recs[i]
		k := streamKey{stream: r.Stream, level: r.Level}
		idx := lastIdx
		if idx < 0 || k != lastKey {
			idx = e.stream(k)
			lastKey, lastIdx = k, idx
		}
		ts := r.Time
		if ts.IsZero() {
			ts = now
		}
		if strip {
			e.streams[idx].Entries = append(e.streams[idx].Entries, push.Entry{Timestamp: ts, Line: lineWithIDs(r)})
			continue
		}
		start := len(meta)
		meta = appendMetadata(meta, r)
		ent := push.Entry{Timestamp: ts, Line: r.Line}
		if len(meta) > start {
			ent.StructuredMetadata = meta[start:len(meta):len(meta)]
		}
		e.streams[idx].Entries = append(e.streams[idx].Entries, ent)
	}
	e.meta = meta

	total := 0
	e.sizes = e.sizes[:0]
	for i := range e.streams {
		st := &e.streams[i]
		if !slices.IsSortedFunc(st.Entries, cmpEntryTime) {
			slices.SortStableFunc(st.Entries, cmpEntryTime)
		}
		n := st.Size()
		e.sizes = append(e.sizes, n)
		total += 1 + varintLen(uint64(n)) + n
	}
	e.raw.mu.Lock()
	defer e.raw.mu.Unlock()
	if cap(e.raw.buf) > maxRetainedBuffer && total <= maxRetainedBuffer {
		e.raw.buf = nil
	}
	raw := grow(e.raw.buf, total)
	e.raw.buf = raw
	off := 0
	for i := range e.streams {
		// PushRequest field 1 (streams), wire type 2.
		raw[off] = 0xa
		off++
		off = putVarint(raw, off, uint64(e.sizes[i]))
		n, err := e.streams[i].MarshalToSizedBuffer(raw[off : off+e.sizes[i]])
		if err != nil {
			return nil, fmt.Errorf("encode push request: %w", err)
		}
		if n != e.sizes[i] {
			return nil, fmt.Errorf("encode push request: stream encoded to %d bytes, sized %d", n, e.sizes[i])
		}
		off += n
	}
	e.out = grow(e.out, snappy.MaxEncodedLen(total))
	return snappy.Encode(e.out, raw), nil
}

// appendMetadata appends r's structured metadata: its IDs, then its other metadata.
func appendMetadata(meta []push.LabelAdapter, r *pipeline.Record) []push.LabelAdapter {
	if r.TraceID != "" {
		meta = append(meta, push.LabelAdapter{Name: MetaTraceID, Value: r.TraceID})
	}
	if r.SpanID != "" {
		meta = append(meta, push.LabelAdapter{Name: MetaSpanID, Value: r.SpanID})
	}
	if r.RequestID != "" {
		meta = append(meta, push.LabelAdapter{Name: MetaRequestID, Value: r.RequestID})
	}
	for _, m := range r.Metadata {
		meta = append(meta, push.LabelAdapter{Name: metadataName(m.Name), Value: m.Value})
	}
	return meta
}

// stream returns the index of k's stream in this request, adding it when new. Two
// keys with the same labels share one stream.
func (e *encoder) stream(k streamKey) int {
	if idx, ok := e.index[k]; ok {
		return idx
	}
	ls := e.labels.get(k)
	idx, ok := e.byLabels[ls]
	if !ok {
		idx = len(e.streams)
		if idx < cap(e.streams) {
			// Keep the entry slice the pooled stream already has.
			e.streams = e.streams[:idx+1]
			e.streams[idx].Entries = e.streams[idx].Entries[:0]
		} else {
			e.streams = append(e.streams, push.Stream{})
		}
		e.streams[idx].Labels = ls
		e.streams[idx].Hash = 0
		e.byLabels[ls] = idx
	}
	e.index[k] = idx
	return idx
}

// reset drops every reference to the last request's records, keeping capacity.
func (e *encoder) reset() {
	for i := range e.streams {
		clear(e.streams[i].Entries)
		e.streams[i].Entries = e.streams[i].Entries[:0]
	}
	e.streams = e.streams[:0]
	clear(e.meta[:cap(e.meta)])
	e.meta = e.meta[:0]
	clear(e.index)
	clear(e.byLabels)
	if cap(e.out) > maxRetainedBuffer {
		e.out = nil
	}
}

func cmpEntryTime(a, b push.Entry) int { return a.Timestamp.Compare(b.Timestamp) }

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func putVarint(b []byte, off int, v uint64) int {
	for v >= 0x80 {
		b[off] = byte(v) | 0x80
		v >>= 7
		off++
	}
	b[off] = byte(v)
	return off + 1
}
