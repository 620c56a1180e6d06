package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

func agentConfig(dir, service, lokiURL, extraSource, lokiExtra string) string {
	return fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app}
server: {listen: "127.0.0.1:0", shutdown_timeout: 15s}
log: {level: info}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
      parser: {format: json}
%[4]s
exporters:
  loki:
    url: %[3]s
    batch: {max_bytes: 128KiB, max_wait: 200ms}
%[5]s
`, dir, service, lokiURL, extraSource, lokiExtra)
}

// TestFilesToLoki tails JSON logs through rename and copytruncate rotation, plus
// plain logs with stack traces, into a real Loki, and checks that every line arrived
// exactly once with its correlation IDs in structured metadata, never in labels.
func TestFilesToLoki(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	for _, d := range []string{"logs", "plain"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, agentConfig(dir, "e2e-files", loki.URL, fmt.Sprintf(`    - name: plain
      path: %s/plain/*.log
      parser: {format: plain}`, dir), ""))
	start := time.Now().Add(-time.Minute)

	logPath := filepath.Join(dir, "logs", "app.log")
	w := openAppend(t, logPath)
	seq := 0
	writeJSON := func(n int) {
		for i := 0; i < n; i++ {
			level := "info"
			if seq%20 == 0 {
				level = "error"
			}
			w.line(`{"time":%q,"level":%q,"msg":"request done seq=%d","trace_id":"%032x","span_id":"%016x","request_id":"req-%d"}`,
				time.Now().UTC().Format(time.RFC3339Nano), level, seq, seq+1, seq+1, seq)
			seq++
		}
		w.flush()
	}
	writeJSON(3000)

	plain := openAppend(t, filepath.Join(dir, "plain", "java.log"))
	plain.line("%s INFO  starting up", stamp())
	plain.line("%s ERROR request failed", stamp())
	plain.line("java.lang.IllegalStateException: boom")
	plain.line("\tat com.example.Orders.place(Orders.java:42)")
	plain.line("\tat com.example.Api.handle(Api.java:17)")
	plain.line("Caused by: java.io.IOException: disk gone")
	plain.line("\tat com.example.Store.write(Store.java:99)")
	plain.line("\t... 2 more")
	plain.line("%s INFO  recovered", stamp())
	plain.line("panic: runtime error: index out of range [3] with length 3")
	plain.line("")
	plain.line("goroutine 1 [running]:")
	plain.line("main.main()")
	plain.line("\t/app/main.go:12 +0x1d")
	plain.line("exit status 2")
	plain.line("Traceback (most recent call last):")
	plain.line(`  File "/app/main.py", line 3, in <module>`)
	plain.line("    main()")
	plain.line(`  File "/app/main.py", line 2, in main`)
	plain.line("    raise ValueError(\"bad\")")
	plain.line("ValueError: bad")
	plain.line("%s INFO  done", stamp())
	plain.flush()

	agent := startAgent(t, cfgPath)
	ctx := context.Background()
	sel := `{service="e2e-files", source="app"}`
	if _, err := loki.WaitCount(ctx, sel, start, 3000, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// rename + create rotation: the old file is drained through its open descriptor.
	writeJSON(2000)
	w.close()
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	w = openAppend(t, logPath)
	writeJSON(3000)
	if _, err := loki.WaitCount(ctx, sel, start, 8000, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// copytruncate rotation.
	data, _ := os.ReadFile(logPath)
	writeFile(t, logPath+".2", string(data))
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	writeJSON(2000)
	total := seq

	if _, err := loki.WaitCount(ctx, sel, start, total, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let any duplicate arrive before counting
	entries, err := loki.Query(ctx, sel, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	missing, dups := countSeq(t, lines, total)
	if missing != 0 || dups != 0 {
		t.Fatalf("%d lines written: %d missing, %d duplicated in Loki", total, missing, dups)
	}
	for _, e := range entries[:50] {
		var s int
		fmt.Sscanf(e.Line[strings.Index(e.Line, "seq=")+4:], "%d", &s)
		if got, want := e.Metadata["trace_id"], fmt.Sprintf("%032x", s+1); got != want {
			t.Errorf("seq %d: structured metadata trace_id = %q, want %q (metadata %v)", s, got, want, e.Metadata)
		}
		if got, want := e.Metadata["span_id"], fmt.Sprintf("%016x", s+1); got != want {
			t.Errorf("seq %d: span_id = %q, want %q", s, got, want)
		}
		if got, want := e.Metadata["request_id"], fmt.Sprintf("req-%d", s); got != want {
			t.Errorf("seq %d: request_id = %q, want %q", s, got, want)
		}
		for _, forbidden := range []string{"trace_id", "span_id", "request_id"} {
			if _, ok := e.Labels[forbidden]; ok {
				t.Errorf("%s is a label; it must be structured metadata only: %v", forbidden, e.Labels)
			}
		}
		for k, want := range map[string]string{"service": "e2e-files", "namespace": "e2e", "pod": "e2e-files-0", "container": "app", "source": "app"} {
			if e.Labels[k] != want {
				t.Errorf("label %s = %q, want %q (labels %v)", k, e.Labels[k], want, e.Labels)
			}
		}
		wantLevel := "info"
		if s%20 == 0 {
			wantLevel = "error"
		}
		if e.Labels["level"] != wantLevel {
			t.Errorf("seq %d: level label %q, want %q", s, e.Labels["level"], wantLevel)
		}
	}

	// 6 records: the ERROR header line and the exception under it are one.
	plainEntries, err := loki.WaitCount(ctx, `{service="e2e-files", source="plain"}`, start, 6, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var joined []string
	for _, e := range plainEntries {
		joined = append(joined, e.Line)
	}
	all := strings.Join(joined, "\n----\n")
	for _, want := range []string{
		"ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.Orders.place(Orders.java:42)\n\tat com.example.Api.handle(Api.java:17)\nCaused by: java.io.IOException: disk gone\n\tat com.example.Store.write(Store.java:99)\n\t... 2 more",
		"goroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d",
		"Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    main()\n  File \"/app/main.py\", line 2, in main\n    raise ValueError(\"bad\")\nValueError: bad",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no Loki entry holds the joined stack trace\n%s\n\nentries:\n%s", want, all)
		}
	}
	if len(plainEntries) > 9 {
		t.Errorf("plain log gave %d entries; stack traces were not joined:\n%s", len(plainEntries), all)
	}

	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// TestSIGKILLLosesNothing kills the agent three times with SIGKILL during a
// 200,000-line run: every line reaches Loki. Lines carry no timestamp, so a line sent
// twice shows up twice in Loki; the duplicates are bounded by what a kill can leave
// unrecorded, which is set by configuration, not by the machine's speed: the batches
// handed over and not yet acknowledged (max_inflight_batches) plus the acknowledged
// ones whose position save had not run yet. How many there were is logged; how fast
// the saves keep up belongs to a benchmark, not to this test.
func TestSIGKILLLosesNothing(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	cfgPath := filepath.Join(dir, "outrider.yaml")
	// Default batching: a push request holds at most 1 MiB of records.
	const batchBytes = 1 << 20
	const inflight = 2
	writeFile(t, cfgPath, strings.Replace(strings.Replace(agentConfig(dir, "e2e-kill", loki.URL, "", "    concurrency: 1\n"),
		"parser: {format: json}", fmt.Sprintf("parser: {format: plain}\n      max_inflight_batches: %d", inflight), 1),
		"    batch: {max_bytes: 128KiB, max_wait: 200ms}\n", "", 1))
	start := time.Now().Add(-time.Minute)

	const total = 200000
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
		for i := 0; i < total; i++ {
			w.line("kill test line seq=%d payload=%s", i, strings.Repeat("x", 40))
			if i%2000 == 1999 {
				w.flush()
				time.Sleep(25 * time.Millisecond)
			}
		}
		w.flush()
	}()

	kills := 0
	for kills < 3 {
		agent := startAgent(t, cfgPath)
		time.Sleep(time.Duration(700+300*kills) * time.Millisecond)
		agent.kill()
		kills++
	}
	<-done
	agent := startAgent(t, cfgPath)
	ctx := context.Background()
	if _, err := loki.WaitCount(ctx, `{service="e2e-kill"}`, start, total, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	entries, err := loki.Query(ctx, `{service="e2e-kill"}`, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(entries))
	for i, e := range entries {
		lines[i] = e.Line
	}
	missing, dups := countSeq(t, lines, total)
	// A push request holds at most batchBytes of records, each counted as
	// pipeline.Record.Size: the line, 16 bytes and its metadata (the file name). The
	// shortest line gives the most lines a batch can hold.
	minRecord := pipeline.Record{Line: fmt.Sprintf("kill test line seq=%d payload=%s", 0, strings.Repeat("x", 40)),
		Metadata: []pipeline.Label{{Name: "filename", Value: filepath.Join(dir, "logs", "app.log")}}}
	perBatch := batchBytes/minRecord.Size() + 1
	// Per kill: the in-flight batches, and as much again acknowledged but not yet saved.
	bound := kills * 2 * inflight * perBatch
	t.Logf("%d lines, %d kills: %d missing, %d duplicates (%.2f batches per kill; bound %d lines = %d batches per kill)",
		total, kills, missing, dups, float64(dups)/float64(kills*perBatch), bound, 2*inflight)
	if missing != 0 {
		t.Errorf("%d of %d lines missing from Loki after %d SIGKILLs", missing, total, kills)
	}
	if dups > bound {
		t.Errorf("%d duplicates after %d kills; want at most %d batches (%d lines) per kill: max_inflight_batches handed over and as many acknowledged but unsaved", dups, kills, 2*inflight, 2*inflight*perBatch)
	}
	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// TestLokiDownThirtySeconds stops Loki for 30 s while lines keep coming: every line is
// in Loki afterwards, none twice.
func TestLokiDownThirtySeconds(t *testing.T) {
	loki := startLoki(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, strings.Replace(agentConfig(dir, "e2e-down", loki.URL, "", "    retry: {initial_interval: 100ms, max_interval: 2s}\n"),
		"parser: {format: json}", "parser: {format: plain}", 1))
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)

	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	seq := 0
	write := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			for i := 0; i < 50; i++ {
				w.line("loki down test seq=%d", seq)
				seq++
			}
			w.flush()
			time.Sleep(100 * time.Millisecond)
		}
	}
	write(3 * time.Second)
	loki.Stop()
	write(30 * time.Second)
	ctx := context.Background()
	if err := loki.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	write(3 * time.Second)
	total := seq

	sel := `{service="e2e-down"}`
	if _, err := loki.WaitCount(ctx, sel, start, total, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	entries, err := loki.Query(ctx, sel, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(entries))
	for i, e := range entries {
		lines[i] = e.Line
	}
	missing, dups := countSeq(t, lines, total)
	t.Logf("%d lines across a 30 s Loki outage: %d missing, %d duplicates", total, missing, dups)
	if missing != 0 || dups != 0 {
		t.Errorf("want every line exactly once; %d missing, %d duplicated", missing, dups)
	}
	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// stamp is a plain-text log timestamp for now, as many frameworks write it.
func stamp() string { return time.Now().UTC().Format("2006-01-02 15:04:05.000") }
