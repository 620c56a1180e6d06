package lokiexporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/pipeline"
)

// Integration tests against a real Loki (internal/lokitest; `make backends` builds it)
// with its default limits: reject_old_samples_max_age 168h, max_line_size 256KB,
// max_label_value_length 2048.

// startLoki starts a real Loki for the test and stops it at its end.
func startLoki(ctx context.Context, t *testing.T, opts ...lokitest.Option) *lokitest.Loki {
	t.Helper()
	l, err := lokitest.Start(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

// pushOne exports recs as one request (the harness's max_wait is an hour; it is
// flushed) and returns the acknowledgement.
func pushOne(ctx context.Context, t *testing.T, url string, recs []pipeline.Record) (*harness, error) {
	t.Helper()
	return pushOneWith(ctx, t, testConfig(url), recs)
}

// pushOneWith is pushOne with cfg (its batch settings are set here).
func pushOneWith(ctx context.Context, t *testing.T, cfg Config, recs []pipeline.Record) (*harness, error) {
	t.Helper()
	cfg.Batch.MaxWait = time.Hour
	cfg.Batch.MaxBytes = 4 << 20
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	if err := h.exp.Export(ctx, pipeline.Batch{Records: recs, Ack: a.Func(1)}); err != nil {
		t.Fatal(err)
	}
	h.exp.sender.Flush()
	return h, a.Wait(t, 1)
}

// TestRealLokiRefusesOnlyTheBadRecords sends one push mixing good records of two
// streams (OTLP records and tailed lines) with records Loki really refuses — too old,
// a line over max_line_size, a stream whose label value is too long — and records
// holding invalid UTF-8 in their line, metadata and stream label. Every good record and
// every repaired one must be in Loki, and each refused one counted once by reason.
func TestRealLokiRefusesOnlyTheBadRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLoki(ctx, t)

	service := fmt.Sprintf("split-%d", time.Now().UnixNano())
	otlp := pipeline.NewStream(map[string]string{"service": service, "source": "otlp"})
	file := pipeline.NewStream(map[string]string{"service": service, "source": "file"})
	badUTF8 := pipeline.NewStream(map[string]string{"service": service + "-\xff", "source": "otlp"})
	longLabel := pipeline.NewStream(map[string]string{"service": service, "source": strings.Repeat("x", 3000)})

	now := time.Now()
	start := now.Add(-time.Hour)
	var recs []pipeline.Record
	var good []string
	add := func(s *pipeline.Stream, at time.Time, line string, ok bool, meta ...pipeline.Label) {
		recs = append(recs, pipeline.Record{Stream: s, Time: at, Line: line, Metadata: meta})
		if ok {
			good = append(good, line)
		}
	}
	for i := range 10 {
		add(otlp, now.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("otlp record %d", i), true)
		if i == 4 {
			add(otlp, now.Add(-30*24*time.Hour), "too old 1", false)
			add(longLabel, now, "in a stream Loki refuses 1", false)
			add(otlp, now, "bad utf8 in metadata", true, pipeline.Label{Name: "user", Value: "\xc3\x28"})
		}
	}
	for i := range 5 {
		add(file, now.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("file line %d", i), true, pipeline.Label{Name: "filename", Value: "/var/log/app.log"})
		if i == 2 {
			add(file, now, strings.Repeat("L", 300<<10), false)
			add(file, now.Add(-40*24*time.Hour), "too old 2", false)
			add(longLabel, now, "in a stream Loki refuses 2", false)
		}
	}
	add(badUTF8, now, "bad utf8 \xff\xfe line", false) // checked apart: its label changes
	add(longLabel, now, "in a stream Loki refuses 3", false)

	h, ackErr := pushOne(ctx, t, l.URL+PushPath, recs)
	if _, perm := pipeline.IsPermanent(ackErr); !perm {
		t.Errorf("ack = %v, want the permanent error of the dropped records", ackErr)
	}

	got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), start, len(good), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range got {
		seen[e.Line]++
	}
	for _, g := range good {
		if seen[g] != 1 {
			t.Errorf("record %q is in Loki %d times, want once", g, seen[g])
		}
	}
	if len(got) != len(good) {
		t.Errorf("Loki holds %d records of the service, want %d", len(got), len(good))
	}
	fixed, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service+"-?"), start, 1, 30*time.Second)
	if err != nil {
		t.Fatalf("the record with invalid UTF-8 in its label and line: %v", err)
	}
	if len(fixed) != 1 || fixed[0].Line != "bad utf8 \uFFFD line" {
		t.Errorf("repaired record: %+v", fixed)
	}

	for reason, want := range map[string]float64{ReasonTooOld: 2, ReasonTooLarge: 1, ReasonBadRequest: 3} {
		if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": reason}); v != want {
			t.Errorf("dropped{reason=%s} = %v, want %v", reason, v, want)
		}
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", nil); v != float64(len(good)+1) {
		t.Errorf("sent records %v, want %d", v, len(good)+1)
	}
	for field, want := range map[string]float64{"line": 1, "metadata": 1, "label": 1} {
		if v := h.metric(t, "outrider_exporter_invalid_utf8_total", map[string]string{"field": field}); v != want {
			t.Errorf("invalid_utf8{field=%s} = %v, want %v", field, v, want)
		}
	}
	logs := h.log.String()
	for _, frag := range []string{"has timestamp too old", "max entry size", "\"reason\":\"bad_request\"", "stream '{service=\\\"" + service + "\\\", service_name=\\\"" + service + "\\\", source=\\\"xxxx"} {
		if !strings.Contains(strings.ToLower(logs), frag) {
			t.Errorf("no drop line gives Loki's reason %q:\n%s", frag, logs)
		}
	}
}

// TestRealLokiSingleEntryRefusals checks the path where Loki stores a request but for
// entries it lists (one too old, one with structured metadata over its limit): one
// push, no split, and exactly the listed entries counted as dropped.
func TestRealLokiSingleEntryRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLoki(ctx, t)
	service := fmt.Sprintf("partly-%d", time.Now().UnixNano())
	s := pipeline.NewStream(map[string]string{"service": service})
	now := time.Now()
	var recs []pipeline.Record
	for i := range 10 {
		recs = append(recs, pipeline.Record{Stream: s, Time: now.Add(time.Duration(i) * time.Millisecond), Line: fmt.Sprintf("line %d", i)})
	}
	recs = append(recs,
		pipeline.Record{Stream: s, Time: now.Add(-30 * 24 * time.Hour), Line: "too old"},
		pipeline.Record{Stream: s, Time: now, Line: "big metadata", Metadata: []pipeline.Label{{Name: "blob", Value: strings.Repeat("m", 70<<10)}}})
	h, _ := pushOne(ctx, t, l.URL, recs)
	got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), now.Add(-time.Hour), 10, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Errorf("Loki holds %d records, want the 10 good ones", len(got))
	}
	if v := h.metric(t, "outrider_exporter_requests_total", nil); v != 1 {
		t.Errorf("%v pushes, want 1: Loki said which entries it refused, nothing to split", v)
	}
	dropped := h.metric(t, "outrider_exporter_dropped_records_total", nil)
	if dropped != 2 {
		t.Errorf("dropped %v records, want exactly 2:\n%s", dropped, h.log.String())
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", nil); v != 10 {
		t.Errorf("sent records %v, want 10", v)
	}
}
