package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/receivers/diskqueue"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// frame wraps an OTLP request as the receiver stores it: kind, uvarint count, request.
func frame(k otlpreceiver.Kind, n int, data []byte) []byte {
	return append([]byte{byte(k), byte(n)}, data...)
}

// queueEntry builds a queue entry as the receiver stores it.
func queueEntry(t testing.TB, k otlpreceiver.Kind) []byte {
	t.Helper()
	switch k {
	case otlpreceiver.KindTraces:
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{1})
		var m ptrace.ProtoMarshaler
		data, _ := m.MarshalTraces(td)
		return frame(k, 1, data)
	case otlpreceiver.KindMetrics:
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("queue.depth")
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(3)
		m.Gauge().DataPoints().AppendEmpty().SetIntValue(4)
		var mm pmetric.ProtoMarshaler
		data, _ := mm.MarshalMetrics(md)
		return frame(k, 2, data)
	default:
		return logsEntry(t, "svc", "one", "two")
	}
}

// logsEntry is a logs queue entry of one resource (service.name service) with a log
// record per line.
func logsEntry(t testing.TB, service string, lines ...string) []byte {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", service)
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, l := range lines {
		lrs.AppendEmpty().Body().SetStr(l)
	}
	var m plog.ProtoMarshaler
	data, err := m.MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return frame(otlpreceiver.KindLogs, len(lines), data)
}

// deepLogsEntry is a logs entry whose one record's body nests lists depth levels deep
// (a list of strings being 1, as max_value_depth counts): built and encoded with
// pdata, as an SDK would send it.
func deepLogsEntry(t testing.TB, depth int) []byte {
	t.Helper()
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	v := lr.Body()
	for range depth {
		v = v.SetEmptySlice().AppendEmpty()
	}
	v.SetStr("bottom")
	var m plog.ProtoMarshaler
	data, err := m.MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return frame(otlpreceiver.KindLogs, 1, data)
}

type batchSinks struct {
	mu     sync.Mutex
	spans  int
	points int
	lines  []string
}

func (s *batchSinks) ExportMetrics(_ context.Context, b pipeline.MetricBatch) error {
	s.mu.Lock()
	s.points += b.DataPoints
	s.mu.Unlock()
	b.Done(nil)
	return nil
}

func (s *batchSinks) ExportTraces(_ context.Context, b pipeline.TraceBatch) error {
	s.mu.Lock()
	s.spans += b.Spans
	s.mu.Unlock()
	b.Done(nil)
	return nil
}

func (s *batchSinks) Export(_ context.Context, b pipeline.Batch) error {
	s.mu.Lock()
	for _, r := range b.Records {
		s.lines = append(s.lines, r.Line)
	}
	s.mu.Unlock()
	b.Done(nil)
	return nil
}

// panicMarker in a payload makes the test fault hook panic, as a bug in conversion would.
const panicMarker = "PANIC-IN-CONVERSION"

func setPanicFault(t *testing.T) {
	t.Helper()
	entryFault = func(p []byte) {
		if bytes.Contains(p, []byte(panicMarker)) {
			var m map[string]int
			//lint:ignore SA5000 the fault hook panics on purpose
			m["boom"]++ // a nil map write: a real runtime panic
		}
	}
	t.Cleanup(func() { entryFault = nil })
}

// runPumpUntilEmpty runs a pump over q until every entry is acknowledged, then stops it.
func runPumpUntilEmpty(t *testing.T, p *pump) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := p.q.Len(); n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("pump: %v", err)
	}
	if n, _ := p.q.Len(); n != 0 {
		t.Fatalf("%d entries left unacknowledged", n)
	}
}

// quarantineFiles lists the quarantined entries (payload files) of the queue in dir.
func quarantineFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	des, err := os.ReadDir(filepath.Join(dir, diskqueue.QuarantineDir))
	if err != nil {
		t.Fatalf("quarantine directory: %v", err)
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".entry") {
			b, err := os.ReadFile(filepath.Join(dir, diskqueue.QuarantineDir, de.Name()))
			if err != nil {
				t.Fatal(err)
			}
			reason, err := os.ReadFile(filepath.Join(dir, diskqueue.QuarantineDir, strings.TrimSuffix(de.Name(), ".entry")+".reason"))
			if err != nil {
				t.Fatalf("no reason next to %s: %v", de.Name(), err)
			}
			out[string(reason)] = b
		}
	}
	return out
}

