package otlpreceiver

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// nest sets v to a value nested depth lists/maps deep (alternating, innermost a
// string), through pdata.
func nest(v pcommon.Value, depth int) {
	for i := 0; i < depth; i++ {
		if i%2 == 0 {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("k")
		}
	}
	v.SetStr("leaf")
}

// placesTraces are the places of a trace request that hold values.
var placesTraces = map[string]func(td ptrace.Traces) pcommon.Value{
	"resource": func(td ptrace.Traces) pcommon.Value {
		return td.ResourceSpans().At(0).Resource().Attributes().PutEmpty("deep")
	},
	"scope": func(td ptrace.Traces) pcommon.Value {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Attributes().PutEmpty("deep")
	},
	"span": func(td ptrace.Traces) pcommon.Value {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep")
	},
	"event": func(td ptrace.Traces) pcommon.Value {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Events().AppendEmpty().Attributes().PutEmpty("deep")
	},
	"link": func(td ptrace.Traces) pcommon.Value {
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Links().AppendEmpty().Attributes().PutEmpty("deep")
	},
}

var placesLogs = map[string]func(ld plog.Logs) pcommon.Value{
	"resource": func(ld plog.Logs) pcommon.Value {
		return ld.ResourceLogs().At(0).Resource().Attributes().PutEmpty("deep")
	},
	"scope": func(ld plog.Logs) pcommon.Value {
		return ld.ResourceLogs().At(0).ScopeLogs().At(0).Scope().Attributes().PutEmpty("deep")
	},
	"log attribute": func(ld plog.Logs) pcommon.Value {
		return ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutEmpty("deep")
	},
	"log body": func(ld plog.Logs) pcommon.Value {
		return ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body()
	},
}

func TestScanProtoEveryPlace(t *testing.T) {
	const limit = 8
	for _, depth := range []int{0, 1, limit, limit + 1, 100} {
		for name, place := range placesTraces {
			td := testTraces(1, 0, nil)
			nest(place(td), depth)
			body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, "traces "+name, body, pTracesRequest, depth, limit)
			jbody, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
			checkScanJSON(t, "traces JSON "+name, jbody, depth, limit)
		}
		for name, place := range placesLogs {
			ld := testLogs("x")
			nest(place(ld), depth)
			body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, "logs "+name, body, pLogsRequest, depth, limit)
			jbody, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
			checkScanJSON(t, "logs JSON "+name, jbody, depth, limit)
		}
		for name, place := range placesMetrics {
			md := testMetrics(1)
			nest(place(md), depth)
			body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			checkScan(t, "metrics "+name, body, pMetricsRequest, depth, limit)
			jbody, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
			checkScanJSON(t, "metrics JSON "+name, jbody, depth, limit)
		}
	}
}

func checkScan(t *testing.T, name string, body []byte, root pkind, depth, limit int) {
	t.Helper()
	st, err := scanProto(body, root, limit)
	if depth > limit {
		if !errors.Is(err, errTooDeep) {
			t.Errorf("%s at depth %d: %v, want refused for depth past %d", name, depth, err, limit)
		}
		return
	}
	if err != nil || st.depth != depth {
		t.Errorf("%s at depth %d: scan %+v, %v", name, depth, st, err)
	}
}

func checkScanJSON(t *testing.T, name string, body []byte, depth, limit int) {
	t.Helper()
	r := &Receiver{cfg: Config{MaxValueDepth: limit}}
	_, ref := r.scanJSON(body, KindTraces)
	if (depth > limit) != (ref != nil) {
		t.Errorf("%s at depth %d: %v, want refused %v", name, depth, ref, depth > limit)
	}
}

// deepAnyValue returns the protobuf of an AnyValue nested depth lists deep, built
// back to front without recursion.
func deepAnyValue(depth int) []byte {
	buf := make([]byte, 16*depth+16)
	p := len(buf)
	prepend := func(b []byte) { p -= len(b); copy(buf[p:], b) }
	prepend([]byte{0x0a, 1, 'x'}) // string_value "x"
	for i := 0; i < depth; i++ {
		n := len(buf) - p
		prepend(protowire.AppendVarint(nil, uint64(n)))
		prepend([]byte{0x0a}) // ArrayValue.values
		n = len(buf) - p
		prepend(protowire.AppendVarint(nil, uint64(n)))
		prepend([]byte{0x2a}) // AnyValue.array_value
	}
	return buf[p:]
}

