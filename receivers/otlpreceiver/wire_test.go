package otlpreceiver

import (
	"bytes"
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

func wireReceiver(overwrite bool, red Redactor) *Receiver {
	cfg := Config{Resource: ResourceConfig{Overwrite: overwrite}}
	cfg.ApplyDefaults()
	return New(cfg, Settings{Traces: &memQueue{}, Redactor: red, Resource: map[string]string{
		"service.name": "checkout", "k8s.pod.name": "checkout-1", "deployment.environment": "prod",
	}})
}

// slowPath is what the pdata path makes of raw: the reference for the fast path.
func slowPath(t *testing.T, r *Receiver, raw []byte) (ptrace.Traces, bool) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		return ptrace.Traces{}, false
	}
	td := req.Traces()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		r.enrich.apply(rss.At(i).Resource())
	}
	return td, true
}

// checkFastMatchesSlow fails unless the fast path's entry holds what the pdata path
// would store.
func checkFastMatchesSlow(t *testing.T, r *Receiver, raw []byte) (fast bool) {
	t.Helper()
	entry, spans, ok := r.fastTraces(nil, raw)
	if !ok {
		return false
	}
	want, decodes := slowPath(t, r, raw)
	if !decodes {
		t.Fatalf("fast path accepted a request pdata refuses: %x", raw)
	}
	if n := dropInvalidSpans(want); n != 0 {
		t.Fatalf("fast path accepted %d spans without IDs", n)
	}
	k, n, data, err := DecodeEntry(entry)
	if err != nil || k != KindTraces || n != spans || n != want.SpanCount() {
		t.Fatalf("entry: %v %v %d spans, walker %d, pdata %d", err, k, n, spans, want.SpanCount())
	}
	var u ptrace.ProtoUnmarshaler
	got, err := u.UnmarshalTraces(data)
	if err != nil {
		t.Fatalf("fast path output does not decode: %v", err)
	}
	dropInvalidSpans(got) // both sides without empty resources and scopes
	if got.ResourceSpans().Len() != want.ResourceSpans().Len() {
		t.Fatalf("resources: %d, want %d", got.ResourceSpans().Len(), want.ResourceSpans().Len())
	}
	for i := 0; i < got.ResourceSpans().Len(); i++ {
		ga := got.ResourceSpans().At(i).Resource().Attributes()
		wa := want.ResourceSpans().At(i).Resource().Attributes()
		if !equalRaw(ga.AsRaw(), wa.AsRaw()) {
			t.Fatalf("resource %d: %v, want %v", i, ga.AsRaw(), wa.AsRaw())
		}
		ga.Clear()
		wa.Clear()
	}
	var m ptrace.JSONMarshaler
	gj, _ := m.MarshalTraces(got)
	wj, _ := m.MarshalTraces(want)
	if !bytes.Equal(gj, wj) {
		t.Fatalf("fast path changed more than the resource:\n got %s\nwant %s", gj, wj)
	}
	return true
}

func equalRaw(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !equalAny(v, w) {
			return false
		}
	}
	return true
}

func equalAny(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && equalRaw(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalAny(x[i], y[i]) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

func wireSeeds() [][]byte {
	var out [][]byte
	add := func(td ptrace.Traces) {
		b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		out = append(out, b)
	}
	add(testTraces(3, 0, map[string]string{"service.name": "unknown_service:java", "k8s.pod.name": "app-set"}))
	add(testTraces(1, 0, nil))
	two := testTraces(2, 0, map[string]string{"service.name": "billing"})
	testTraces(2, 0, map[string]string{"deployment.environment": "dev"}).ResourceSpans().MoveAndAppendTo(two.ResourceSpans())
	sp := two.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.Events().AppendEmpty().Attributes().PutEmptySlice("l").AppendEmpty().SetEmptyMap().PutDouble("d", 1.5)
	sp.Links().AppendEmpty().SetTraceID(traceA)
	sp.Status().SetMessage("boom")
	sp.TraceState().FromRaw("k=v")
	add(two)
	noRes := ptrace.NewTraces()
	testTraces(1, 0, nil).ResourceSpans().MoveAndAppendTo(noRes.ResourceSpans())
	add(noRes)
	add(testTraces(2, 1, nil)) // a span without IDs: slow path
	return out
}

func TestFastPathMatchesPdata(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		r := wireReceiver(overwrite, nil)
		for i, raw := range wireSeeds() {
			fast := checkFastMatchesSlow(t, r, raw)
			if want := i != 4; fast != want {
				t.Errorf("seed %d: fast path taken = %v, want %v", i, fast, want)
			}
		}
	}
}

func TestFastPathStepsAsideForSecretsAndOddInput(t *testing.T) {
	raw := wireSeeds()[0]
	if _, _, ok := wireReceiver(false, fakeRedactor{"GET"}).fastTraces(nil, raw); ok {
		t.Error("fast path taken for a request holding a secret value")
	}
	if _, _, ok := wireReceiver(false, fakeRedactor{"not-in-there"}).fastTraces(nil, raw); !ok {
		t.Error("fast path not taken for a clean request")
	}
	bad := append([]byte{}, raw...)
	bad[len(bad)-3] ^= 0xff
	r := wireReceiver(false, nil)
	if _, _, ok := r.fastTraces(nil, []byte{0x0a, 0x05, 0x12, 0x03}); ok {
		t.Error("fast path accepted a truncated request")
	}
	checkFastMatchesSlow(t, r, bad)
}

func FuzzFastPath(f *testing.F) {
	for _, s := range wireSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, overwrite bool) {
		checkFastMatchesSlow(t, wireReceiver(overwrite, nil), raw)
	})
}

