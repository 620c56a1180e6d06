package otlpreceiver

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrider-dev/outrider/internal/inflight"
)

// deepLogsRequest is an ExportLogsServiceRequest whose one log body is nested depth
// lists deep.
func deepLogsRequest(depth int) []byte {
	lr := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), deepAnyValue(depth))
	sl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), lr)
	rl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sl)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rl)
}

// deepTracesRequest is a valid span whose attribute "deep" is nested depth lists and
// maps deep.
func deepTracesRequest(t *testing.T, depth int) []byte {
	td := testTraces(1, 0, nil)
	nest(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep"), depth)
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestDepthRefusedOnEveryTransport sends values nested past max_value_depth over
// HTTP (protobuf, gzip, JSON) and gRPC, traces and logs: each is refused naming the
// limit, nothing is stored, and a normal request is stored afterwards.
func TestDepthRefusedOnEveryTransport(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Traces: q, Logs: q})
	hostile := deepLogsRequest(200_000)
	deepTraces := deepTracesRequest(t, DefaultMaxValueDepth+1)
	ld := testLogs("x")
	nest(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body(), DefaultMaxValueDepth+1)
	deepJSON, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	td := testTraces(1, 0, nil)
	nest(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep"), DefaultMaxValueDepth+1)
	deepTracesJSON, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	for _, tc := range []struct {
		name, path, ct, enc string
		body                []byte
	}{
		{"logs protobuf", LogsPath, contentProtobuf, "", hostile},
		{"logs protobuf gzip", LogsPath, contentProtobuf, "gzip", gz(hostile)},
		{"traces protobuf", TracesPath, contentProtobuf, "", deepTraces},
		{"logs JSON", LogsPath, contentJSON, "", deepJSON},
		{"traces JSON", TracesPath, contentJSON, "", deepTracesJSON},
		{"JSON nested outside values", LogsPath, contentJSON, "", []byte(`{"resourceLogs":[{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postHTTP(t, r, tc.path, tc.ct, tc.enc, tc.body)
			if resp.StatusCode != 400 || !strings.Contains(string(body), "receivers.otlp.max_value_depth") {
				t.Fatalf("%d %q; want 400 naming receivers.otlp.max_value_depth", resp.StatusCode, body)
			}
		})
	}
	cc := grpcClient(t, r)
	for _, tc := range []struct {
		name, method string
		body         []byte
	}{
		{"grpc logs", "/" + logsServiceDesc.ServiceName + "/Export", hostile},
		{"grpc traces", "/" + traceServiceDesc.ServiceName + "/Export", deepTraces},
	} {
		var out []byte
		err := cc.Invoke(ctxT(t), tc.method, tc.body, &out, grpc.ForceCodecV2(rawForTest{}))
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "receivers.otlp.max_value_depth") {
			t.Errorf("%s: %v; want INVALID_ARGUMENT naming the limit", tc.name, err)
		}
	}
	if n := len(q.entries); n != 0 {
		t.Fatalf("%d refused requests were stored", n)
	}
	if got := counterValue(t, r.m.requests.WithLabelValues("logs", "grpc", resultTooDeep)); got != 1 {
		t.Errorf("too_deep gRPC logs requests = %v, want 1", got)
	}
	ok, _ := plogotlp.NewExportRequestFromLogs(testLogs("fine")).MarshalProto()
	if resp, body := postHTTP(t, r, LogsPath, contentProtobuf, "", ok); resp.StatusCode != 200 {
		t.Fatalf("a normal request after the attacks: %d %s", resp.StatusCode, body)
	}
	var out []byte
	if err := cc.Invoke(ctxT(t), "/"+logsServiceDesc.ServiceName+"/Export", ok, &out, grpc.ForceCodecV2(rawForTest{})); err != nil {
		t.Fatalf("a normal gRPC request after the attacks: %v", err)
	}
}

// TestInflightBusy takes the whole inflight budget: HTTP requests are answered 429
// with Retry-After, gRPC ones RESOURCE_EXHAUSTED with RetryInfo; once it is free
// they are stored. A request whose decoding could never fit is refused as too large.
func TestInflightBusy(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{}, Settings{Traces: q, Logs: q, RetryAfter: 3 * time.Second})
	r.lim = inflight.New(int64(r.cfg.MaxInflightBytes), 0) // refuse at once
	hold, ok := r.lim.TryAcquire(r.lim.Max())
	if !ok {
		t.Fatal("cannot take the budget")
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(testTraces(3, 0, nil)).MarshalProto()
	resp, out := postHTTP(t, r, TracesPath, contentProtobuf, "", body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || !strings.Contains(string(out), "receivers.otlp.max_inflight_bytes") {
		t.Fatalf("HTTP with the budget taken: %d %v %q", resp.StatusCode, resp.Header, out)
	}
	cc := grpcClient(t, r)
	var reply []byte
	err := cc.Invoke(ctxT(t), "/"+traceServiceDesc.ServiceName+"/Export", body, &reply, grpc.ForceCodecV2(rawForTest{}))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "max_inflight_bytes") {
		t.Fatalf("gRPC with the budget taken: %v", err)
	}
	retry := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay.AsDuration() == 3*time.Second {
			retry = true
		}
	}
	if !retry {
		t.Errorf("RESOURCE_EXHAUSTED without RetryInfo: clients would not retry it")
	}
	hold.Release()
	if resp, out := postHTTP(t, r, TracesPath, contentProtobuf, "", body); resp.StatusCode != 200 {
		t.Fatalf("HTTP after the budget is free: %d %s", resp.StatusCode, out)
	}
	if err := cc.Invoke(ctxT(t), "/"+traceServiceDesc.ServiceName+"/Export", body, &reply, grpc.ForceCodecV2(rawForTest{})); err != nil {
		t.Fatalf("gRPC after the budget is free: %v", err)
	}
	if got := len(q.entries); got != 2 {
		t.Fatalf("stored %d requests, want 2", got)
	}
	// 2M empty list elements in 4 MiB decode to far more than the budget.
	flat := make([]byte, 0, 4<<20)
	for len(flat) < 4<<20-16 {
		flat = append(flat, 0x0a, 0x00)
	}
	av := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), flat[:len(flat)-64])
	lr := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), av)
	sl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), lr)
	rl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sl)
	req := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rl)
	if resp, out := postHTTP(t, r, LogsPath, contentProtobuf, "", req); resp.StatusCode != 413 || !strings.Contains(string(out), "max_inflight_bytes") {
		t.Fatalf("a request decoding past the budget: %d %q", resp.StatusCode, out)
	}
}

// emptyMessages is a request of root whose message at path (field numbers from the
// request down) holds about 1 MiB of empty messages in its field last: the worst
// case of pdata's allocations per byte for that kind of message.
func emptyMessages(path []protowire.Number, last protowire.Number) []byte {
	b := make([]byte, 0, 1<<20)
	for len(b) < 1<<20 {
		b = append(protowire.AppendTag(b, last, protowire.BytesType), 0x00)
	}
	for i := len(path) - 1; i >= 0; i-- {
		b = protowire.AppendBytes(protowire.AppendTag(nil, path[i], protowire.BytesType), b)
	}
	return b
}

// TestDecodeCostCoversPdata checks the estimate the limiter is given against what
// pdata really allocates, for ordinary requests, for many tiny values, and for
// requests of nothing but empty messages of each kind.
func TestDecodeCostCoversPdata(t *testing.T) {
	flat := make([]byte, 0, 1<<20)
	for len(flat) < 1<<20 {
		flat = append(flat, 0x0a, 0x00)
	}
	av := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), flat)
	kv := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), av)
	lr := protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), kv)
	sl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), lr)
	rl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sl)
	tiny := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rl)
	ordinary, _ := plogotlp.NewExportRequestFromLogs(testLogs(strings.Repeat("a line of text ", 20), "b", "c")).MarshalProto()
	ordinaryMetrics, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(20)).MarshalProto()
	// slack is how many times the estimate pdata may allocate: 1, but 2.6 for the
	// kinds that keep costPerMessage (see pcost) in their worst case.
	type tc struct {
		k     Kind
		body  []byte
		slack float64
	}
	tests := map[string]tc{
		"tiny values":      {KindLogs, tiny, 1},
		"ordinary logs":    {KindLogs, ordinary, 1},
		"ordinary metrics": {KindMetrics, ordinaryMetrics, 1},
	}
	for name, m := range map[string]struct {
		k     Kind
		path  []protowire.Number
		last  protowire.Number
		slack float64
	}{
		"resource spans":          {KindTraces, nil, 1, 2.6},
		"scope spans":             {KindTraces, []protowire.Number{1}, 2, 2.6},
		"spans":                   {KindTraces, []protowire.Number{1, 2}, 2, 2.6},
		"events":                  {KindTraces, []protowire.Number{1, 2, 2}, 11, 2.6},
		"links":                   {KindTraces, []protowire.Number{1, 2, 2}, 13, 2.6},
		"span attributes":         {KindTraces, []protowire.Number{1, 2, 2}, 9, 2.6},
		"resource logs":           {KindLogs, nil, 1, 2.6},
		"scope logs":              {KindLogs, []protowire.Number{1}, 2, 2.6},
		"log records":             {KindLogs, []protowire.Number{1, 2}, 2, 2.6},
		"log attributes":          {KindLogs, []protowire.Number{1, 2, 2}, 6, 2.6},
		"metric metadata":         {KindMetrics, []protowire.Number{1, 2, 2}, 12, 2.6},
		"point attributes":        {KindMetrics, []protowire.Number{1, 2, 2, 5, 1}, 7, 2.6},
		"exemplar attributes":     {KindMetrics, []protowire.Number{1, 2, 2, 5, 1, 5}, 7, 2.6},
		"resource metrics":        {KindMetrics, nil, 1, 1},
		"scope metrics":           {KindMetrics, []protowire.Number{1}, 2, 1},
		"metrics":                 {KindMetrics, []protowire.Number{1, 2}, 2, 1},
		"gauge points":            {KindMetrics, []protowire.Number{1, 2, 2, 5}, 1, 1},
		"histogram points":        {KindMetrics, []protowire.Number{1, 2, 2, 9}, 1, 1},
		"exponential hist points": {KindMetrics, []protowire.Number{1, 2, 2, 10}, 1, 1},
		"summary points":          {KindMetrics, []protowire.Number{1, 2, 2, 11}, 1, 1},
		"quantiles":               {KindMetrics, []protowire.Number{1, 2, 2, 11, 1}, 6, 1},
		"exemplars":               {KindMetrics, []protowire.Number{1, 2, 2, 9, 1}, 8, 1},
	} {
		tests["empty "+name] = tc{m.k, emptyMessages(m.path, m.last), m.slack}
	}
	for name, tt := range tests {
		st, err := scanProto(tt.body, rootOf(tt.k), DefaultMaxValueDepth)
		if err != nil {
			t.Fatal(name, err)
		}
		estimate := costFactor*int64(len(tt.body)) + st.cost
		var req interface {
			UnmarshalProto([]byte) error
			MarshalProto() ([]byte, error)
		}
		switch tt.k {
		case KindTraces:
			req = ptraceotlp.NewExportRequest()
		case KindLogs:
			req = plogotlp.NewExportRequest()
		default:
			req = pmetricotlp.NewExportRequest()
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := req.UnmarshalProto(tt.body); err != nil {
			t.Fatal(name, err)
		}
		out, _ := req.MarshalProto()
		runtime.ReadMemStats(&after)
		used := int64(after.TotalAlloc - before.TotalAlloc)
		t.Logf("%s: %d bytes, %d messages: pdata decode+encode allocated %d, estimate %d", name, len(tt.body), st.messages, used, estimate)
		if float64(used) > tt.slack*float64(estimate) {
			t.Errorf("%s: %v times the estimate %d below the %d bytes pdata allocated", name, tt.slack, estimate, used)
		}
		_ = out
	}
}

// TestDecodeCostCoversPdataJSON does the same for OTLP/JSON lists of empty objects,
// the worst case per byte, and an ordinary metrics request.
func TestDecodeCostCoversPdataJSON(t *testing.T) {
	items := strings.TrimSuffix(strings.Repeat("{},", 300_000), ",")
	ordinary, _ := pmetricotlp.NewExportRequestFromMetrics(testMetrics(20)).MarshalJSON()
	for _, tt := range []struct {
		name  string
		k     Kind
		body  string
		slack float64
	}{
		{"exemplars", KindMetrics, `{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","histogram":{"dataPoints":[{"exemplars":[` + items + `]}]}}]}]}]}`, 1},
		{"data points", KindMetrics, `{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[` + items + `]}}]}]}]}`, 1},
		{"ordinary metrics", KindMetrics, string(ordinary), 1},
		{"spans", KindTraces, `{"resourceSpans":[{"scopeSpans":[{"spans":[` + items + `]}]}]}`, 2.6},
	} {
		r := &Receiver{cfg: Config{MaxValueDepth: DefaultMaxValueDepth}}
		st, ref := r.scanJSON([]byte(tt.body), tt.k)
		if ref != nil {
			t.Fatal(tt.name, ref)
		}
		estimate := jsonCost(len(tt.body), st)
		var req interface {
			UnmarshalJSON([]byte) error
			MarshalProto() ([]byte, error)
		} = pmetricotlp.NewExportRequest()
		if tt.k == KindTraces {
			req = ptraceotlp.NewExportRequest()
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := req.UnmarshalJSON([]byte(tt.body)); err != nil {
			t.Fatal(tt.name, err)
		}
		out, _ := req.MarshalProto()
		runtime.ReadMemStats(&after)
		used := int64(after.TotalAlloc - before.TotalAlloc)
		t.Logf("%s: %d bytes, %d values: pdata decode+encode allocated %d, estimate %d", tt.name, len(tt.body), st.Values, used, estimate)
		if float64(used) > tt.slack*float64(estimate) {
			t.Errorf("%s: %v times the estimate %d below the %d bytes pdata allocated", tt.name, tt.slack, estimate, used)
		}
		_ = out
	}
}

// TestConnectionLimitOTLP opens max_connections idle connections to each endpoint:
// more are closed at once and counted.
func TestConnectionLimitOTLP(t *testing.T) {
	q := &memQueue{}
	cfg := Config{}
	cfg.MaxConnections = 2
	r := startReceiver(t, cfg, Settings{Traces: q, Logs: q})
	for _, tc := range []struct {
		transport string
		addr      net.Addr
	}{{"http", r.HTTPAddr()}, {"grpc", r.GRPCAddr()}} {
		var held []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", tc.addr.String())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		deadline := time.Now().Add(10 * time.Second)
		c := r.m.connsRefused.WithLabelValues(tc.transport)
		for counterValue(t, c) == 0 && time.Now().Before(deadline) {
			if extra, err := net.Dial("tcp", tc.addr.String()); err == nil {
				extra.SetReadDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 64)
				n, err := extra.Read(buf)
				if err == nil && tc.transport == "http" {
					t.Fatalf("an HTTP connection past the limit got %q", buf[:n])
				}
				extra.Close()
			}
		}
		if counterValue(t, c) == 0 {
			t.Errorf("%s: no connection refused past max_connections", tc.transport)
		}
		for _, c := range held {
			c.Close()
		}
	}
}

// TestGRPCReservationsReleased ends gRPC exports every way they end — stored,
// malformed, too deep, over max_request_bytes (the handler never runs), cancelled by
// the client, and a message that never arrives within read_timeout — and checks that
// every reservation went back to the limiter.
func TestGRPCReservationsReleased(t *testing.T) {
	q := &memQueue{}
	cfg := Config{MaxRequestBytes: 64 << 10}
	cfg.ReadTimeout = time.Second
	r := startReceiver(t, cfg, Settings{Traces: q, Logs: q})
	cc := grpcClient(t, r)
	method := "/" + logsServiceDesc.ServiceName + "/Export"
	good, _ := plogotlp.NewExportRequestFromLogs(testLogs("a")).MarshalProto()
	var out []byte
	for name, body := range map[string][]byte{
		"stored":    good,
		"malformed": {0x0a, 0xff, 0xff},
		"too deep":  deepLogsRequest(100),
		"too large": make([]byte, 128<<10),
	} {
		err := cc.Invoke(ctxT(t), method, body, &out, grpc.ForceCodecV2(rawForTest{}))
		t.Logf("%s: %v", name, status.Code(err))
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, method, grpc.ForceCodecV2(rawForTest{}))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream
	time.Sleep(100 * time.Millisecond)
	cancel() // opened, nothing sent, then cancelled
	slow, err := cc.NewStream(ctxT(t), &grpc.StreamDesc{ClientStreams: true}, method, grpc.ForceCodecV2(rawForTest{}))
	if err != nil {
		t.Fatal(err)
	}
	// The message never comes: read_timeout ends the stream.
	if err := slow.RecvMsg(&out); status.Code(err) == codes.OK {
		t.Fatalf("a stream without its message: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, ok := r.lim.TryAcquire(r.lim.Max())
		if ok {
			res.Release()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reservations were not all released after the streams ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLowDepthLimitHoldsOnTheFastPath sets max_value_depth below what the trace fast
// path accepts by itself: a request it could store unread is still refused.
func TestLowDepthLimitHoldsOnTheFastPath(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, Config{MaxValueDepth: 3}, Settings{Traces: q})
	if r.fastBoundsDepth() {
		t.Fatal("a limit of 3 is below the fast path's own bound")
	}
	td := testTraces(1, 0, nil)
	v := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep")
	for range 4 {
		v = v.SetEmptySlice().AppendEmpty()
	}
	v.SetStr("x")
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if _, _, ok := r.fastTraces(nil, body); !ok {
		t.Fatal("the request is not one the fast path takes; the test proves nothing")
	}
	if resp, out := postHTTP(t, r, TracesPath, contentProtobuf, "", body); resp.StatusCode != 400 || !strings.Contains(string(out), "max_value_depth") {
		t.Fatalf("HTTP: %d %q; want 400", resp.StatusCode, out)
	}
	var reply []byte
	err := grpcClient(t, r).Invoke(ctxT(t), "/"+traceServiceDesc.ServiceName+"/Export", body, &reply, grpc.ForceCodecV2(rawForTest{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC: %v; want INVALID_ARGUMENT", err)
	}
	if len(q.entries) != 0 {
		t.Fatal("stored a request past the limit")
	}
}