// TestScanProtoHostile scans a 4 MiB log body nested 400,000 lists deep, as an
// attacker would send it: refused at once, without recursion.
func TestScanProtoHostile(t *testing.T) {
	v := deepAnyValue(400_000)
	lr := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), v)
	sl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), lr)
	rl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sl)
	req := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rl)
	_, err := scanProto(req, pLogsRequest, DefaultMaxValueDepth)
	var de *depthError
	if !errors.As(err, &de) || !errors.Is(err, errTooDeep) {
		t.Fatalf("scan: %v, want too deep", err)
	}
	if want := "receivers.otlp.max_value_depth"; !contains(de.Error(), want) {
		t.Errorf("message %q does not name %s", de.Error(), want)
	}
	if _, err := scanProto(req, pLogsRequest, 1_000_000); err != nil {
		t.Fatalf("the same request within a limit it fits: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// valueDepth is the nesting of lists and maps in v (pdata, recursively: only for
// the small values of tests).
func valueDepth(v pcommon.Value) int {
	d := 0
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			d = max(d, valueDepth(s.At(i)))
		}
		return d + 1
	case pcommon.ValueTypeMap:
		return mapDepth(v.Map()) + 1
	}
	return 0
}

func mapDepth(m pcommon.Map) int {
	d := 0
	m.Range(func(_ string, v pcommon.Value) bool { d = max(d, valueDepth(v)); return true })
	return d
}

func tracesDepth(td ptrace.Traces) int {
	d := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		d = max(d, mapDepth(rss.At(i).Resource().Attributes()))
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			d = max(d, mapDepth(sss.At(j).Scope().Attributes()))
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				d = max(d, mapDepth(sp.Attributes()))
				for e := 0; e < sp.Events().Len(); e++ {
					d = max(d, mapDepth(sp.Events().At(e).Attributes()))
				}
				for l := 0; l < sp.Links().Len(); l++ {
					d = max(d, mapDepth(sp.Links().At(l).Attributes()))
				}
			}
		}
	}
	return d
}

func logsDepth(ld plog.Logs) int {
	d := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		d = max(d, mapDepth(rls.At(i).Resource().Attributes()))
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			d = max(d, mapDepth(sls.At(j).Scope().Attributes()))
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				d = max(d, mapDepth(lrs.At(k).Attributes()), valueDepth(lrs.At(k).Body()))
			}
		}
	}
	return d
}

// metricsDepth is the deepest value of md, in every place pdata keeps values.
func metricsDepth(md pmetric.Metrics) int {
	d := 0
	exemplars := func(exs pmetric.ExemplarSlice) {
		for i := 0; i < exs.Len(); i++ {
			d = max(d, mapDepth(exs.At(i).FilteredAttributes()))
		}
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		d = max(d, mapDepth(rms.At(i).Resource().Attributes()))
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			d = max(d, mapDepth(sms.At(j).Scope().Attributes()))
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				d = max(d, mapDepth(m.Metadata()))
				numbers := func(nps pmetric.NumberDataPointSlice) {
					for p := 0; p < nps.Len(); p++ {
						d = max(d, mapDepth(nps.At(p).Attributes()))
						exemplars(nps.At(p).Exemplars())
					}
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					numbers(m.Gauge().DataPoints())
				case pmetric.MetricTypeSum:
					numbers(m.Sum().DataPoints())
				case pmetric.MetricTypeHistogram:
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						dp := m.Histogram().DataPoints().At(p)
						d = max(d, mapDepth(dp.Attributes()))
						exemplars(dp.Exemplars())
					}
				case pmetric.MetricTypeExponentialHistogram:
					for p := 0; p < m.ExponentialHistogram().DataPoints().Len(); p++ {
						dp := m.ExponentialHistogram().DataPoints().At(p)
						d = max(d, mapDepth(dp.Attributes()))
						exemplars(dp.Exemplars())
					}
				case pmetric.MetricTypeSummary:
					for p := 0; p < m.Summary().DataPoints().Len(); p++ {
						d = max(d, mapDepth(m.Summary().DataPoints().At(p).Attributes()))
					}
				}
			}
		}
	}
	return d
}