func TestPumpQuarantinesPoisonEntriesAcrossRestarts(t *testing.T) {
	setPanicFault(t)
	dir := t.TempDir()
	poison := map[string][]byte{
		"garbage":   {9, 9, 9},
		"too deep":  deepLogsEntry(t, 100_000),
		"panic":     logsEntry(t, "svc", panicMarker),
		"truncated": logsEntry(t, "svc", "cut short")[:20],
	}
	entries := [][]byte{
		queueEntry(t, otlpreceiver.KindTraces), poison["garbage"], logsEntry(t, "svc", "a", "b"),
		poison["too deep"], logsEntry(t, "svc", "c"), poison["panic"], poison["truncated"], logsEntry(t, "svc", "d"),
	}
	reg := prometheus.NewRegistry()
	m := diskqueue.NewMetrics(reg)
	sinks := &batchSinks{}
	for run := 1; run <= 3; run++ {
		q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "mixed", Dir: dir, Metrics: m, Logger: quiet()})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if run == 1 {
			for _, e := range entries {
				if err := q.Append(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
		}
		bad := 0
		p := &pump{name: "mixed", q: q, traces: sinks, logs: sinks, log: quiet(), bad: func() { bad++ }}
		runPumpUntilEmpty(t, p)
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{1: len(poison)}[run]; bad != want {
			t.Errorf("run %d: %d entries set aside, want %d (a restart must not meet a quarantined entry again)", run, bad, want)
		}
	}
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	if sinks.spans != 1 || strings.Join(sinks.lines, ",") != "a,b,c,d" {
		t.Errorf("delivered spans %d, lines %v; want 1 span and a,b,c,d exactly once", sinks.spans, sinks.lines)
	}
	q := quarantineFiles(t, dir)
	if len(q) != len(poison) {
		t.Fatalf("%d quarantined entries, want %d", len(q), len(poison))
	}
	found := map[string]bool{}
	for reason, payload := range q {
		for name, p := range poison {
			if bytes.Equal(payload, p) {
				found[name] = true
				if name == "too deep" && !strings.Contains(reason, "more than 1000 maps/lists deep") ||
					name == "panic" && !strings.Contains(reason, "panicked: assignment to entry in nil map") {
					t.Errorf("reason of %s entry: %s", name, reason)
				}
			}
		}
	}
	if len(found) != len(poison) {
		t.Errorf("quarantined payloads are not the poison entries byte for byte: found %v", found)
	}
	if got := metricValue(t, reg, "outrider_queue_quarantined_total"); got != float64(len(poison)) {
		t.Errorf("outrider_queue_quarantined_total = %v, want %d", got, len(poison))
	}
}

// TestPumpMetrics: the metrics pump hands metrics entries to the metrics sink
// undecoded, with their data point count, and quarantines what is not a metrics entry
// (a traces entry in the metrics queue, garbage) instead of stopping.
func TestPumpMetrics(t *testing.T) {
	dir := t.TempDir()
	q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "metrics", Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	good := queueEntry(t, otlpreceiver.KindMetrics)
	for _, e := range [][]byte{good, queueEntry(t, otlpreceiver.KindTraces), {9, 9}, good} {
		if err := q.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	sinks := &batchSinks{}
	bad := 0
	runPumpUntilEmpty(t, &pump{name: "metrics", q: q, metrics: sinks, log: quiet(), bad: func() { bad++ }})
	if sinks.points != 4 || sinks.spans != 0 || bad != 2 {
		t.Errorf("delivered %d data points and %d spans, set aside %d; want 4, 0 and 2", sinks.points, sinks.spans, bad)
	}
	reasons := quarantineFiles(t, dir)
	found := false
	for reason := range reasons {
		found = found || strings.Contains(reason, "a traces entry in the metrics queue")
	}
	if len(reasons) != 2 || !found {
		t.Errorf("quarantine reasons %v; want two, one naming the traces entry", reasons)
	}
}

// metricValue sums the samples of the metric called name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestPumpDeliversAroundPoisonToRealLoki runs the logs pump with the real Loki exporter
// over a queue holding poison entries between good ones, and restarts it three times:
// nothing crashes, the poison is in quarantine, and every good record is in Loki once.
func TestPumpDeliversAroundPoisonToRealLoki(t *testing.T) {
	setPanicFault(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lokitest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()

	service := fmt.Sprintf("pump-poison-%d", time.Now().UnixNano())
	start := time.Now().Add(-time.Minute)
	dir := t.TempDir()
	var want []string
	poison := 0
	q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "logs", Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		lines := []string{fmt.Sprintf("good %d a", i), fmt.Sprintf("good %d b", i)}
		want = append(want, lines...)
		entries := [][]byte{logsEntry(t, service, lines...)}
		switch i % 3 {
		case 0:
			entries = append(entries, deepLogsEntry(t, 100_000))
		case 1:
			entries = append(entries, logsEntry(t, service, panicMarker))
		case 2:
			entries = append(entries, []byte{byte(otlpreceiver.KindLogs), 1, 0x0a, 0xff}) // cut inside a field
		}
		poison++
		for _, e := range entries {
			if err := q.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	qm := exporterhelper.NewMetrics(nil)
	for run := 1; run <= 3; run++ {
		q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "logs", Dir: dir, Logger: quiet()})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		exp, err := lokiexporter.New(lokiexporter.Config{URL: l.URL}, lokiexporter.Settings{Logger: quiet(), QueueMetrics: qm})
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(ctx); err != nil {
			t.Fatal(err)
		}
		bad := 0
		runPumpUntilEmpty(t, &pump{name: "logs", q: q, logs: exp, log: quiet(), bad: func() { bad++ }})
		if err := exp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if run == 1 && bad != poison || run > 1 && bad != 0 {
			t.Errorf("run %d: %d entries set aside, want %d", run, bad, map[bool]int{true: poison}[run == 1])
		}
	}
	if n := len(quarantineFiles(t, dir)); n != poison {
		t.Errorf("%d entries in quarantine, want %d", n, poison)
	}
	got, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), start, len(want), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Line)
	}
	if len(lines) != len(want) {
		t.Fatalf("Loki holds %d records, want %d: %v", len(lines), len(want), lines)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("record %q not in Loki", w)
		}
	}
}

