package lokiexporter

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/internal/exportertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/pipeline"
)

// lokiDiscarded reads a real Loki's own count of entries it discarded for reason.
func lokiDiscarded(t *testing.T, l *lokitest.Loki, reason string) float64 {
	t.Helper()
	resp, err := http.Get(l.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "loki_discarded_samples_total{") || !strings.Contains(line, `reason="`+reason+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("loki metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// metadataRecords are records as the file source and the OTLP receiver make them:
// with IDs, with only the file name, with the event ID, and with nothing; plus one
// of each kind that Loki refuses for its age. want are the lines Loki must store
// without structured metadata, each once.
func metadataRecords(s *pipeline.Stream, now time.Time) (recs []pipeline.Record, want []string) {
	file := []pipeline.Label{{Name: "filename", Value: "/var/log/app.log"}}
	at := func(i int) time.Time { return now.Add(time.Duration(i) * time.Millisecond) }
	recs = []pipeline.Record{
		{Stream: s, Time: at(0), Line: "GET /a 200", TraceID: testTrace, SpanID: testSpan, Metadata: file},
		{Stream: s, Time: at(1), Line: `{"level":"info","msg":"json"}`, TraceID: testTrace, RequestID: "req-7", Metadata: file},
		{Stream: s, Time: at(2), Line: "only a file name", Metadata: file},
		{Stream: s, Time: at(3), Line: "no metadata at all"},
		{Stream: s, Time: at(4), Line: "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: x",
			Metadata: []pipeline.Label{{Name: MetaEventID, Value: testEvent}}},
		{Stream: s, Time: now.Add(-30 * 24 * time.Hour), Line: "too old with metadata", TraceID: testTrace},
		{Stream: s, Time: now.Add(-30 * 24 * time.Hour), Line: "too old without"},
	}
	want = []string{
		"GET /a 200 trace_id=" + testTrace + " span_id=" + testSpan,
		`{"level":"info","msg":"json","trace_id":"` + testTrace + `","request_id":"req-7"}`,
		"only a file name",
		"no metadata at all",
		"Traceback (most recent call last): sentry_event_id=" + testEvent + "\n  File \"a.py\", line 1, in <module>\nValueError: x",
	}
	return recs, want
}

// TestRealLokiStructuredMetadataDisallowed runs the exporter in auto mode against a
// real Loki that disallows structured metadata. The first push is refused for the
// entries with metadata and sent again without it; the second push goes without it at
// once (Loki's own discard count does not move). Every line lands exactly once, with
// its IDs in the line; only the two too-old entries are dropped; the agent log says it
// once and the gauge is 1.
func TestRealLokiStructuredMetadataDisallowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLoki(ctx, t, lokitest.WithoutStructuredMetadata())

	service := fmt.Sprintf("nosm-%d", time.Now().UnixNano())
	s := pipeline.NewStream(map[string]string{"service": service})
	now := time.Now()
	recs, want := metadataRecords(s, now)
	cfg := testConfig(l.URL)
	cfg.Batch.MaxWait = time.Hour
	h := newHarness(t, cfg)
	a := exportertest.NewAcks()
	if err := h.exp.Export(ctx, pipeline.Batch{Records: recs, Ack: a.Func(1)}); err != nil {
		t.Fatal(err)
	}
	h.exp.sender.Flush()
	if reason, perm := pipeline.IsPermanent(a.Wait(t, 1)); !perm || reason != ReasonTooOld {
		t.Errorf("first ack: reason %q permanent %v, want the too_old drop", reason, perm)
	}
	refused := lokiDiscarded(t, l, "disallowed_structured_metadata")
	if refused != 4 {
		t.Errorf("loki discarded %v entries for their structured metadata, want the 4 good ones of the first push", refused)
	}

	// The second push: the same kinds of records, a second later.
	recs2, _ := metadataRecords(s, now.Add(time.Second))
	recs2 = recs2[:5]
	var want2 []string
	for i := range recs2 {
		recs2[i].Line += " (2)"
		want2 = append(want2, lineWithIDs(&recs2[i])) // its forms are checked by TestLineWithIDs
	}
	if err := h.exp.Export(ctx, pipeline.Batch{Records: recs2, Ack: a.Func(2)}); err != nil {
		t.Fatal(err)
	}
	h.exp.sender.Flush()
	if err := a.Wait(t, 2); err != nil {
		t.Errorf("second ack: %v", err)
	}
	if v := lokiDiscarded(t, l, "disallowed_structured_metadata"); v != refused {
		t.Errorf("loki discarded %v entries for structured metadata after the second push, want still %v: the exporter must send without it once refused", v, refused)
	}

	all := append(want, want2...)
	got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), now.Add(-time.Hour), len(all), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range got {
		seen[e.Line]++
		if len(e.Metadata) > 0 {
			t.Errorf("entry %q has structured metadata %v", e.Line, e.Metadata)
		}
	}
	for _, w := range all {
		if seen[w] != 1 {
			t.Errorf("line %q is in Loki %d times, want once; Loki holds:\n%v", w, seen[w], seen)
		}
	}
	if len(got) != len(all) {
		t.Errorf("Loki holds %d entries, want %d", len(got), len(all))
	}

	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": ReasonTooOld}); v != 2 {
		t.Errorf("dropped too_old = %v, want 2", v)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", nil); v != 2 {
		t.Errorf("dropped = %v, want only the 2 too old", v)
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", nil); v != float64(len(all)) {
		t.Errorf("sent = %v, want %d", v, len(all))
	}
	if v := h.metric(t, "outrider_loki_structured_metadata_disallowed", nil); v != 1 {
		t.Errorf("gauge = %v, want 1", v)
	}
	if n := strings.Count(h.log.String(), "loki refuses structured metadata"); n != 1 {
		t.Errorf("the refusal is logged %d times, want once:\n%s", n, h.log.String())
	}
}

