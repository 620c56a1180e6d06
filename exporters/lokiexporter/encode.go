package lokiexporter

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/outrider-dev/outrider/pipeline"
)

// Structured metadata names of the correlation fields.
const (
	MetaTraceID   = "trace_id"
	MetaSpanID    = "span_id"
	MetaRequestID = "request_id"
)

// encoder turns records into a snappy-compressed Loki push request (the protobuf
// message push.PushRequest), written by hand straight from the records: the same bytes
// gogo/protobuf's Marshal writes for the request the records make (encode_test.go
// checks this against it, fuzzed), without building that request first. Encoders are
// pooled and keep their buffers between requests, so a steady stream of requests
// allocates (almost) nothing per record, and what they keep holds no pointers per
// record. Each encoder keeps its compressed output, which must live until its request
// is sent; the uncompressed protobuf is only needed while compressing, so all encoders
// of an exporter share one buffer for it.
type encoder struct {
	labels *labelCache
	raw    *rawBuffer

	streams  []streamEntries
	index    map[streamKey]int
	byLabels map[string]int
	// times and sizes are, per record, the timestamp sent and the size of its Entry
	// message; lines, with strip, the line sent.
	times []timestamp
	sizes []int
	lines []string
	out   []byte
	// meta is the encoded structured metadata of the last Metadata slice seen
	// (metaOf), which the records of one file share.
	meta      []byte
	metaFirst *pipeline.Label
	metaN     int
}

// timestamp is a time as a protobuf Timestamp holds it.
type timestamp struct {
	sec  int64
	nsec int32
}

func (a timestamp) compare(b timestamp) int {
	switch {
	case a.sec != b.sec:
		return cmp.Compare(a.sec, b.sec)
	default:
		return cmp.Compare(a.nsec, b.nsec)
	}
}

// streamEntries is one stream of a request: its labels and its records, by index.
type streamEntries struct {
	labels  string
	entries []int32
	size    int // of the Stream message
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

// The range of times a protobuf Timestamp holds: [0001-01-01, 10000-01-01).
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300800
)

// errTimestamp is returned for a record whose time no Timestamp holds.
var errTimestamp = errors.New("timestamp out of range [0001-01-01, 10000-01-01)")

// Field tags (field number << 3 | wire type 2, length-delimited; 1 and 2 varint) of the
// messages written.
const (
	tagRequestStream = 0x0a // PushRequest.streams
	tagStreamLabels  = 0x0a // Stream.labels
	tagStreamEntry   = 0x12 // Stream.entries
	tagEntryTime     = 0x0a // Entry.timestamp
	tagEntryLine     = 0x12 // Entry.line
	tagEntryMeta     = 0x1a // Entry.structuredMetadata
	tagPairName      = 0x0a // LabelPairAdapter.name
	tagPairValue     = 0x12 // LabelPairAdapter.value
	tagTimeSeconds   = 0x08 // Timestamp.seconds
	tagTimeNanos     = 0x10 // Timestamp.nanos
)

// encode returns the compressed request body of recs; see encodeChunks.
func (e *encoder) encode(recs []pipeline.Record, now time.Time, strip bool) ([]byte, error) {
	return e.encodeChunks([]chunk{{recs: recs}}, now, strip)
}

