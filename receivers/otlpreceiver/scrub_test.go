package otlpreceiver

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/outrider-dev/outrider/processors/redact"
)

const scrubSecret = "Rot4ted-DB-pass-9137"

// secretForms are the spellings of scrubSecret that must not survive.
func secretForms() []string {
	return []string{scrubSecret, strings.ToLower(scrubSecret), base64.StdEncoding.EncodeToString([]byte(scrubSecret)), hex.EncodeToString([]byte(scrubSecret))}
}

func scrubRegistry() *redact.Registry {
	r := redact.NewRegistry(nil)
	r.Set("database/creds/app", []string{scrubSecret})
	return r
}

// withEntityRef returns an ExportTraceServiceRequest with an entity reference, whose
// strings are all s, added to every resource: pdata keeps entity references but has
// no API to set them.
func withEntityRef(t *testing.T, req []byte, s string) []byte {
	t.Helper()
	var ref []byte
	for num := protowire.Number(1); num <= 4; num++ {
		ref = protowire.AppendTag(ref, num, protowire.BytesType)
		ref = protowire.AppendString(ref, s)
	}
	addRef := func(res []byte) ([]byte, bool) {
		res = protowire.AppendTag(res, 3, protowire.BytesType)
		return protowire.AppendBytes(res, ref), true
	}
	out, ok := rewriteFields(req, func(num protowire.Number) func([]byte) ([]byte, bool) {
		if num != 1 {
			return nil
		}
		return func(rs []byte) ([]byte, bool) {
			return rewriteFields(rs, func(num protowire.Number) func([]byte) ([]byte, bool) {
				if num == 1 {
					return addRef
				}
				return nil
			})
		}
	})
	if !ok {
		t.Fatal("no resource to add an entity reference to")
	}
	return out
}