func seedsDepth(f *testing.F) {
	for _, depth := range []int{0, 2, 5} {
		td := testTraces(2, 0, map[string]string{"a": "b"})
		for _, place := range placesTraces {
			nest(place(td), depth)
		}
		b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		f.Add(b, false)
		ld := testLogs("x", "y")
		for _, place := range placesLogs {
			nest(place(ld), depth)
		}
		b, _ = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		f.Add(b, true)
	}
	f.Add(deepAnyValue(10), false)
	f.Add([]byte{0x0a, 0x03, 0x0b, 0x0c, 0x00}, true) // a group inside
}

// FuzzScanProto checks scanProto against pdata's decoder: it never refuses as
// malformed what pdata decodes, never measures less nesting than pdata decoded, and
// measures pdata's own encoding of what it decoded exactly.
func FuzzScanProto(f *testing.F) {
	seedsDepth(f)
	f.Fuzz(func(t *testing.T, data []byte, logs bool) {
		const limit = 6
		root := pTracesRequest
		if logs {
			root = pLogsRequest
		}
		st, err := scanProto(data, root, limit)
		if st.depth > limit {
			t.Fatalf("scan measured %d past its limit %d", st.depth, limit)
		}
		got, canonical, perr := decodeDepth(data, logs, false)
		if perr != nil {
			return // the scan may have passed it: pdata explains what is wrong
		}
		switch {
		case err != nil && !errors.Is(err, errTooDeep):
			t.Fatalf("scan refused as malformed what pdata decodes: %v", err)
		case err == nil && st.depth < got:
			t.Fatalf("scan measured depth %d, pdata decoded %d", st.depth, got)
		}
		cst, cerr := scanProto(canonical, root, limit)
		switch {
		case got > limit && !errors.Is(cerr, errTooDeep):
			t.Fatalf("pdata's encoding at depth %d past %d not refused: %v", got, limit, cerr)
		case got <= limit && (cerr != nil || cst.depth != got):
			t.Fatalf("pdata's encoding at depth %d: scan %+v, %v", got, cst, cerr)
		}
	})
}

// FuzzScanProtoMetrics is FuzzScanProto for metrics requests: the scan never
// refuses as malformed what pdata decodes, never measures less nesting than pdata
// decoded, and measures pdata's own encoding of what it decoded exactly.
func FuzzScanProtoMetrics(f *testing.F) {
	for _, depth := range []int{0, 2, 5} {
		md := testMetrics(2)
		for _, place := range placesMetrics {
			nest(place(md), depth)
		}
		b, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x03, 0x0b, 0x0c, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 6
		st, err := scanProto(data, pMetricsRequest, limit)
		if st.depth > limit {
			t.Fatalf("scan measured %d past its limit %d", st.depth, limit)
		}
		req := pmetricotlp.NewExportRequest()
		if perr := req.UnmarshalProto(data); perr != nil {
			return // the scan may have passed it: pdata explains what is wrong
		}
		got := metricsDepth(req.Metrics())
		switch {
		case err != nil && !errors.Is(err, errTooDeep):
			t.Fatalf("scan refused as malformed what pdata decodes: %v", err)
		case err == nil && st.depth < got:
			t.Fatalf("scan measured depth %d, pdata decoded %d", st.depth, got)
		}
		canonical, cerr := req.MarshalProto()
		if cerr != nil {
			t.Fatal(cerr)
		}
		cst, cerr := scanProto(canonical, pMetricsRequest, limit)
		switch {
		case got > limit && !errors.Is(cerr, errTooDeep):
			t.Fatalf("pdata's encoding at depth %d past %d not refused: %v", got, limit, cerr)
		case got <= limit && (cerr != nil || cst.depth != got):
			t.Fatalf("pdata's encoding at depth %d: scan %+v, %v", got, cst, cerr)
		}
	})
}

