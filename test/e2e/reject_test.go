package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLokiRejectionIsNotRetriedForever writes a line older than Loki accepts between
// current lines: Loki answers 400, the agent counts the drop, does not retry it, and
// every current line still arrives exactly once.
func TestLokiRejectionIsNotRetriedForever(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, agentConfig(dir, "e2e-reject", loki.URL, "", ""))
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)
	addr := waitListen(t, agent)

	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	seq := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			w.line(`{"time":%q,"level":"info","msg":"reject test seq=%d"}`, time.Now().UTC().Format(time.RFC3339Nano), seq)
			seq++
		}
		w.flush()
	}
	write(100)
	w.line(`{"time":%q,"level":"info","msg":"a line from last month"}`, time.Now().Add(-30*24*time.Hour).UTC().Format(time.RFC3339Nano))
	w.flush()
	time.Sleep(500 * time.Millisecond)
	write(100)

	ctx := context.Background()
	if _, err := loki.WaitCount(ctx, `{service="e2e-reject"}`, start, seq, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dropped := regexp.MustCompile(`outrider_exporter_dropped_records_total\{exporter="loki",reason="too_old"\} (\d+)`)
	// Loki rejects only the old entry and stores the rest of its request: exactly one
	// record is counted as dropped.
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := dropped.FindStringSubmatch(httpGet(t, "http://"+addr+"/metrics"))
		n := -1
		if m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("too_old drops in /metrics = %d, want 1", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	entries, err := loki.Query(ctx, `{service="e2e-reject"}`, start, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(entries))
	for i, e := range entries {
		lines[i] = e.Line
		if strings.Contains(e.Line, "last month") {
			t.Errorf("Loki stored the line it should have rejected: %s", e.Line)
		}
	}
	if missing, dups := countSeq(t, lines, seq); missing != 0 || dups != 0 {
		t.Errorf("%d missing, %d duplicated of %d current lines", missing, dups, seq)
	}
	if data, _ := os.ReadFile(agent.log); strings.Count(string(data), "too_old") > 3 {
		t.Errorf("the rejection was logged %d times; want one line, not a retry loop", strings.Count(string(data), "too_old"))
	}
	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}
