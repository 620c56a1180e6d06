package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fileAgentConfig is an agent with one file source "app" on dir/logs/*.log sending to
// lokiURL; source holds extra source keys (indented for the source map).
func fileAgentConfig(dir, service, lokiURL, shutdownTimeout, source string) string {
	return fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app}
server: {listen: "127.0.0.1:0", shutdown_timeout: %[4]s}
log: {level: info}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
      parser: {format: plain}
%[5]s
exporters:
  loki:
    url: %[3]s
    retry: {initial_interval: 50ms, max_interval: 500ms}
`, dir, service, lokiURL, shutdownTimeout, source)
}

// seqLine is the text of line seq: fixed width, so byte counts convert to lines.
func seqLine(seq int) string {
	return fmt.Sprintf("app line seq=%08d %s", seq, strings.Repeat("x", 60))
}

// checkExactlyOnce fails unless every line 0..n-1 is in entries exactly once and
// unaltered, and reports how many are missing.
func checkExactlyOnce(t *testing.T, lines []string, n int) {
	t.Helper()
	missing, dups := countSeq(t, lines, n)
	bad := 0
	for _, l := range lines {
		var seq int
		if i := strings.Index(l, "seq="); i < 0 || func() bool { _, err := fmt.Sscanf(l[i+4:], "%d", &seq); return err != nil }() || l != seqLine(seq) {
			bad++
			if bad <= 3 {
				t.Errorf("entry is not a line the app wrote (cut or altered): %q", l)
			}
		}
	}
	if missing != 0 || dups != 0 || bad != 0 {
		t.Fatalf("%d lines written: %d missing, %d duplicated, %d altered in Loki", n, missing, dups, bad)
	}
}

// delayProxy forwards to target, holding each push request for delay (when
// *delay > 0) or answering 503 while *refuse is set: a slow or broken Loki in front of
// a real one.
type delayProxy struct {
	URL    string
	delay  atomic.Int64 // nanoseconds
	refuse atomic.Bool
	pushes atomic.Int64
}

func startDelayProxy(t *testing.T, target string) *delayProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/push") {
			if p.refuse.Load() {
				http.Error(w, "injected outage", http.StatusServiceUnavailable)
				return
			}
			p.pushes.Add(1)
			if d := time.Duration(p.delay.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// TestSIGTERMShipsTheLastLines: the app writes its lines and exits, the agent gets
// SIGTERM 200 ms later (a native sidecar's stop): every line is in Loki exactly
// once, though Loki answers slowly and the exporter batches for its default second.
func TestSIGTERMShipsTheLastLines(t *testing.T) {
	loki := sharedLoki(t)
	proxy := startDelayProxy(t, loki.URL)
	proxy.delay.Store(int64(150 * time.Millisecond))
	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"))
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, fileAgentConfig(dir, "e2e-sigterm", proxy.URL, "20s", ""))
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)
	waitListen(t, agent)

	// The app: 20,000 lines at 10,000 a second, then it exits.
	const n = 20000
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	tick := time.NewTicker(10 * time.Millisecond)
	for seq := 0; seq < n; {
		<-tick.C
		for i := 0; i < 100 && seq < n; i++ {
			w.line("%s", seqLine(seq))
			seq++
		}
		w.flush()
	}
	tick.Stop()
	w.close()
	time.Sleep(200 * time.Millisecond)
	if err := agent.stop(30 * time.Second); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v", err)
	}

	entries, err := loki.WaitCount(context.Background(), `{service="e2e-sigterm"}`, start, n, 30*time.Second)
	if err != nil {
		t.Fatalf("after the agent stopped: %v", err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, e.Line)
	}
	checkExactlyOnce(t, lines, n)
	t.Logf("%d lines written, the app exited, SIGTERM 200 ms later: all %d in Loki exactly once", n, n)
}

// TestSIGTERMReportsWhatItCouldNotShip: Loki refuses every push; on SIGTERM the agent
// reads the file to its end, and when the drain deadline passes it logs, for the
// file, how many lines and bytes were not shipped.
func TestSIGTERMReportsWhatItCouldNotShip(t *testing.T) {
	loki := sharedLoki(t)
	proxy := startDelayProxy(t, loki.URL)
	proxy.refuse.Store(true)
	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"))
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, fileAgentConfig(dir, "e2e-sigterm-report", proxy.URL, "2s", ""))
	logPath := filepath.Join(dir, "logs", "app.log")
	agent := startAgent(t, cfgPath)
	waitListen(t, agent)
	const n = 3000
	w := openAppend(t, logPath)
	for seq := 0; seq < n; seq++ {
		w.line("%s", seqLine(seq))
	}
	w.close()
	time.Sleep(200 * time.Millisecond)
	// The exporter cannot flush either: a non-zero exit is expected.
	_ = agent.stop(30 * time.Second)
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var report map[string]any
	for _, m := range agentLogRecords(t, agent) {
		if m["msg"] == "stopping before these lines of the file were shipped; they are read again on the next start" {
			report = m
		}
	}
	if report == nil {
		t.Fatal("the agent did not log what it could not ship")
	}
	if report["path"] != logPath || report["lines"] != float64(n) || report["bytes"] != float64(fi.Size()) {
		t.Fatalf("report %v; want path %s, %d lines, %d bytes", report, logPath, n, fi.Size())
	}
	t.Logf("Loki down, SIGTERM: the agent reported %v lines, %v bytes not shipped for %s", report["lines"], report["bytes"], logPath)
}

// agentLogRecords returns the agent's JSON log records.
func agentLogRecords(t *testing.T, p *agentProc) []map[string]any {
	t.Helper()
	f, err := os.Open(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
