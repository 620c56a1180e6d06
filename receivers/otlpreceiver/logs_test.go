package otlpreceiver

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/outrider-dev/outrider/pipeline"
)

func TestLogRecords(t *testing.T) {
	now := time.Unix(1800000000, 0)
	ld := testLogs("payment failed")
	rl := ld.ResourceLogs().At(0)
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "checkout-1")
	rl.Resource().Attributes().PutStr("host.name", "node-7") // not a label
	lrs := rl.ScopeLogs().At(0).LogRecords()
	m := lrs.AppendEmpty()
	m.Body().SetEmptyMap().PutStr("msg", "structured")
	m.SetSeverityText("WARNING")
	m.SetObservedTimestamp(1700000005 * 1e9)
	m.Attributes().PutStr("1st key", "x")
	lrs.AppendEmpty() // no body, no time

	recs := LogRecords(ld, now)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Line != "payment failed" || r.Level != pipeline.LevelError || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		r.SpanID != "00f067aa0ba902b7" || r.RequestID != "req-1" || !r.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("record 0 = %+v", r)
	}
	if len(r.Metadata) != 1 || r.Metadata[0] != (pipeline.Label{Name: "http_status_code", Value: "500"}) {
		t.Errorf("metadata = %v, want http_status_code=500 only (request_id is a correlation field)", r.Metadata)
	}
	want := map[string]string{"service": "checkout", "namespace": "shop", "pod": "checkout-1", "source": "otlp"}
	if len(r.Stream.Labels) != len(want) {
		t.Errorf("labels = %v, want %v", r.Stream.Labels, want)
	}
	for k, v := range want {
		if r.Stream.Get(k) != v {
			t.Errorf("label %s = %q, want %q", k, r.Stream.Get(k), v)
		}
	}
	if recs[1].Line != `{"msg":"structured"}` || recs[1].Level != pipeline.LevelWarn || !recs[1].Time.Equal(time.Unix(1700000005, 0)) {
		t.Errorf("record 1 = %+v", recs[1])
	}
	if recs[1].Metadata[0].Name != "_st_key" {
		t.Errorf("metadata name %q, want _st_key", recs[1].Metadata[0].Name)
	}
	if recs[2].Line != "" || !recs[2].Time.Equal(now) || recs[2].Level != pipeline.LevelUnknown {
		t.Errorf("record 2 = %+v", recs[2])
	}
	if recs[0].Stream != recs[2].Stream {
		t.Error("records of one resource should share their stream")
	}
}

func TestLevelOf(t *testing.T) {
	for n, want := range map[plog.SeverityNumber]pipeline.Level{
		plog.SeverityNumberUnspecified: pipeline.LevelUnknown,
		plog.SeverityNumberTrace2:      pipeline.LevelTrace,
		plog.SeverityNumberDebug:       pipeline.LevelDebug,
		plog.SeverityNumberInfo4:       pipeline.LevelInfo,
		plog.SeverityNumberWarn:        pipeline.LevelWarn,
		plog.SeverityNumberError3:      pipeline.LevelError,
		plog.SeverityNumberFatal4:      pipeline.LevelFatal,
	} {
		if got := levelOf(n); got != want {
			t.Errorf("levelOf(%v) = %q, want %q", n, got, want)
		}
	}
}

func TestEntryRoundTripAndErrors(t *testing.T) {
	e := appendEntry(nil, KindLogs, 3, []byte("payload"))
	k, n, data, err := DecodeEntry(e)
	if err != nil || k != KindLogs || n != 3 || string(data) != "payload" {
		t.Fatalf("DecodeEntry = %v %d %q %v", k, n, data, err)
	}
	for _, bad := range [][]byte{nil, {1}, {9, 1, 0}, {1, 0xff}, {1, 0x7f}} {
		if _, _, _, err := DecodeEntry(bad); err == nil {
			t.Errorf("DecodeEntry(%v) accepted", bad)
		}
	}
}
