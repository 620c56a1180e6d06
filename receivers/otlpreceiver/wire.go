package otlpreceiver

import (
	"bytes"
	"encoding/binary"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The trace hot path works on the wire form. Decoding a request into pdata and
// encoding it again costs most of the receiver's CPU and garbage; but enriching a
// request only appends a few resource attributes, and a request the application
// built correctly needs nothing else. fastTraces walks the request once — checking
// every known field's wire type and length as strictly as pdata's decoder, counting
// spans — and rewrites only the Resource messages. Anything unusual (a span without
// IDs, a field it does not expect) makes it step aside for the pdata path, which
// decides and explains. So does anything that may hold a live secret value: any
// registered form of one, or an 8-byte prefix of one (a value an SDK truncated),
// anywhere in the bytes (redact.Registry.MayHold), and, while values are registered,
// any string or bytes field with a line break (a value split over lines).

// message kinds of the OTLP trace schema the walker checks.
type msgKind uint8

const (
	mRequest msgKind = iota
	mResourceSpans
	mResource
	mKeyValue
	mAnyValue
	mArrayValue
	mKeyValueList
	mScopeSpans
	mScope
	mSpan
	mEvent
	mLink
	mStatus
	mEntityRef
	mNone // a scalar, bytes or string: no nested check
)

// field is what the walker expects of one field number.
type field struct {
	known bool
	typ   protowire.Type
	kind  msgKind // for BytesType: the nested message, or mNone
	size  int     // for BytesType IDs: the only allowed lengths besides 0
}

// maxField is the highest field number the schema knows.
const maxField = 16

// schema maps message kind → field number → expectation, built from schemaDef.
var schema = func() (s [mNone + 1][maxField + 1]field) {
	for k, fields := range schemaDef {
		for num, f := range fields {
			f.known = true
			s[k][num] = f
		}
	}
	return s
}()

// schemaDef maps message kind → field number → expectation. Unknown numbers are
// skipped, as every protobuf decoder does.
var schemaDef = [...]map[protowire.Number]field{
	mRequest:       {1: {false, protowire.BytesType, mResourceSpans, 0}},
	mResourceSpans: {1: {false, protowire.BytesType, mResource, 0}, 2: {false, protowire.BytesType, mScopeSpans, 0}, 3: {false, protowire.BytesType, mNone, 0}},
	mResource:      {1: {false, protowire.BytesType, mKeyValue, 0}, 2: {false, protowire.VarintType, mNone, 0}, 3: {false, protowire.BytesType, mEntityRef, 0}},
	mKeyValue:      {1: {false, protowire.BytesType, mNone, 0}, 2: {false, protowire.BytesType, mAnyValue, 0}, 3: {false, protowire.VarintType, mNone, 0}},
	mAnyValue: {1: {false, protowire.BytesType, mNone, 0}, 2: {false, protowire.VarintType, mNone, 0}, 3: {false, protowire.VarintType, mNone, 0},
		4: {false, protowire.Fixed64Type, mNone, 0}, 5: {false, protowire.BytesType, mArrayValue, 0}, 6: {false, protowire.BytesType, mKeyValueList, 0},
		7: {false, protowire.BytesType, mNone, 0}, 8: {false, protowire.VarintType, mNone, 0}},
	mArrayValue:   {1: {false, protowire.BytesType, mAnyValue, 0}},
	mKeyValueList: {1: {false, protowire.BytesType, mKeyValue, 0}},
	mScopeSpans:   {1: {false, protowire.BytesType, mScope, 0}, 2: {false, protowire.BytesType, mSpan, 0}, 3: {false, protowire.BytesType, mNone, 0}},
	mScope: {1: {false, protowire.BytesType, mNone, 0}, 2: {false, protowire.BytesType, mNone, 0}, 3: {false, protowire.BytesType, mKeyValue, 0},
		4: {false, protowire.VarintType, mNone, 0}},
	mSpan: {1: {false, protowire.BytesType, mNone, 16}, 2: {false, protowire.BytesType, mNone, 8}, 3: {false, protowire.BytesType, mNone, 0},
		4: {false, protowire.BytesType, mNone, 8}, 5: {false, protowire.BytesType, mNone, 0}, 6: {false, protowire.VarintType, mNone, 0},
		7: {false, protowire.Fixed64Type, mNone, 0}, 8: {false, protowire.Fixed64Type, mNone, 0}, 9: {false, protowire.BytesType, mKeyValue, 0},
		10: {false, protowire.VarintType, mNone, 0}, 11: {false, protowire.BytesType, mEvent, 0}, 12: {false, protowire.VarintType, mNone, 0},
		13: {false, protowire.BytesType, mLink, 0}, 14: {false, protowire.VarintType, mNone, 0}, 15: {false, protowire.BytesType, mStatus, 0},
		16: {false, protowire.Fixed32Type, mNone, 0}},
	mEvent: {1: {false, protowire.Fixed64Type, mNone, 0}, 2: {false, protowire.BytesType, mNone, 0}, 3: {false, protowire.BytesType, mKeyValue, 0},
		4: {false, protowire.VarintType, mNone, 0}},
	mLink: {1: {false, protowire.BytesType, mNone, 16}, 2: {false, protowire.BytesType, mNone, 8}, 3: {false, protowire.BytesType, mNone, 0},
		4: {false, protowire.BytesType, mKeyValue, 0}, 5: {false, protowire.VarintType, mNone, 0}, 6: {false, protowire.Fixed32Type, mNone, 0}},
	mStatus:    {1: {false, protowire.VarintType, mNone, 0}, 2: {false, protowire.BytesType, mNone, 0}, 3: {false, protowire.VarintType, mNone, 0}},
	mEntityRef: {1: {false, protowire.BytesType, mNone, 0}, 2: {false, protowire.BytesType, mNone, 0}, 3: {false, protowire.BytesType, mNone, 0}, 4: {false, protowire.BytesType, mNone, 0}},
}

// maxDepth bounds the walker's recursion over nested messages; a deeper request
// leaves the fast path. Requests reach the walker only after scanProto has refused
// values nested past max_value_depth, so the pdata path they leave for is bounded too.
const maxDepth = 48

// walker checks a message tree and counts spans. ok turns false at the first thing
// the fast path does not handle.
type walker struct {
	spans int
	ok    bool
	// errors makes a span with status ERROR or an "exception" event leave the fast
	// path, so that the pdata path can derive error events from it.
	errors bool
	// breaks makes a string or bytes field holding a line break leave the fast path:
	// the probe of the raw request does not look through line breaks (protobuf is
	// full of 0x0a bytes), so a secret split over lines is left to the scrubber.
	breaks bool
}

func (w *walker) walk(b []byte, k msgKind, depth int) {
	if depth > maxDepth {
		w.ok = false
		return
	}
	fields := &schema[k]
	var traceOK, spanOK bool
	// b[i:] is what is left; indexing rather than reslicing keeps the loop short.
	for i := 0; i < len(b); {
		// Tags and lengths below 128 take one byte: decode those inline.
		var (
			num protowire.Number
			typ protowire.Type
		)
		if c := b[i]; c < 0x80 {
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
			i++
		} else {
			var n int
			num, typ, n = protowire.ConsumeTag(b[i:])
			if n < 0 {
				w.ok = false
				return
			}
			i += n
		}
		if typ == protowire.StartGroupType || typ == protowire.EndGroupType || uint32(num-1) >= maxField {
			w.ok = false // groups, and numbers the schema does not know (like ResourceSpans' deprecated 1000): left to pdata
			return
		}
		f := &fields[num]
		if f.known && typ != f.typ {
			w.ok = false
			return
		}
		if typ != protowire.BytesType {
			if w.errors && k == mStatus && num == 3 && i < len(b) && b[i] == byte(ptrace.StatusCodeError) {
				w.ok = false // status code ERROR
				return
			}
			if typ == protowire.VarintType && i < len(b) && b[i] < 0x80 {
				i++
				continue
			}
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				w.ok = false
				return
			}
			i += n
			continue
		}
		var l int
		if i < len(b) && b[i] < 0x80 {
			l = int(b[i])
			i++
		} else {
			v, n := protowire.ConsumeVarint(b[i:])
			if n < 0 || v > uint64(len(b)) {
				w.ok = false
				return
			}
			l = int(v)
			i += n
		}
		if l > len(b)-i {
			w.ok = false
			return
		}
		v := b[i : i+l]
		i += l
		if !f.known {
			continue
		}
		if f.kind != mNone {
			if f.kind == mKeyValue && depth < maxDepth-1 && w.plainKeyValue(v) {
				continue
			}
			if f.kind == mSpan && w.plainSpan(v, depth+1) {
				if !w.ok {
					return
				}
				continue
			}
			w.walk(v, f.kind, depth+1)
			if !w.ok {
				return
			}
			continue
		}
		if w.breaks && f.size == 0 && bytes.IndexByte(v, '\n') >= 0 {
			w.ok = false
			return
		}
		if w.errors && k == mEvent && num == 2 && string(v) == "exception" {
			w.ok = false
			return
		}
		if f.size > 0 {
			if len(v) != 0 && len(v) != f.size {
				w.ok = false // pdata refuses the whole request: let it say why
				return
			}
			if k == mSpan && (num == 1 || num == 2) {
				set := len(v) == f.size && !allZero(v)
				if num == 1 {
					traceOK = set
				} else {
					spanOK = set
				}
			}
		}
	}
	if k == mSpan {
		w.spans++
		if !traceOK || !spanOK {
			w.ok = false // a span the backend cannot store: the slow path refuses it
		}
	}
}