// secretTraces returns traces holding the secret in every place a request can: keys
// and values at every level (also base64, hex, upper case, bytes values, nested),
// names, status, events, links, and resource entity references.
func secretTraces(t *testing.T) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	fill := func(m pcommon.Map) {
		m.PutStr("plain", "password="+scrubSecret)
		m.PutStr("b64", base64.StdEncoding.EncodeToString([]byte(scrubSecret)))
		m.PutStr("upper", strings.ToUpper(scrubSecret))
		m.PutStr("key-"+scrubSecret, "value")
		m.PutStr(scrubSecret, "value")
		m.PutEmptyBytes("bytes").FromRaw([]byte("raw:" + scrubSecret))
		nested := m.PutEmptyMap("nested")
		nested.PutStr("deep."+scrubSecret, scrubSecret)
		nested.PutEmptySlice("list").AppendEmpty().SetEmptyBytes().FromRaw([]byte(scrubSecret))
	}
	rs.Resource().Attributes().PutStr("service.name", "shop")
	fill(rs.Resource().Attributes())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("scope-" + scrubSecret)
	fill(ss.Scope().Attributes())
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("ALTER USER app WITH PASSWORD '" + scrubSecret + "'")
	fill(sp.Attributes())
	ev := sp.Events().AppendEmpty()
	ev.SetName("ev " + scrubSecret)
	fill(ev.Attributes())
	l := sp.Links().AppendEmpty()
	l.SetTraceID(pcommon.TraceID{2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	l.SetSpanID(pcommon.SpanID{2, 2, 3, 4, 5, 6, 7, 8})
	fill(l.Attributes())
	var m ptrace.ProtoMarshaler
	raw, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return withEntityRef(t, raw, "entity-"+scrubSecret)
}

// TestScrubTracesEverywhere: nothing of the secret survives the pdata path's
// scrubber, wherever the request put it; no attribute is lost.
func TestScrubTracesEverywhere(t *testing.T) {
	raw := secretTraces(t)
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(raw)
	if err != nil {
		t.Fatal(err)
	}
	before := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Len()
	scrubber{scrubRegistry()}.traces(td)
	var m ptrace.ProtoMarshaler
	out, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range secretForms() {
		if bytes.Contains(bytes.ToLower(out), []byte(strings.ToLower(f))) {
			t.Errorf("scrubbed traces still hold %q", f)
		}
	}
	if !bytes.Contains(out, []byte("entity-[REDACTED]")) {
		t.Error("entity reference lost or not scrubbed")
	}
	if after := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Len(); after != before {
		t.Errorf("span attributes: %d before, %d after", before, after)
	}
}

// TestScrubLogsEverywhere does the same for logs, and checks the Loki records made
// of them: metadata names come from attribute keys.
func TestScrubLogsEverywhere(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.pod.name", "pod-"+scrubSecret)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetEmptyMap().PutStr("msg", "login "+scrubSecret)
	lr.Attributes().PutStr("db.password."+scrubSecret, "x")
	lr.Attributes().PutStr("db-"+strings.ToUpper(scrubSecret), "y")
	lr.Attributes().PutEmptyBytes("raw").FromRaw([]byte(scrubSecret))
	scrubber{scrubRegistry()}.logs(ld)
	for _, rec := range LogRecords(ld, ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Timestamp().AsTime()) {
		all := rec.Line + " " + rec.Stream.Get("pod")
		for _, l := range rec.Metadata {
			all += " " + l.Name + "=" + l.Value
		}
		for _, f := range secretForms() {
			if strings.Contains(strings.ToLower(all), strings.ToLower(f)) {
				t.Errorf("Loki record still holds %q: %s", f, all)
			}
		}
		if len(rec.Metadata) != 3 {
			t.Errorf("metadata = %+v", rec.Metadata)
		}
	}
}

// TestFastPathStepsAsideForEveryEncoding: a request holding the secret in any
// covered encoding, in any field, leaves the wire fast path for the scrubbing pdata
// path.
func TestFastPathStepsAsideForEveryEncoding(t *testing.T) {
	r := wireReceiver(false, scrubRegistry())
	for _, enc := range []string{
		scrubSecret,
		base64.StdEncoding.EncodeToString([]byte(scrubSecret)),
		base64.StdEncoding.EncodeToString([]byte("app:" + scrubSecret)),
		hex.EncodeToString([]byte(scrubSecret)),
		strings.ToUpper(scrubSecret),
		scrubSecret[:10] + "\n" + scrubSecret[10:],
		scrubSecret[:2] + "\n" + scrubSecret[2:],
		"truncated by the SDK: " + scrubSecret[:9],
	} {
		for _, where := range []string{"value", "key"} {
			td := ptrace.NewTraces()
			sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			sp.SetName("GET /")
			if where == "value" {
				sp.Attributes().PutStr("auth", enc)
			} else {
				sp.Attributes().PutStr(enc, "x")
			}
			var m ptrace.ProtoMarshaler
			raw, err := m.MarshalTraces(td)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ok := r.fastTraces(nil, raw); ok {
				t.Errorf("%q in a span attribute %s took the fast path", enc, where)
			}
		}
	}
}

// BenchmarkFastPathProbe measures the fast path with 100 real secrets registered:
// the probe of the raw request for every covered form, line-broken forms included.
func BenchmarkFastPathProbe(b *testing.B) {
	td := ptrace.NewTraces()
	for range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "shop")
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range 50 {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			s.SetSpanID([8]byte{1, byte(i)})
			s.SetName("GET /api/v1/orders")
			for _, k := range []string{"http.method", "http.route", "http.url", "net.peer.name", "user_agent.original", "http.scheme", "http.target", "server.address"} {
				s.Attributes().PutStr(k, "some-value-of-moderate-length")
			}
			s.Attributes().PutInt("http.status_code", 200)
		}
	}
	var m ptrace.ProtoMarshaler
	raw, _ := m.MarshalTraces(td)
	for _, n := range []int{0, 100} {
		reg := redact.NewRegistry(nil)
		for i := range n {
			reg.Set(fmt.Sprintf("s%d", i), []string{fmt.Sprintf("secret-%03d-%x", i, i*7919)})
		}
		r := wireReceiver(false, reg)
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			dst := make([]byte, 0, 2*len(raw))
			for b.Loop() {
				if _, _, ok := r.fastTraces(dst[:0], raw); !ok {
					b.Fatal("left the fast path")
				}
			}
		})
	}
}