// encodeChunks returns the compressed request body of the records of chunks, taken
// in order. It stays valid until reset. With strip, no entry carries structured
// metadata: the IDs go into the line (lineWithIDs).
func (e *encoder) encodeChunks(chunks []chunk, now time.Time, strip bool) ([]byte, error) {
	n := countRecords(chunks)
	e.times = slices.Grow(e.times[:0], n)[:n]
	e.sizes = slices.Grow(e.sizes[:0], n)[:n]
	if strip {
		e.lines = slices.Grow(e.lines[:0], n)[:n]
	}
	var (
		lastKey streamKey
		lastIdx = -1
		i       = -1
	)
	for c := range chunks {
		recs := chunks[c].recs
		for k := range recs {
			i++
			r := &recs[k]
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
			t := timestamp{sec: ts.Unix(), nsec: int32(ts.Nanosecond())}
			if t.sec < minTimestampSeconds || t.sec >= maxTimestampSeconds {
				return nil, fmt.Errorf("encode push request: %w: %s", errTimestamp, strconv.FormatInt(t.sec, 10))
			}
			e.times[i] = t
			line := r.Line
			if strip {
				line = lineWithIDs(r)
				e.lines[i] = line
			}
			e.sizes[i] = e.entrySize(t, line, r, strip)
			st := &e.streams[idx]
			st.entries = append(st.entries, int32(i))
		}
	}

	total := 0
	for i := range e.streams {
		st := &e.streams[i]
		times := e.times
		if !slices.IsSortedFunc(st.entries, func(a, b int32) int { return times[a].compare(times[b]) }) {
			slices.SortStableFunc(st.entries, func(a, b int32) int { return times[a].compare(times[b]) })
		}
		n := fieldSize(len(st.labels))
		for _, j := range st.entries {
			n += 1 + varintLen(uint64(e.sizes[j])) + e.sizes[j]
		}
		st.size = n
		total += 1 + varintLen(uint64(n)) + n
	}

	e.raw.mu.Lock()
	defer e.raw.mu.Unlock()
	if cap(e.raw.buf) > maxRetainedBuffer && total <= maxRetainedBuffer {
		e.raw.buf = nil
	}
	raw := grow(e.raw.buf, total)[:0]
	var cur recordCursor
	for i := range e.streams {
		st := &e.streams[i]
		raw = append(raw, tagRequestStream)
		raw = appendVarint(raw, uint64(st.size))
		raw = appendString(raw, tagStreamLabels, st.labels)
		for _, j := range st.entries {
			r := cur.at(chunks, int(j))
			raw = append(raw, tagStreamEntry)
			raw = appendVarint(raw, uint64(e.sizes[j]))
			line := r.Line
			if strip {
				line = e.lines[j]
			}
			raw = e.appendEntry(raw, e.times[j], line, r, strip)
		}
	}
	e.raw.buf = raw
	if len(raw) != total {
		return nil, fmt.Errorf("encode push request: encoded %d bytes, sized %d", len(raw), total)
	}
	e.out = grow(e.out, s2.MaxEncodedLen(total))
	return s2.EncodeSnappy(e.out, raw), nil
}

// entrySize returns the size of the Entry message for a record sent with time ts and
// line line, and with its structured metadata unless strip.
func (e *encoder) entrySize(ts timestamp, line string, r *pipeline.Record, strip bool) int {
	t := timestampSize(ts)
	n := 1 + varintLen(uint64(t)) + t + fieldSize(len(line))
	if strip {
		return n
	}
	if r.TraceID != "" {
		n += idPairSize(traceIDPrefix, MetaTraceID, r.TraceID)
	}
	if r.SpanID != "" {
		n += idPairSize(spanIDPrefix, MetaSpanID, r.SpanID)
	}
	if r.RequestID != "" {
		n += idPairSize(requestIDPrefix, MetaRequestID, r.RequestID)
	}
	return n + len(e.metaOf(r.Metadata))
}

// metaOf returns the structuredMetadata fields of md, encoded once for the records
// that share md.
func (e *encoder) metaOf(md []pipeline.Label) []byte {
	if len(md) == 0 {
		return nil
	}
	if &md[0] == e.metaFirst && len(md) == e.metaN {
		return e.meta
	}
	b := e.meta[:0]
	for _, m := range md {
		b = appendPair(b, metadataName(m.Name), m.Value)
	}
	e.meta, e.metaFirst, e.metaN = b, &md[0], len(md)
	return b
}

// appendEntry appends the contents of the Entry message entrySize sized.
func (e *encoder) appendEntry(b []byte, ts timestamp, line string, r *pipeline.Record, strip bool) []byte {
	b = append(b, tagEntryTime)
	b = appendVarint(b, uint64(timestampSize(ts)))
	if ts.sec != 0 {
		b = append(b, tagTimeSeconds)
		b = appendVarint(b, uint64(ts.sec))
	}
	if ts.nsec != 0 {
		b = append(b, tagTimeNanos)
		b = appendVarint(b, uint64(ts.nsec))
	}
	b = appendString(b, tagEntryLine, line)
	if strip {
		return b
	}
	if r.TraceID != "" {
		b = appendIDPair(b, traceIDPrefix, MetaTraceID, r.TraceID)
	}
	if r.SpanID != "" {
		b = appendIDPair(b, spanIDPrefix, MetaSpanID, r.SpanID)
	}
	if r.RequestID != "" {
		b = appendIDPair(b, requestIDPrefix, MetaRequestID, r.RequestID)
	}
	return append(b, e.metaOf(r.Metadata)...)
}

// timestampSize returns the size of the Timestamp message for t.
func timestampSize(t timestamp) int {
	n := 0
	if t.sec != 0 {
		n += 1 + varintLen(uint64(t.sec))
	}
	if t.nsec != 0 {
		n += 1 + varintLen(uint64(t.nsec))
	}
	return n
}