func BenchmarkTracesPath(b *testing.B) {
	td := ptrace.NewTraces()
	for range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "unknown_service:x")
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range 50 {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(traceA)
			s.SetSpanID([8]byte{1, byte(i)})
			s.SetName("GET /api/v1/orders")
			for _, k := range []string{"http.method", "http.route", "http.url", "net.peer.name", "user_agent.original", "http.scheme", "http.target", "server.address"} {
				s.Attributes().PutStr(k, "some-value-of-moderate-length")
			}
			s.Attributes().PutInt("http.status_code", 200)
			s.Attributes().PutInt("http.response_content_length", 1234)
		}
	}
	raw, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	r := wireReceiver(false, fakeRedactor{"zzzzzzzz"})
	// "fast-nosecrets" without secrets to look for, as in make bench-traces.
	for _, c := range []struct {
		name string
		r    *Receiver
	}{{"fast-nosecrets", wireReceiver(false, nil)}, {"fast", r}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			dst := make([]byte, 0, 2*len(raw))
			for b.Loop() {
				if _, _, ok := c.r.fastTraces(dst[:0], raw); !ok {
					b.Fatal("not fast")
				}
			}
		})
	}
	b.Run("pdata", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(raw); err != nil {
				b.Fatal(err)
			}
			td := req.Traces()
			for i := 0; i < td.ResourceSpans().Len(); i++ {
				r.enrich.apply(td.ResourceSpans().At(i).Resource())
			}
			var m ptrace.ProtoMarshaler
			if _, err := m.MarshalTraces(td); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestErrorSpansReachTheErrorsHook(t *testing.T) {
	var got []int
	r := wireReceiver(false, nil)
	r.errors = func(_ context.Context, td ptrace.Traces) { got = append(got, td.SpanCount()) }
	ok := wireSeeds()[0]
	if _, _, fast := r.fastTraces(nil, ok); !fast {
		t.Fatal("a request without errors left the fast path")
	}
	for name, mutate := range map[string]func(ptrace.Span){
		"status error":    func(s ptrace.Span) { s.Status().SetCode(ptrace.StatusCodeError) },
		"exception event": func(s ptrace.Span) { s.Events().AppendEmpty().SetName("exception") },
	} {
		td := testTraces(2, 0, nil)
		mutate(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1))
		raw, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if _, _, fast := r.fastTraces(nil, raw); fast {
			t.Errorf("%s: took the fast path, so no error event could be derived", name)
		}
		got = nil
		o, handled := r.consumeTracesProto(context.Background(), raw, "grpc")
		if handled || o.err != nil {
			t.Fatalf("%s: handled by the fast path", name)
		}
		r.consumeTraces(context.Background(), td, "grpc")
		if len(got) != 1 || got[0] != 2 {
			t.Errorf("%s: errors hook got %v, want one request of 2 spans", name, got)
		}
	}
}

