package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lokiProto builds a snappy-compressed PushRequest with streams of n entries each;
// every other entry carries trace_id structured metadata.
func lokiProto(t testing.TB, streams, n int) []byte {
	t.Helper()
	var req push.PushRequest
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for s := range streams {
		st := push.Stream{Labels: `{service="bench", level="info", stream="` + strconv.Itoa(s) + `"}`}
		for i := range n {
			e := push.Entry{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), Line: `{"msg":"line ` + strconv.Itoa(i) + `"}`}
			if i%2 == 0 {
				e.StructuredMetadata = push.LabelsAdapter{{Name: "span_id", Value: "0102030405060708"}, {Name: "trace_id", Value: "0102030405060708090a0b0c0d0e0f10"}}
			} else {
				e.StructuredMetadata = push.LabelsAdapter{{Name: "request_id", Value: "req-1"}, {Name: "trace_id", Value: ""}}
			}
			st.Entries = append(st.Entries, e)
		}
		req.Streams = append(req.Streams, st)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

const lokiJSONBody = `{"streams":[
 {"stream":{"service":"bench","level":"info"},"values":[
   ["1795255200000000000","line 1",{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708"}],
   ["1795255200001000000","line 2"],
   ["1795255200002000000","line 3",{"request_id":"req-3"}]]},
 {"stream":{"service":"bench","level":"error"},"values":[
   ["1795255200003000000","line 4",{"trace_id":"1102030405060708090a0b0c0d0e0f10"}]]}]}`

// otlpLogs builds an OTLP logs request with n records in two resources; records
// with an even index carry a trace ID.
func otlpLogs(n int) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	for r := range 2 {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "bench"+strconv.Itoa(r))
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i := r; i < n; i += 2 {
			lr := lrs.AppendEmpty()
			lr.Body().SetStr("line " + strconv.Itoa(i))
			if i%2 == 0 {
				lr.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			}
		}
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCountLokiPush(t *testing.T) {
	proto := lokiProto(t, 3, 101)
	tests := []struct {
		name        string
		ct, enc     string
		body        []byte
		wantEntries int
		wantTrace   int
		wantErr     bool
	}{
		{name: "protobuf", ct: "application/x-protobuf", body: proto, wantEntries: 303, wantTrace: 153},
		{name: "protobuf without content type", body: proto, wantEntries: 303, wantTrace: 153},
		{name: "json", ct: "application/json", body: []byte(lokiJSONBody), wantEntries: 4, wantTrace: 2},
		{name: "json with charset", ct: "application/json; charset=utf-8", body: []byte(lokiJSONBody), wantEntries: 4, wantTrace: 2},
		{name: "gzip json", ct: "application/json", enc: "gzip", body: gzipped(t, []byte(lokiJSONBody)), wantEntries: 4, wantTrace: 2},
		{name: "empty push", ct: "application/json", body: []byte(`{"streams":[]}`)},
		{name: "protobuf not snappy", ct: "application/x-protobuf", body: []byte("\x0a\x05hello"), wantErr: true},
		{name: "snappy garbage", ct: "application/x-protobuf", body: snappy.Encode(nil, []byte("\xff\xff\xff")), wantErr: true},
		{name: "json garbage", ct: "application/json", body: []byte(`{"streams":[{"values":[["1"]]}]}`), wantErr: true},
		{name: "json line not a string", ct: "application/json", body: []byte(`{"streams":[{"values":[["1",2]]}]}`), wantErr: true},
		{name: "unknown type", ct: "text/plain", body: []byte("x"), wantErr: true},
		{name: "unknown encoding", ct: "application/json", enc: "br", body: []byte("x"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, tr, err := CountLokiPush(tt.ct, tt.enc, tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if n != tt.wantEntries || tr != tt.wantTrace {
				t.Errorf("got %d entries (%d with trace_id), want %d (%d)", n, tr, tt.wantEntries, tt.wantTrace)
			}
		})
	}
}

func TestCountOTLPLogs(t *testing.T) {
	req := otlpLogs(11)
	proto, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		ct, enc     string
		body        []byte
		wantRecords int
		wantTrace   int
		wantErr     bool
	}{
		{name: "protobuf", ct: "application/x-protobuf", body: proto, wantRecords: 11, wantTrace: 6},
		{name: "gzip protobuf", ct: "application/x-protobuf", enc: "gzip", body: gzipped(t, proto), wantRecords: 11, wantTrace: 6},
		{name: "json", ct: "application/json", body: js, wantRecords: 11, wantTrace: 6},
		{name: "empty", ct: "application/x-protobuf", body: nil},
		{name: "garbage", ct: "application/x-protobuf", body: []byte("\xff\xff\xff\xff"), wantErr: true},
		{name: "bad gzip", ct: "application/x-protobuf", enc: "gzip", body: proto, wantErr: true},
		{name: "zstd", ct: "application/x-protobuf", enc: "zstd", body: proto, wantErr: true},
		{name: "unknown type", ct: "text/plain", body: proto, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, tr, err := CountOTLPLogs(tt.ct, tt.enc, tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if n != tt.wantRecords || tr != tt.wantTrace {
				t.Errorf("got %d records (%d with trace ID), want %d (%d)", n, tr, tt.wantRecords, tt.wantTrace)
			}
		})
	}
}

func post(t *testing.T, url, ct, enc string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestSinkServes(t *testing.T) {
	s, err := Start(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := s.Close(ctx); err != nil {
			t.Errorf("second Close: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	}()

	if c := s.Counts(); c != (Counts{}) {
		t.Fatalf("fresh sink counts %+v", c)
	}
	started := time.Now()
	otlp, err := otlpLogs(10).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	loki := lokiProto(t, 2, 50)

	steps := []struct {
		name, path, ct, enc string
		body                []byte
		wantStatus          int
		wantCT              string
	}{
		{name: "loki protobuf", path: LokiPushPath, ct: "application/x-protobuf", body: loki, wantStatus: http.StatusNoContent},
		{name: "loki json", path: LokiPushPath, ct: "application/json", body: []byte(lokiJSONBody), wantStatus: http.StatusNoContent},
		{name: "otlp protobuf", path: OTLPLogsPath, ct: "application/x-protobuf", body: otlp, wantStatus: http.StatusOK, wantCT: "application/x-protobuf"},
		{name: "otlp gzip", path: OTLPLogsPath, ct: "application/x-protobuf", enc: "gzip", body: gzipped(t, otlp), wantStatus: http.StatusOK, wantCT: "application/x-protobuf"},
		{name: "bad loki body", path: LokiPushPath, ct: "application/x-protobuf", body: []byte("nope"), wantStatus: http.StatusBadRequest},
		{name: "unsupported otlp encoding", path: OTLPLogsPath, ct: "application/x-protobuf", enc: "br", body: otlp, wantStatus: http.StatusUnsupportedMediaType},
		{name: "unknown path", path: "/v1/traces", ct: "application/x-protobuf", body: otlp, wantStatus: http.StatusNotFound},
	}
	for _, st := range steps {
		resp := post(t, s.URL()+st.path, st.ct, st.enc, st.body)
		if resp.StatusCode != st.wantStatus {
			t.Errorf("%s: status %d, want %d", st.name, resp.StatusCode, st.wantStatus)
		}
		if st.wantCT != "" && resp.Header.Get("Content-Type") != st.wantCT {
			t.Errorf("%s: content type %q, want %q", st.name, resp.Header.Get("Content-Type"), st.wantCT)
		}
	}

	c := s.Counts()
	if want := int64(100 + 4 + 10 + 10); c.Entries != want {
		t.Errorf("entries %d, want %d", c.Entries, want)
	}
	if want := int64(50 + 2 + 5 + 5); c.WithTraceID != want {
		t.Errorf("with trace id %d, want %d", c.WithTraceID, want)
	}
	if c.Requests != 4 || c.Rejected != 2 || c.LastError == "" {
		t.Errorf("requests %d rejected %d last error %q, want 4, 2 and a message", c.Requests, c.Rejected, c.LastError)
	}
	if want := int64(len(loki) + len(lokiJSONBody) + len(otlp) + len(gzipped(t, otlp))); c.WireBytes != want {
		t.Errorf("wire bytes %d, want %d", c.WireBytes, want)
	}
	if c.Last.Before(started) || c.Last.After(time.Now()) {
		t.Errorf("last arrival %v outside the test's run from %v", c.Last, started)
	}
}

func FuzzCountLokiPush(f *testing.F) {
	f.Add("application/x-protobuf", lokiProto(f, 1, 3))
	f.Add("application/json", []byte(lokiJSONBody))
	f.Add("application/json", []byte(`{"streams":[{"values":[["1","x",{"trace_id":"a"}]]}]}`))
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		n, tr, err := CountLokiPush(ct, "", body)
		if err == nil && (n < 0 || tr < 0 || tr > n) {
			t.Fatalf("entries %d with trace %d", n, tr)
		}
	})
}

func FuzzCountOTLPLogs(f *testing.F) {
	proto, err := otlpLogs(5).MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	js, err := otlpLogs(3).MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("application/x-protobuf", proto)
	f.Add("application/json", js)
	f.Add("application/x-protobuf", []byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		n, tr, err := CountOTLPLogs(ct, "", body)
		if err == nil && (n < 0 || tr < 0 || tr > n) {
			t.Fatalf("records %d with trace %d", n, tr)
		}
	})
}

// BenchmarkCountLokiPush measures the sink's cost per pushed entry; it runs in the
// benchmark harness next to the measured process and competes with it for CPU.
func BenchmarkCountLokiPush(b *testing.B) {
	body := lokiProto(b, 4, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := CountLokiPush("application/x-protobuf", "", body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCountOTLPLogs(b *testing.B) {
	body, err := otlpLogs(4000).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := CountOTLPLogs("application/x-protobuf", "", body); err != nil {
			b.Fatal(err)
		}
	}
}
