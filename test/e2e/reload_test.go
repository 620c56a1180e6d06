package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigReload changes the configuration of a running agent: an invalid file is
// rejected and the running pipeline keeps shipping; a valid change (on file save, and on
// SIGHUP) replaces the pipeline without losing or repeating a line. It also checks the
// agent's /metrics, /healthz and /readyz.
func TestConfigReload(t *testing.T) {
	loki := sharedLoki(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755)
	// The agent watches the directory of --config. The SIGHUP step edits the file a
	// symlink points to in another directory, which the watch does not see.
	target := filepath.Join(dir, "elsewhere", "outrider.yaml")
	cfgPath := filepath.Join(dir, "outrider.yaml")
	base := strings.Replace(agentConfig(dir, "e2e-reload", loki.URL, "", ""), "parser: {format: json}", "parser: {format: plain}", 1)
	writeFile(t, target, base)
	if err := os.Symlink(target, cfgPath); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	agent := startAgent(t, cfgPath)
	addr := waitListen(t, agent)

	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	seq := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			w.line("reload test seq=%d", seq)
			seq++
		}
		w.flush()
	}
	ctx := context.Background()
	sel := `{service="e2e-reload"}`
	write(100)
	if _, err := loki.WaitCount(ctx, sel, start, 100, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if body := httpGet(t, "http://"+addr+path); !strings.Contains(body, want) {
			t.Errorf("GET %s = %q, want %q", path, body, want)
		}
	}
	metrics := httpGet(t, "http://"+addr+"/metrics")
	for _, name := range []string{"outrider_tail_lines_read_total", "outrider_exporter_sent_records_total", "outrider_exporter_request_duration_seconds", "outrider_tail_position_lag_bytes", "outrider_build_info"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// /readyz stays ready through every reload below.
	notReady := make(chan string, 1)
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if body := httpGet(t, "http://"+addr+"/readyz"); !strings.Contains(body, "ready") || strings.Contains(body, "not ready") {
				select {
				case notReady <- body:
				default:
				}
			}
		}
	}()

	// An invalid configuration is rejected; the old pipeline keeps working. (The
	// symlink is replaced by a file, so the watched directory sees the change.)
	replaceFile(t, cfgPath, base+"bogus_key: 1\n")
	waitLog(t, agent, "config reload rejected")
	write(100)
	if _, err := loki.WaitCount(ctx, sel, start, 200, 30*time.Second); err != nil {
		t.Fatalf("after a rejected reload: %v", err)
	}

	// A valid change on save replaces the pipeline.
	withLabel := func(v string) string {
		return strings.Replace(base, "parser: {format: plain}", "parser: {format: plain}\n      labels: {reloaded: "+v+"}", 1)
	}
	replaceFile(t, cfgPath, withLabel("saved"))
	waitLog(t, agent, "config reloaded")
	write(100)
	if _, err := loki.WaitCount(ctx, `{service="e2e-reload", reloaded="saved"}`, start, 100, 30*time.Second); err != nil {
		t.Fatalf("after reload on save: %v", err)
	}

	// SIGHUP reloads a change the watch cannot see: the config becomes a symlink to
	// the same content again (no reload: nothing changed), then the target changes.
	writeFile(t, target, withLabel("saved"))
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, cfgPath); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	writeFile(t, target, withLabel("hup"))
	if err := agent.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogCount(t, agent, "config reloaded", 2)
	write(100)
	if _, err := loki.WaitCount(ctx, `{service="e2e-reload", reloaded="hup"}`, start, 100, 30*time.Second); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}

	close(stopPoll)
	<-pollDone
	select {
	case body := <-notReady:
		t.Errorf("/readyz answered %q during a config reload; readiness must not flicker", body)
	default:
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
	if missing, dups := countSeq(t, lines, seq); missing != 0 || dups != 0 {
		t.Errorf("across reloads: %d missing, %d duplicated of %d", missing, dups, seq)
	}
	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

// waitListen reads the metrics address from the agent's "agent started" log line.
func waitListen(t *testing.T, p *agentProc) string {
	t.Helper()
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.log)
		for _, line := range strings.Split(string(data), "\n") {
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "agent started" {
				addr = rec.Listen
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if addr == "" {
		t.Fatal("agent did not log \"agent started\" with its listen address")
	}
	return addr
}

func waitLog(t *testing.T, p *agentProc, msg string) { t.Helper(); waitLogCount(t, p, msg, 1) }

func waitLogCount(t *testing.T, p *agentProc, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(p.log)
		if strings.Count(string(data), `"msg":"`+msg) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("agent did not log %q %d time(s)", msg, n)
}

// replaceFile puts a new regular file at path (removing a symlink there).
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, content)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