// plainKeyValueSeeds are KeyValue messages in both field orders and shapes around the
// ones plainKeyValue takes.
func plainKeyValueSeeds() [][]byte {
	return [][]byte{
		{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, 'v'},                                                  // key, string
		{0x12, 0x03, 0x0a, 0x01, 'v', 0x0a, 0x01, 'k'},                                                  // string, key (pdata's order)
		{0x12, 0x03, 0x18, 0xc8, 0x01, 0x0a, 0x01, 'k'},                                                 // int
		{0x0a, 0x01, 'k', 0x12, 0x02, 0x10, 0x01},                                                       // bool
		{0x0a, 0x01, 'k', 0x12, 0x09, 0x21, 1, 2, 3, 4, 5, 6, 7, 8},                                     // double
		{0x0a, 0x01, 'k', 0x12, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // ten-byte varint
		{0x0a, 0x01, 'k', 0x12, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, // overflow
		{0x0a, 0x01, 'k', 0x12, 0x02, 0x18, 0x80},                                                       // varint cut short
		{0x0a, 0x01, 'k', 0x0a, 0x01, 'j'},                                                              // two keys
		{0x0a, 0x01, 'k', 0x12, 0x00},                                                                   // empty value
		{0x0a, 0x01, '\n', 0x12, 0x03, 0x0a, 0x01, 'v'},                                                 // line break in the key
		{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, '\n'},                                                 // line break in the value
		{0x0a, 0x01, 'k', 0x12, 0x04, 0x0a, 0x01, 'v', 0x00},                                            // trailing byte in the value
		{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x02, 'v'},                                                  // string longer than its value
		{0x0a, 0x01, 'k', 0x12, 0x03, 0x2a, 0x01, 0x00},                                                 // array value
		{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, 'v', 0x18, 0x01},                                      // a third field
		{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01},                                                       // value cut short
	}
}

// checkPlainKeyValue fails when plainKeyValue takes a KeyValue that walk refuses.
func checkPlainKeyValue(t *testing.T, kv []byte, breaks bool) {
	t.Helper()
	w := walker{ok: true, breaks: breaks}
	if !w.plainKeyValue(kv) {
		return
	}
	ref := walker{ok: true, breaks: breaks}
	ref.walk(kv, mKeyValue, 1)
	if !ref.ok {
		t.Fatalf("plainKeyValue took %x (breaks %v), which walk refuses", kv, breaks)
	}
}

func TestPlainKeyValueAgreesWithWalk(t *testing.T) {
	// Taken when not looking for line breaks.
	want := []bool{true, true, true, true, true, false, false, false, false, false, true, true, false, false, false, false, false}
	for i, kv := range plainKeyValueSeeds() {
		for _, breaks := range []bool{false, true} {
			checkPlainKeyValue(t, kv, breaks)
		}
		if got := (&walker{ok: true}).plainKeyValue(kv); got != want[i] {
			t.Errorf("seed %d %x: plainKeyValue = %v, want %v", i, kv, got, want[i])
		}
	}
	for _, i := range []int{10, 11} {
		if (&walker{ok: true, breaks: true}).plainKeyValue(plainKeyValueSeeds()[i]) {
			t.Errorf("seed %d: a line break taken while looking for line breaks", i)
		}
	}
}

func FuzzPlainKeyValue(f *testing.F) {
	for _, s := range plainKeyValueSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, kv []byte, breaks bool) {
		checkPlainKeyValue(t, kv, breaks)
	})
}

// spanSeeds are the spans of the wire seeds, one Span message each.
func spanSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, raw := range wireSeeds() {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(raw); err != nil {
			t.Fatal(err)
		}
		rss := req.Traces().ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					td := ptrace.NewTraces()
					spans.At(k).CopyTo(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
					b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
					// request 1 -> resource spans 2 -> scope spans 2 -> the span
					for _, num := range []protowire.Number{1, 2, 2} {
						b = fieldBytes(t, b, num)
					}
					out = append(out, b)
				}
			}
		}
	}
	return out
}

// fieldBytes returns the first length-delimited field num of msg.
func fieldBytes(t testing.TB, msg []byte, num protowire.Number) []byte {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		m := protowire.ConsumeFieldValue(n, typ, msg[l:])
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg[l:])
			return v
		}
		msg = msg[l+m:]
	}
	t.Fatalf("no field %d", num)
	return nil
}

// checkPlainSpan fails when plainSpan takes a span and ends otherwise than walk.
func checkPlainSpan(t *testing.T, span []byte, breaks, errors bool) {
	t.Helper()
	w := walker{ok: true, breaks: breaks, errors: errors}
	if !w.plainSpan(span, 3) {
		if w.spans != 0 || !w.ok {
			t.Fatalf("plainSpan stepped aside from %x having counted %d spans, ok %v", span, w.spans, w.ok)
		}
		return
	}
	ref := walker{ok: true, breaks: breaks, errors: errors}
	ref.walk(span, mSpan, 3)
	if w.ok != ref.ok || (w.ok && w.spans != ref.spans) {
		t.Fatalf("plainSpan on %x: ok %v, %d spans; walk: ok %v, %d spans", span, w.ok, w.spans, ref.ok, ref.spans)
	}
}

func TestPlainSpanAgreesWithWalk(t *testing.T) {
	seeds := spanSeeds(t)
	taken := 0
	for _, s := range seeds {
		for _, flags := range [][2]bool{{false, false}, {true, false}, {false, true}} {
			checkPlainSpan(t, s, flags[0], flags[1])
		}
		if (&walker{ok: true}).plainSpan(s, 3) {
			taken++
		}
	}
	if taken < len(seeds)/2 {
		t.Fatalf("plainSpan took %d of %d seed spans", taken, len(seeds))
	}
}

func FuzzPlainSpan(f *testing.F) {
	for _, s := range spanSeeds(f) {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, span []byte, breaks, errors bool) {
		checkPlainSpan(t, span, breaks, errors)
	})
}