// TestRealLokiStructuredMetadataOn: with structured_metadata on, the entries a real
// Loki refuses for their metadata are dropped and counted, and the error says what
// to set; the others are stored.
func TestRealLokiStructuredMetadataOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLoki(ctx, t, lokitest.WithoutStructuredMetadata())
	service := fmt.Sprintf("smon-%d", time.Now().UnixNano())
	s := pipeline.NewStream(map[string]string{"service": service})
	now := time.Now()
	recs, _ := metadataRecords(s, now)
	recs = recs[:5]

	cfg := testConfig(l.URL)
	cfg.StructuredMetadata = StructuredMetadataOn
	h, ackErr := pushOneWith(ctx, t, cfg, recs)
	if reason, perm := pipeline.IsPermanent(ackErr); !perm || reason != ReasonMetadataDisallowed {
		t.Fatalf("ack %v: reason %q, want %s", ackErr, reason, ReasonMetadataDisallowed)
	}
	for _, frag := range []string{"structured_metadata to auto or off", "allow_structured_metadata: true"} {
		if !strings.Contains(ackErr.Error(), frag) {
			t.Errorf("error %q does not say %q", ackErr, frag)
		}
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": ReasonMetadataDisallowed}); v != 4 {
		t.Errorf("dropped metadata_disallowed = %v, want 4", v)
	}
	got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), now.Add(-time.Hour), 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Line != "no metadata at all" {
		t.Errorf("Loki holds %+v, want only the entry without metadata", got)
	}
	if v := h.metric(t, "outrider_loki_structured_metadata_disallowed", nil); v != 0 {
		t.Errorf("gauge = %v, want 0 with structured_metadata on", v)
	}
}

// TestRealLokiStructuredMetadataAllowed: against a Loki that allows structured
// metadata, auto sends it as before (lines untouched, IDs as metadata) and off puts
// the IDs in the line.
func TestRealLokiStructuredMetadataAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLoki(ctx, t)
	for _, mode := range []string{StructuredMetadataAuto, StructuredMetadataOff} {
		t.Run(mode, func(t *testing.T) {
			service := fmt.Sprintf("sm-%s-%d", mode, time.Now().UnixNano())
			s := pipeline.NewStream(map[string]string{"service": service})
			now := time.Now()
			recs, stripped := metadataRecords(s, now)
			recs = recs[:5]
			cfg := testConfig(l.URL)
			cfg.StructuredMetadata = mode
			h, err := pushOneWith(ctx, t, cfg, recs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), now.Add(-time.Hour), 5, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			byLine := map[string]lokitest.Entry{}
			for _, e := range got {
				byLine[e.Line] = e
			}
			for i, r := range recs {
				want := r.Line
				if mode == StructuredMetadataOff {
					want = stripped[i]
				}
				e, ok := byLine[want]
				if !ok {
					t.Errorf("line %q not in Loki: %v", want, byLine)
					continue
				}
				if mode == StructuredMetadataOff {
					// Loki adds detected_level itself; nothing of ours may be there.
					for _, name := range []string{MetaTraceID, MetaSpanID, MetaRequestID, MetaEventID, "filename"} {
						if _, ok := e.Metadata[name]; ok {
							t.Errorf("off: %q has metadata %v", want, e.Metadata)
						}
					}
					continue
				}
				if e.Metadata[MetaTraceID] != r.TraceID || e.Metadata[MetaSpanID] != r.SpanID || e.Metadata[MetaRequestID] != r.RequestID {
					t.Errorf("auto: %q has metadata %v, want the record's IDs", want, e.Metadata)
				}
				for _, m := range r.Metadata {
					if e.Metadata[m.Name] != m.Value {
						t.Errorf("auto: %q has metadata %v, want %s=%s", want, e.Metadata, m.Name, m.Value)
					}
				}
			}
			if v := h.metric(t, "outrider_loki_structured_metadata_disallowed", nil); v != 0 {
				t.Errorf("gauge = %v, want 0", v)
			}
		})
	}
}