// plainSpan is walk(b, mSpan, depth) for a span whose tags and lengths each take one
// byte (the flags' tag takes two), with its attributes, events, links and status
// walked as walk does: one switch per field instead of the table's checks. It
// returns false, having counted nothing, at anything else (a wire type or number it
// does not expect, a longer length, a truncated field); walk then walks the span
// again and decides. Its checks are never stricter than walk's, and it only sets
// ok false through the same nested walks and ID checks, so the outcome is walk's.
func (w *walker) plainSpan(b []byte, depth int) bool {
	if depth > maxDepth {
		return false
	}
	var traceOK, spanOK bool
	for i := 0; i < len(b); {
		tag := b[i]
		switch tag {
		case 0x39, 0x41: // start_time_unix_nano, end_time_unix_nano: fixed64
			if len(b)-i < 9 {
				return false
			}
			i += 9
			continue
		case 0x30, 0x50, 0x60, 0x70: // kind and the dropped counts: a one-byte varint
			if len(b)-i < 2 || b[i+1] >= 0x80 {
				return false
			}
			i += 2
			continue
		case 0x85: // flags (field 16, fixed32): the tag's second byte, then four bytes
			if len(b)-i < 6 || b[i+1] != 0x01 {
				return false
			}
			i += 6
			continue
		}
		if len(b)-i < 2 || b[i+1] >= 0x80 || int(b[i+1]) > len(b)-i-2 {
			return false
		}
		v := b[i+2 : i+2+int(b[i+1])]
		i += 2 + len(v)
		switch tag {
		case 0x0a: // trace_id
			if len(v) != 0 && len(v) != 16 {
				return false
			}
			traceOK = len(v) == 16 && !allZero(v)
		case 0x12: // span_id
			if len(v) != 0 && len(v) != 8 {
				return false
			}
			spanOK = len(v) == 8 && !allZero(v)
		case 0x22: // parent_span_id
			if len(v) != 0 && len(v) != 8 {
				return false
			}
		case 0x1a, 0x2a: // trace_state, name
			if w.breaks && bytes.IndexByte(v, '\n') >= 0 {
				return false
			}
		case 0x4a: // attributes
			if depth < maxDepth-1 && w.plainKeyValue(v) {
				continue
			}
			w.walk(v, mKeyValue, depth+1)
		case 0x5a: // events
			w.walk(v, mEvent, depth+1)
		case 0x6a: // links
			w.walk(v, mLink, depth+1)
		case 0x7a: // status
			w.walk(v, mStatus, depth+1)
		default:
			return false
		}
		if !w.ok {
			return true // as walk would stop here
		}
	}
	w.spans++
	if !traceOK || !spanOK {
		w.ok = false // a span the backend cannot store: the slow path refuses it
	}
	return true
}

