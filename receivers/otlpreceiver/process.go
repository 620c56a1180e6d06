package otlpreceiver

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Appender stores accepted requests durably: the durable queue. Append returns once the
// entry is stored; an error wrapping pipeline.ErrFull means no room now (the client is
// told to retry later), any other error that storing failed (the client may retry).
type Appender interface {
	Append(ctx context.Context, entry []byte) error
}

// Redactor replaces live secret values in a string; see processors/redact.Registry.
type Redactor interface {
	// Redact returns s with every secret value replaced, and whether it changed.
	Redact(s string) (string, bool)
	// Empty reports whether there is nothing to redact.
	Empty() bool
}

// attr is one resource attribute the receiver offers.
type attr struct{ key, value string }

// enricher adds the agent's resource attributes to what the application sent.
type enricher struct {
	attrs     []attr
	overwrite bool
}

func newEnricher(resource map[string]string, overwrite bool) enricher {
	e := enricher{overwrite: overwrite}
	for k, v := range resource {
		if v != "" {
			e.attrs = append(e.attrs, attr{k, v})
		}
	}
	sort.Slice(e.attrs, func(i, j int) bool { return e.attrs[i].key < e.attrs[j].key })
	return e
}

func (e enricher) apply(res pcommon.Resource) {
	if len(e.attrs) == 0 {
		return
	}
	m := res.Attributes()
	for _, a := range e.attrs {
		if !e.overwrite {
			if v, ok := m.Get(a.key); ok && !unsetService(a.key, v) {
				continue
			}
		}
		m.PutStr(a.key, a.value)
	}
}

// unsetService reports the SDKs' placeholder for a service without a name
// ("unknown_service" or "unknown_service:<process>"), which the agent's name replaces.
func unsetService(key string, v pcommon.Value) bool {
	if key != "service.name" {
		return false
	}
	s := v.AsString()
	return s == "" || strings.HasPrefix(s, "unknown_service")
}

// dropInvalidSpans removes spans without a trace or span ID, which no trace backend
// can store, and returns how many it removed.
func dropInvalidSpans(td ptrace.Traces) int {
	dropped := 0
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(s ptrace.Span) bool {
				if s.TraceID().IsEmpty() || s.SpanID().IsEmpty() {
					dropped++
					return true
				}
				return false
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	return dropped
}

func invalidSpansMessage(n int) string {
	return fmt.Sprintf("%d spans rejected: trace_id (16 bytes) and span_id (8 bytes) must be set and not all zero", n)
}

// scrubber replaces secret values in every string an export carries: values and
// keys of attributes at every level, bytes values, names, messages, trace states,
// schema URLs, and the entity references of resources.
type scrubber struct{ r Redactor }

func (s scrubber) active() bool { return s.r != nil && !s.r.Empty() }

// holder is implemented by a Redactor that tells cheaply whether bytes may hold a
// value, cut or whole, without looking through line breaks (redact.Registry).
type holder interface{ MayHold(b []byte) bool }

// mayHold reports whether the raw request b may hold a secret value (see fastTraces).
func (s scrubber) mayHold(b []byte) bool {
	if h, ok := s.r.(holder); ok {
		return h.MayHold(b)
	}
	_, found := s.r.Redact(unsafe.String(unsafe.SliceData(b), len(b)))
	return found
}

func (s scrubber) value(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if out, ok := s.r.Redact(v.Str()); ok {
			v.SetStr(out)
		}
	case pcommon.ValueTypeBytes:
		if b := v.Bytes(); b.Len() > 0 {
			raw := b.AsRaw()
			if out, ok := s.r.Redact(unsafe.String(unsafe.SliceData(raw), len(raw))); ok {
				v.SetEmptyBytes().FromRaw([]byte(out))
			}
		}
	case pcommon.ValueTypeMap:
		s.attrs(v.Map())
	case pcommon.ValueTypeSlice:
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			s.value(sl.At(i))
		}
	}
}

// attrs scrubs the values and the keys of m. A key holding a secret is replaced; if
// the scrubbed key is taken, a number is added, so no attribute is lost.
func (s scrubber) attrs(m pcommon.Map) {
	var renames [][2]string
	m.Range(func(k string, v pcommon.Value) bool {
		s.value(v)
		if nk, ok := s.r.Redact(k); ok {
			renames = append(renames, [2]string{k, nk})
		}
		return true
	})
	for _, rn := range renames {
		v, ok := m.Get(rn[0])
		if !ok {
			continue
		}
		tmp := pcommon.NewValueEmpty()
		v.CopyTo(tmp)
		m.Remove(rn[0])
		key := rn[1]
		for i := 2; ; i++ {
			if _, taken := m.Get(key); !taken {
				break
			}
			key = rn[1] + " (" + strconv.Itoa(i) + ")"
		}
		tmp.MoveTo(m.PutEmpty(key))
	}
}

// set replaces a string field through its getter and setter when it holds a secret.
func (s scrubber) set(get func() string, put func(string)) {
	if out, ok := s.r.Redact(get()); ok {
		put(out)
	}
}