// TestRealLokiStructuredMetadataReprobe: after Loki refused structured metadata, the
// exporter sends without it; once ReprobeInterval has passed it sends it again, and a
// Loki that now allows it (restarted with allow_structured_metadata true) gets it: the
// gauge goes back to 0 and the agent log says so.
func TestRealLokiStructuredMetadataReprobe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := startLoki(ctx, t, lokitest.WithoutStructuredMetadata())
	service := fmt.Sprintf("reprobe-%d", time.Now().UnixNano())
	s := pipeline.NewStream(map[string]string{"service": service})

	cfg := testConfig(l.URL)
	cfg.Batch.MaxWait = time.Hour
	h := newHarness(t, cfg)
	var skew atomic.Int64
	h.exp.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a := exportertest.NewAcks()
	push := func(id int, line string) {
		t.Helper()
		rec := pipeline.Record{Stream: s, Time: time.Now(), Line: line, TraceID: testTrace}
		if err := h.exp.Export(ctx, pipeline.Batch{Records: []pipeline.Record{rec}, Ack: a.Func(id)}); err != nil {
			t.Fatal(err)
		}
		h.exp.sender.Flush()
		if err := a.Wait(t, id); err != nil {
			t.Fatalf("push %d: %v", id, err)
		}
	}
	push(1, "while refused")
	if v := h.metric(t, "outrider_loki_structured_metadata_disallowed", nil); v != 1 {
		t.Fatalf("gauge = %v after the refusal, want 1", v)
	}

	conf := filepath.Join(l.Dir, "loki.yaml")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	allowed := strings.Replace(string(data), "allow_structured_metadata: false", "allow_structured_metadata: true", 1)
	if allowed == string(data) {
		t.Fatal("loki.yaml does not say allow_structured_metadata: false")
	}
	if err := os.WriteFile(conf, []byte(allowed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	push(2, "before the recheck")
	skew.Store(int64(ReprobeInterval + time.Minute))
	push(3, "after the recheck")

	got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), time.Now().Add(-time.Hour), 3, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	byLine := map[string]lokitest.Entry{}
	for _, e := range got {
		byLine[e.Line] = e
	}
	for _, line := range []string{"while refused", "before the recheck"} {
		if _, ok := byLine[line+" trace_id="+testTrace]; !ok {
			t.Errorf("%q not in Loki with its ID in the line: %v", line, byLine)
		}
	}
	if e, ok := byLine["after the recheck"]; !ok || e.Metadata[MetaTraceID] != testTrace {
		t.Errorf("after the recheck the entry must carry trace_id as structured metadata: %+v", byLine)
	}
	if v := h.metric(t, "outrider_loki_structured_metadata_disallowed", nil); v != 0 {
		t.Errorf("gauge = %v once Loki accepted structured metadata, want 0", v)
	}
	if !strings.Contains(h.log.String(), "loki accepts structured metadata again") {
		t.Errorf("the log does not say Loki accepts structured metadata again:\n%s", h.log.String())
	}
}

// TestRealLokiStructuredMetadataDisallowedWithStreamRefusal: when Loki's 400 refuses
// structured metadata and also a whole stream (a label value over its limit), the
// exporter cannot tell from the answer which entries were stored, so the request is
// sent again whole without structured metadata: the entries Loki had stored come
// again identical and Loki ignores them, so every good line is there exactly once and
// only the refused stream's records are dropped.
func TestRealLokiStructuredMetadataDisallowedWithStreamRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startLoki(ctx, t, lokitest.WithoutStructuredMetadata())
	service := fmt.Sprintf("nosm-stream-%d", time.Now().UnixNano())
	good := pipeline.NewStream(map[string]string{"service": service})
	bad := pipeline.NewStream(map[string]string{"service": service, "source": strings.Repeat("x", 3000)})
	now := time.Now()
	var recs []pipeline.Record
	var want []string
	for i := range 6 {
		r := pipeline.Record{Stream: good, Time: now.Add(time.Duration(i) * time.Millisecond), Line: fmt.Sprintf("good %d", i)}
		w := r.Line
		if i%2 == 0 {
			r.TraceID = testTrace
			w += " trace_id=" + testTrace
		}
		recs = append(recs, r)
		want = append(want, w)
	}
	recs = append(recs, pipeline.Record{Stream: bad, Time: now, Line: "in a refused stream", TraceID: testTrace},
		pipeline.Record{Stream: bad, Time: now, Line: "in a refused stream too"})
	h, ackErr := pushOne(ctx, t, l.URL, recs)
	if _, perm := pipeline.IsPermanent(ackErr); !perm {
		t.Errorf("ack %v, want the permanent error of the refused stream", ackErr)
	}
	if _, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), now.Add(-time.Hour), len(want), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	got, err := l.Query(ctx, fmt.Sprintf(`{service=%q}`, service), now.Add(-time.Hour), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range got {
		seen[e.Line]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("%q is in Loki %d times, want once: %v", w, seen[w], seen)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Loki holds %d entries, want %d: %v", len(got), len(want), seen)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", nil); v != 2 {
		t.Errorf("dropped %v, want the refused stream's 2 records", v)
	}
}