func TestCheckLogsDepth(t *testing.T) {
	tests := []struct {
		name    string
		entry   []byte
		wantErr string
	}{
		{"flat", logsEntry(t, "svc", "x"), ""},
		{"at the limit", deepLogsEntry(t, maxEntryValueDepth), ""},
		{"over the limit", deepLogsEntry(t, maxEntryValueDepth+1), "more than 1000 maps/lists deep"},
		{"100k levels", deepLogsEntry(t, 100_000), "more than 1000 maps/lists deep"},
		{"cut inside a length", []byte{byte(otlpreceiver.KindLogs), 1, 0x0a, 0xff}, "malformed protobuf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, data, err := otlpreceiver.DecodeEntry(tt.entry)
			if err != nil {
				t.Fatal(err)
			}
			err = otlpreceiver.CheckLogsDepth(data, maxEntryValueDepth)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckLogsDepth = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// Maps nest through KeyValueList and KeyValue: the same bound holds.
	ld := plog.NewLogs()
	v := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes().PutEmpty("a")
	for range 5000 {
		v = v.SetEmptyMap().PutEmpty("k")
	}
	var m plog.ProtoMarshaler
	data, _ := m.MarshalLogs(ld)
	if err := otlpreceiver.CheckLogsDepth(data, maxEntryValueDepth); err == nil {
		t.Error("attributes nested 5000 maps deep passed the depth check")
	}
}

// FuzzPumpEntry appends random payloads to a real disk queue and runs them through the
// pump's per-entry processing: each is delivered or quarantined, never a panic, and
// the queue is empty afterwards.
func FuzzPumpEntry(f *testing.F) {
	for _, seed := range [][]byte{
		queueEntry(f, otlpreceiver.KindTraces), queueEntry(f, otlpreceiver.KindLogs), queueEntry(f, otlpreceiver.KindMetrics), deepLogsEntry(f, maxEntryValueDepth+1),
		deepLogsEntry(f, 10), {9, 9, 9}, {}, {byte(otlpreceiver.KindLogs)}, {byte(otlpreceiver.KindLogs), 1, 0x0a, 0xff},
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	q, err := diskqueue.Open(diskqueue.Config{SegmentSize: 1 << 20, MaxSize: 4 << 20, QuarantineMaxSize: 64 << 10, Fsync: diskqueue.FsyncNever},
		diskqueue.Settings{Name: "fuzz", Dir: dir, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = q.Close() })
	sinks := &batchSinks{}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 512<<10 {
			return
		}
		ctx := context.Background()
		if err := q.Append(ctx, payload); err != nil {
			t.Fatal(err)
		}
		e, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		p := &pump{name: "fuzz", q: q, traces: sinks, logs: sinks, metrics: sinks, log: quiet(), bad: func() { bad++ }}
		if err := p.process(ctx, e); err != nil {
			t.Fatalf("process: %v", err)
		}
		if n, _ := q.Len(); n != 0 {
			t.Fatalf("entry neither delivered nor quarantined: %d left in the queue", n)
		}
		if _, _, _, derr := otlpreceiver.DecodeEntry(payload); derr != nil && bad != 1 {
			t.Fatalf("an entry that does not decode (%v) was not quarantined", derr)
		}
	})
}

// crashChildEnv names the queue directory for TestPumpCrashChild, the agent stand-in
// that TestPumpQuarantinesAnEntryThatCrashesTheProcess runs as a child process.
const crashChildEnv = "OUTRIDER_PUMP_CRASH_CHILD_DIR"

// TestPumpCrashChild runs only as a child of
// TestPumpQuarantinesAnEntryThatCrashesTheProcess: it pumps the queue in the given
// directory with the depth check out of the way and a 16 MiB stack, so the real
// decoder overflows the stack on the deep entry — a fatal error no recover catches.
func TestPumpCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return // not a child: nothing to do
	}
	debug.SetMaxStack(16 << 20)
	entryFault = func(p []byte) {
		if _, _, data, err := otlpreceiver.DecodeEntry(p); err == nil {
			var u plog.ProtoUnmarshaler
			_, _ = u.UnmarshalLogs(data) // without CheckLogsDepth first
		}
	}
	q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "logs", Dir: filepath.Join(dir, "queue"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "delivered"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Lines are written as they are exported: the process may die on the next entry.
	sink := pipeline.SinkFunc(func(_ context.Context, b pipeline.Batch) error {
		for _, r := range b.Records {
			fmt.Fprintln(f, r.Line)
		}
		b.Done(nil)
		return nil
	})
	runPumpUntilEmpty(t, &pump{name: "logs", q: q, logs: sink, log: quiet(), bad: func() {}})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPumpQuarantinesAnEntryThatCrashesTheProcess runs the pump in a child process
// over a queue holding an entry that really crashes it (a stack overflow in the
// protobuf decoder: fatal, not a panic). The first two runs die on it; the third
// quarantines it undecoded and delivers the rest; a fourth finds nothing to do.
func TestPumpQuarantinesAnEntryThatCrashesTheProcess(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("running as the child")
	}
	dir := t.TempDir()
	q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "logs", Dir: filepath.Join(dir, "queue"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	deep := deepLogsEntry(t, 100_000)
	for _, e := range [][]byte{logsEntry(t, "svc", "before"), deep, logsEntry(t, "svc", "after")} {
		if err := q.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 4; run++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPumpCrashChild$", "-test.count", "1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		crashed := err != nil
		if want := run <= maxEntryCrashes; crashed != want {
			t.Fatalf("run %d: crashed %v, want %v:\n%.2000s", run, crashed, want, out)
		}
		if crashed && !bytes.Contains(out, []byte("stack overflow")) {
			t.Fatalf("run %d died, but not of the stack overflow:\n%.2000s", run, out)
		}
	}
	delivered, _ := os.ReadFile(filepath.Join(dir, "delivered"))
	if !bytes.Contains(delivered, []byte("before\n")) || !bytes.Contains(delivered, []byte("after\n")) {
		t.Errorf("delivered %q, want before and after", delivered)
	}
	qs := quarantineFiles(t, filepath.Join(dir, "queue"))
	if len(qs) != 1 {
		t.Fatalf("%d quarantined entries, want the deep one", len(qs))
	}
	for reason, payload := range qs {
		if !bytes.Equal(payload, deep) || !strings.Contains(reason, "stopped 2 times while decoding it") {
			t.Errorf("quarantined %d bytes with reason %q", len(payload), reason)
		}
	}
}

type envelopeSink struct {
	mu  sync.Mutex
	got []string
}

func (s *envelopeSink) ExportEnvelope(_ context.Context, e pipeline.Envelope) error {
	s.mu.Lock()
	s.got = append(s.got, string(e.Data))
	s.mu.Unlock()
	e.Done(nil)
	return nil
}

func TestPumpQuarantinesInvalidEnvelopes(t *testing.T) {
	dir := t.TempDir()
	q, err := diskqueue.Open(diskqueue.Config{}, diskqueue.Settings{Name: "errors", Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	good := func(id string) []byte {
		return []byte(`{"event_id":"` + id + `"}` + "\n" + `{"type":"event"}` + "\n" + `{"message":"boom"}` + "\n")
	}
	entries := [][]byte{good("0123456789abcdef0123456789abcdef"), []byte("not an envelope\n"), good("fedcba9876543210fedcba9876543210")}
	for _, e := range entries {
		if err := q.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	sink := &envelopeSink{}
	bad := 0
	runPumpUntilEmpty(t, &pump{name: "errors", q: q, envelopes: sink, log: quiet(), bad: func() { bad++ }})
	if len(sink.got) != 2 || sink.got[0] != string(entries[0]) || sink.got[1] != string(entries[2]) {
		t.Errorf("exported %q, want the two valid envelopes", sink.got)
	}
	if bad != 1 {
		t.Errorf("%d entries set aside, want 1", bad)
	}
	for reason, payload := range quarantineFiles(t, dir) {
		if string(payload) != "not an envelope\n" {
			t.Errorf("quarantined %q (%s)", payload, reason)
		}
	}
}