// FuzzScanJSONMetrics is FuzzScanJSON for metrics requests.
func FuzzScanJSONMetrics(f *testing.F) {
	for _, depth := range []int{0, 3, 7} {
		md := testMetrics(1)
		for _, place := range placesMetrics {
			nest(place(md), depth)
		}
		b, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 6
		r := &Receiver{cfg: Config{MaxValueDepth: limit}}
		_, ref := r.scanJSON(data, KindMetrics)
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalJSON(data); err != nil {
			return
		}
		got := metricsDepth(req.Metrics())
		if ref == nil && got > limit {
			t.Fatalf("accepted a request pdata decodes %d deep, past %d", got, limit)
		}
		canonical, err := req.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, cref := r.scanJSON(canonical, KindMetrics); (cref != nil) != (got > limit) {
			t.Fatalf("pdata's encoding at depth %d (limit %d): %v", got, limit, cref)
		}
	})
}

// FuzzScanJSON checks the OTLP/JSON depth check against pdata: pdata's own JSON
// encoding of what it decoded is refused exactly when deeper than the limit, and a
// request the check accepts decodes no deeper than the limit.
func FuzzScanJSON(f *testing.F) {
	for _, depth := range []int{0, 3, 7} {
		td := testTraces(1, 0, nil)
		for _, place := range placesTraces {
			nest(place(td), depth)
		}
		b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		f.Add(b, false)
		ld := testLogs("x")
		for _, place := range placesLogs {
			nest(place(ld), depth)
		}
		b, _ = plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, logs bool) {
		const limit = 6
		r := &Receiver{cfg: Config{MaxValueDepth: limit}}
		_, ref := r.scanJSON(data, KindTraces)
		got, canonical, perr := decodeDepth(data, logs, true)
		if perr != nil {
			return
		}
		if ref == nil && got > limit {
			t.Fatalf("accepted a request pdata decodes %d deep, past %d", got, limit)
		}
		if _, cref := r.scanJSON(canonical, KindTraces); (cref != nil) != (got > limit) {
			t.Fatalf("pdata's encoding at depth %d (limit %d): %v", got, limit, cref)
		}
	})
}

// decodeDepth decodes data with pdata (protobuf, or JSON) as a logs or traces
// request, and returns the nesting of its values and pdata's own encoding of it.
func decodeDepth(data []byte, logs, asJSON bool) (depth int, canonical []byte, err error) {
	if logs {
		req := plogotlp.NewExportRequest()
		if err = unmarshal(req, data, asJSON); err != nil {
			return 0, nil, err
		}
		if asJSON {
			canonical, err = req.MarshalJSON()
		} else {
			canonical, err = req.MarshalProto()
		}
		return logsDepth(req.Logs()), canonical, err
	}
	req := ptraceotlp.NewExportRequest()
	if err = unmarshal(req, data, asJSON); err != nil {
		return 0, nil, err
	}
	if asJSON {
		canonical, err = req.MarshalJSON()
	} else {
		canonical, err = req.MarshalProto()
	}
	return tracesDepth(req.Traces()), canonical, err
}

// BenchmarkScanProto measures the depth scan every protobuf request pays, on the
// request of BenchmarkTracesPath's size (100 spans, ~51 KB), next to the fast path
// it precedes.
func BenchmarkScanProto(b *testing.B) {
	td := ptrace.NewTraces()
	for range 2 {
		ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
		for i := range 50 {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(traceA)
			s.SetSpanID([8]byte{1, byte(i)})
			s.SetName("GET /api/v1/orders")
			for _, k := range []string{"http.method", "http.route", "http.url", "net.peer.name", "user_agent.original", "http.scheme", "http.target", "server.address"} {
				s.Attributes().PutStr(k, "some-value-of-moderate-length")
			}
			s.Attributes().PutInt("http.status_code", 200)
		}
	}
	raw, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := scanProto(raw, pTracesRequest, DefaultMaxValueDepth); err != nil {
			b.Fatal(err)
		}
	}
}