// plainKeyValue reports whether kv is a KeyValue of the shape nearly every
// attribute has — a key and a value holding one string, integer, boolean or double,
// in either order (pdata writes the value first), every length in one byte — and is
// valid as walk would find it. False says nothing: walk decides. Most of a request is
// attributes, so this saves walk two calls and the table's checks for each.
func (w *walker) plainKeyValue(kv []byte) bool {
	// tag1 len1 field1 tag2 len2 field2, the tags 0x0a (key) and 0x12 (value)
	n := len(kv)
	if n < 4 || kv[1] >= 0x80 {
		return false
	}
	j := 2 + int(kv[1])
	if j+2 > n || kv[j+1] >= 0x80 || j+2+int(kv[j+1]) != n {
		return false
	}
	var key, av []byte
	switch {
	case kv[0] == 0x0a && kv[j] == 0x12:
		key, av = kv[2:j], kv[j+2:]
	case kv[0] == 0x12 && kv[j] == 0x0a:
		av, key = kv[2:j], kv[j+2:]
	default:
		return false
	}
	if len(av) < 2 {
		return false
	}
	if w.breaks && bytes.IndexByte(key, '\n') >= 0 {
		return false
	}
	switch av[0] {
	case 0x0a: // string_value: its length, then the bytes
		return int(av[1]) == len(av)-2 && (!w.breaks || bytes.IndexByte(av[2:], '\n') < 0)
	case 0x10, 0x18: // bool_value, int_value: a varint taking the rest
		last := len(av) - 1
		if last > 9 { // ten bytes may overflow: walk checks
			return false
		}
		for _, c := range av[1:last] {
			if c < 0x80 {
				return false
			}
		}
		return av[last] < 0x80
	case 0x21: // double_value: eight bytes
		return len(av) == 9
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fastTraces appends the queue entry of req, enriched, to dst when the fast path can
// handle it; ok false sends the request down the pdata path.
func (r *Receiver) fastTraces(dst, req []byte) (entry []byte, spans int, ok bool) {
	active := r.scrub.active()
	if active && r.scrub.mayHold(req) {
		return nil, 0, false
	}
	if len(r.enrich.attrs) > 64 {
		return nil, 0, false // more than rewrite's bit sets hold
	}
	w := walker{ok: true, errors: r.errors != nil, breaks: active}
	w.walk(req, mRequest, 0)
	if !w.ok || w.spans == 0 {
		return nil, 0, false
	}
	dst = append(dst, byte(KindTraces))
	dst = binary.AppendUvarint(dst, uint64(w.spans))
	if len(r.enrich.attrs) == 0 {
		return append(dst, req...), w.spans, true
	}
	dst, ok = r.enrich.rewrite(dst, req)
	return dst, w.spans, ok
}

// rewrite appends req to dst with each ResourceSpans' resource enriched. req has been
// walked already.
func (e enricher) rewrite(dst, req []byte) ([]byte, bool) {
	for len(req) > 0 {
		num, typ, n := protowire.ConsumeTag(req)
		if num != 1 || typ != protowire.BytesType {
			m := protowire.ConsumeFieldValue(num, typ, req[n:])
			dst = append(dst, req[:n+m]...)
			req = req[n+m:]
			continue
		}
		rs, m := protowire.ConsumeBytes(req[n:])
		req = req[n+m:]
		var ok bool
		if dst, ok = e.resourceSpans(dst, rs); !ok {
			return nil, false
		}
	}
	return dst, true
}

// resourceSpans appends field 1 of the request: the ResourceSpans rs with its resource
// (every occurrence of field 1, merged, as decoders do) rewritten first.
func (e enricher) resourceSpans(dst, rs []byte) ([]byte, bool) {
	// The resource: the concatenation of every occurrence is their merge.
	var res []byte
	multi := false
	for b := rs; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num == 1 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n:])
			if res != nil {
				multi = true
			}
			res = append(res, v...)
		}
		b = b[n+m:]
	}
	if multi {
		return nil, false // rare enough to leave to pdata
	}
	newRes, changed := e.resource(res)
	if !changed {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(len(rs)))
		return append(dst, rs...), true
	}
	body := len(newRes) + protowire.SizeTag(1) + protowire.SizeVarint(uint64(len(newRes)))
	for b := rs; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num != 1 {
			body += n + m
		}
		b = b[n+m:]
	}
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(body))
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(newRes)))
	dst = append(dst, newRes...)
	for b := rs; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num != 1 {
			dst = append(dst, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return dst, true
}

// resource returns the Resource message res with the agent's attributes added where
// missing (or replaced, with overwrite, and where service.name is the SDK
// placeholder), and whether anything changed.
func (e enricher) resource(res []byte) ([]byte, bool) {
	var put uint64 // bit i: attribute i is to be written
	for i := range e.attrs {
		put |= 1 << i
	}
	var replace uint64 // bit i: an existing attribute i is dropped
	for b := res; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if num == 1 && typ == protowire.BytesType {
			kv, _ := protowire.ConsumeBytes(b[n:])
			key, unset := kvKeyValue(kv)
			for i, a := range e.attrs {
				if a.key != key {
					continue
				}
				if e.overwrite || (a.key == "service.name" && unset) {
					replace |= 1 << i
				} else {
					put &^= 1 << i
				}
			}
		}
		b = b[n+m:]
	}
	if put == 0 {
		return res, false
	}
	out := make([]byte, 0, len(res)+64*len(e.attrs))
	for b := res; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		drop := false
		if num == 1 && typ == protowire.BytesType && replace != 0 {
			kv, _ := protowire.ConsumeBytes(b[n:])
			key, _ := kvKeyValue(kv)
			for i, a := range e.attrs {
				if replace&(1<<i) != 0 && a.key == key {
					drop = true
				}
			}
		}
		if !drop {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	for i, a := range e.attrs {
		if put&(1<<i) != 0 {
			out = appendKeyValue(out, a.key, a.value)
		}
	}
	return out, true
}

// kvKeyValue returns a KeyValue's key and whether its value, as pdata would read it,
// is unset: no value, an empty value, an empty string or the SDKs' "unknown_service"
// placeholder (the last occurrence of each field wins, as in decoders).
func kvKeyValue(kv []byte) (key string, unset bool) {
	unset = true
	for len(kv) > 0 {
		num, typ, n := protowire.ConsumeTag(kv)
		m := protowire.ConsumeFieldValue(num, typ, kv[n:])
		if num == 1 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(kv[n:])
			key = string(v)
		} else if num == 2 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(kv[n:])
			unset = true
			for av := v; len(av) > 0; {
				an, at, k := protowire.ConsumeTag(av)
				am := protowire.ConsumeFieldValue(an, at, av[k:])
				if an == 1 && at == protowire.BytesType {
					str, _ := protowire.ConsumeBytes(av[k:])
					unset = len(str) == 0 || bytes.HasPrefix(str, []byte("unknown_service"))
				} else if an == 7 && at == protowire.BytesType {
					b, _ := protowire.ConsumeBytes(av[k:])
					unset = len(b) == 0 // pdata reads empty bytes as ""
				} else if an >= 2 && an <= 8 {
					unset = false
				}
				av = av[k+am:]
			}
		}
		kv = kv[n+m:]
	}
	return key, unset
}

// appendKeyValue appends the KeyValue message {key, string value} as resource field 1.
func appendKeyValue(dst []byte, key, value string) []byte {
	av := protowire.AppendTag(nil, 1, protowire.BytesType)
	av = protowire.AppendString(av, value)
	kv := protowire.AppendTag(nil, 1, protowire.BytesType)
	kv = protowire.AppendString(kv, key)
	kv = protowire.AppendTag(kv, 2, protowire.BytesType)
	kv = protowire.AppendBytes(kv, av)
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, kv)
}