func (s scrubber) scope(sc pcommon.InstrumentationScope, schemaURL func() string, setSchemaURL func(string)) {
	s.set(sc.Name, sc.SetName)
	s.set(sc.Version, sc.SetVersion)
	s.set(schemaURL, setSchemaURL)
	s.attrs(sc.Attributes())
}

// resource scrubs a resource's attributes and its entity references (type, schema
// URL, identifying and descriptive keys). pdata keeps entity references but does not
// expose them, so they are reached through the protobuf form of a copy of the
// resource, rewritten and decoded back only when one holds a secret.
func (s scrubber) resource(res pcommon.Resource) {
	s.attrs(res.Attributes())
	tmp := ptrace.NewTraces()
	res.CopyTo(tmp.ResourceSpans().AppendEmpty().Resource())
	var m ptrace.ProtoMarshaler
	data, err := m.MarshalTraces(tmp)
	if err != nil {
		return
	}
	out, changed := s.entityRefs(data)
	if !changed {
		return
	}
	var u ptrace.ProtoUnmarshaler
	back, err := u.UnmarshalTraces(out)
	if err != nil || back.ResourceSpans().Len() != 1 {
		return
	}
	back.ResourceSpans().At(0).Resource().CopyTo(res)
}

// entityRefs returns an ExportTraceServiceRequest with the strings of every
// resource's entity references (resource_spans 1 → resource 1 → entity_refs 3 →
// fields 1 to 4) scrubbed, and whether any changed.
func (s scrubber) entityRefs(req []byte) ([]byte, bool) {
	str := func(b []byte) ([]byte, bool) {
		if out, ok := s.r.Redact(unsafe.String(unsafe.SliceData(b), len(b))); ok {
			return []byte(out), true
		}
		return b, false
	}
	entityRef := func(b []byte) ([]byte, bool) {
		return rewriteFields(b, func(num protowire.Number) func([]byte) ([]byte, bool) {
			if num >= 1 && num <= 4 {
				return str
			}
			return nil
		})
	}
	resource := func(b []byte) ([]byte, bool) {
		return rewriteFields(b, func(num protowire.Number) func([]byte) ([]byte, bool) {
			if num == 3 {
				return entityRef
			}
			return nil
		})
	}
	resourceSpans := func(b []byte) ([]byte, bool) {
		return rewriteFields(b, func(num protowire.Number) func([]byte) ([]byte, bool) {
			if num == 1 {
				return resource
			}
			return nil
		})
	}
	return rewriteFields(req, func(num protowire.Number) func([]byte) ([]byte, bool) {
		if num == 1 {
			return resourceSpans
		}
		return nil
	})
}

// rewriteFields returns msg with the length-delimited fields for which pick returns
// a function replaced by what that function makes of them, and whether any changed.
// msg is well formed (pdata wrote it); anything else is returned unchanged.
func rewriteFields(msg []byte, pick func(protowire.Number) func([]byte) ([]byte, bool)) ([]byte, bool) {
	var out []byte
	for b := msg; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return msg, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return msg, false
		}
		if f := pick(num); f != nil && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n:])
			if nv, changed := f(v); changed {
				if out == nil {
					out = append(make([]byte, 0, len(msg)), msg[:len(msg)-len(b)]...)
				}
				out = protowire.AppendTag(out, num, typ)
				out = protowire.AppendBytes(out, nv)
				b = b[n+m:]
				continue
			}
		}
		if out != nil {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	if out == nil {
		return msg, false
	}
	return out, true
}

// traces scrubs every string a trace request carries: attributes (keys and values)
// at every level, resources' entity references, names, versions, schema URLs,
// trace states, status messages.
func (s scrubber) traces(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		s.resource(rs.Resource())
		s.set(rs.SchemaUrl, rs.SetSchemaUrl)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			s.scope(ss.Scope(), ss.SchemaUrl, ss.SetSchemaUrl)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				s.span(spans.At(k))
			}
		}
	}
}

func (s scrubber) span(sp ptrace.Span) {
	s.set(sp.Name, sp.SetName)
	s.attrs(sp.Attributes())
	s.set(sp.Status().Message, sp.Status().SetMessage)
	ts := sp.TraceState()
	s.set(ts.AsRaw, ts.FromRaw)
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		s.set(ev.Name, ev.SetName)
		s.attrs(ev.Attributes())
	}
	links := sp.Links()
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		s.attrs(l.Attributes())
		lts := l.TraceState()
		s.set(lts.AsRaw, lts.FromRaw)
	}
}

func (s scrubber) logs(ld plog.Logs) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		s.resource(rl.Resource())
		s.set(rl.SchemaUrl, rl.SetSchemaUrl)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			s.scope(sl.Scope(), sl.SchemaUrl, sl.SetSchemaUrl)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				s.value(lr.Body())
				s.attrs(lr.Attributes())
				s.set(lr.EventName, lr.SetEventName)
				s.set(lr.SeverityText, lr.SetSeverityText)
			}
		}
	}
}

// entryPool holds buffers for queue entries: the receiver builds each entry in one and
// returns it once the queue has stored it.
var entryPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledEntry keeps unusually large buffers out of the pool.
const maxPooledEntry = 1 << 20