// fieldSize returns the size of a string field of n bytes; an empty one is not sent.
func fieldSize(n int) int {
	if n == 0 {
		return 0
	}
	return 1 + varintLen(uint64(n)) + n
}

// pairSize returns the size of a structuredMetadata field holding name and value.
func pairSize(name, value string) int {
	n := fieldSize(len(name)) + fieldSize(len(value))
	return 1 + varintLen(uint64(n)) + n
}

// The start of the structuredMetadata field of each ID: its name field and the
// value's tag.
const (
	traceIDPrefix   = "\x0a\x08" + MetaTraceID + "\x12"
	spanIDPrefix    = "\x0a\x07" + MetaSpanID + "\x12"
	requestIDPrefix = "\x0a\x0a" + MetaRequestID + "\x12"
)

// idPairSize is pairSize for name, an ID whose name field and value tag are prefix:
// the size appendIDPair writes, without sizing varints when the lengths take one
// byte each.
func idPairSize(prefix, name, value string) int {
	if n := len(prefix) + 1 + len(value); len(value) < 0x80 && n < 0x80 {
		return 2 + n
	}
	return pairSize(name, value)
}

// appendIDPair is appendPair for name, an ID whose name field and value tag are
// prefix: when the lengths take one byte each (IDs are short), the pair is three
// appends.
func appendIDPair(b []byte, prefix, name, value string) []byte {
	n := len(prefix) + 1 + len(value)
	if len(value) >= 0x80 || n >= 0x80 {
		return appendPair(b, name, value)
	}
	b = append(b, tagEntryMeta, byte(n))
	b = append(b, prefix...)
	b = append(b, byte(len(value)))
	return append(b, value...)
}

func appendPair(b []byte, name, value string) []byte {
	b = append(b, tagEntryMeta)
	b = appendVarint(b, uint64(fieldSize(len(name))+fieldSize(len(value))))
	b = appendString(b, tagPairName, name)
	return appendString(b, tagPairValue, value)
}

// appendString appends a string field; an empty one is not sent.
func appendString(b []byte, tag byte, s string) []byte {
	if len(s) == 0 {
		return b
	}
	b = append(b, tag)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendMetadata appends r's structured metadata: its IDs, then its other metadata.
func appendMetadata(meta []pipeline.Label, r *pipeline.Record) []pipeline.Label {
	if r.TraceID != "" {
		meta = append(meta, pipeline.Label{Name: MetaTraceID, Value: r.TraceID})
	}
	if r.SpanID != "" {
		meta = append(meta, pipeline.Label{Name: MetaSpanID, Value: r.SpanID})
	}
	if r.RequestID != "" {
		meta = append(meta, pipeline.Label{Name: MetaRequestID, Value: r.RequestID})
	}
	for _, m := range r.Metadata {
		meta = append(meta, pipeline.Label{Name: metadataName(m.Name), Value: m.Value})
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
			e.streams[idx].entries = e.streams[idx].entries[:0]
		} else {
			e.streams = append(e.streams, streamEntries{})
		}
		e.streams[idx].labels = ls
		e.byLabels[ls] = idx
	}
	e.index[k] = idx
	return idx
}

// reset drops every reference to the last request's records, keeping capacity.
func (e *encoder) reset() {
	for i := range e.streams {
		e.streams[i].labels = ""
		e.streams[i].entries = e.streams[i].entries[:0]
	}
	e.streams = e.streams[:0]
	clear(e.lines[:cap(e.lines)])
	e.lines = e.lines[:0]
	clear(e.index)
	clear(e.byLabels)
	e.metaFirst, e.metaN = nil, 0
	if cap(e.out) > maxRetainedBuffer {
		e.out = nil
	}
}

// varintLen returns the bytes of v as a varint: one per 7 significant bits.
func varintLen(v uint64) int {
	return (bits.Len64(v|1)*9 + 64) / 64
}

// appendVarint appends v as a varint. Each entry has two of 5 bytes (a timestamp's
// seconds and nanoseconds) and a few short ones: those are written without a loop.
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<7:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v)|0x80, byte(v>>7))
	case v < 1<<21:
		return append(b, byte(v)|0x80, byte(v>>7)|0x80, byte(v>>14))
	case v < 1<<28:
		return append(b, byte(v)|0x80, byte(v>>7)|0x80, byte(v>>14)|0x80, byte(v>>21))
	case v < 1<<35:
		return append(b, byte(v)|0x80, byte(v>>7)|0x80, byte(v>>14)|0x80, byte(v>>21)|0x80, byte(v>>28))
	}
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
