package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/internal/lokitest"
)

// TestReloadRefusesHostileConfigs reloads (as SIGHUP does) a running agent that tails
// a file into a real Loki with configurations that must be refused: a YAML alias bomb,
// a file of the largest size made of tiny nodes, a duplicate key, and a secret whose
// value holds "${". Each is rejected with its
// reason, without the secret, at a bounded cost in memory, and the running pipeline
// keeps shipping lines to Loki throughout.
func TestReloadRefusesHostileConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lokitest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()

	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	service := fmt.Sprintf("reload-hostile-%d", time.Now().UnixNano())
	good := fmt.Sprintf(`data_dir: %s
identity: {service: %s}
server: {listen: "127.0.0.1:0", shutdown_timeout: 5s}
logs: {sources: [{name: app, path: %s/*.log}]}
exporters:
  loki:
    url: %s
    batch: {max_wait: 100ms}
`, filepath.Join(dir, "data"), service, logDir, l.URL)
	path := filepath.Join(dir, "outrider.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	reload := make(chan struct{}, 1)
	a := New(Options{ConfigPath: path, Config: cfg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Version: "test", Reload: reload})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	logFile, err := os.OpenFile(filepath.Join(logDir, "app.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	start := time.Now().Add(-time.Minute)
	lines := 0
	ship := func(after string) {
		t.Helper()
		for i := 0; i < 5; i++ {
			lines++
			fmt.Fprintf(logFile, "line %d, after %s\n", lines, after)
		}
		if _, err := l.WaitCount(ctx, fmt.Sprintf(`{service=%q}`, service), start, lines, 30*time.Second); err != nil {
			t.Fatalf("after %s: %v", after, err)
		}
	}
	ship("start")

	var bomb strings.Builder
	bomb.WriteString(good + "    labels:\n      l0: &l0 [\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&bomb, "      l%d: &l%d [*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	const secretMark = "SeCrEt-p4ss"
	for _, tt := range []struct{ name, yaml, want string }{
		{"alias bomb", bomb.String(), "the alias *l0 (used 9 times) is not supported; write the value out in full"},
		{"256KiB of tiny nodes", good + "    labels: [" + strings.Repeat("a,", (config.MaxBytes-len(good)-20)/2) + "]\n", fmt.Sprintf("holds more than %d YAML nodes", config.MaxNodes)},
		{"64MiB file", good + "# " + strings.Repeat("x", 64<<20) + "\n", "more than the limit of"},
		{"duplicate key", good + "    url: http://127.0.0.1:9\n", "exporters.loki.url: the key is written twice in one mapping, on line 7 and line 9"},
		{"secret with ${", good + "    basic_auth: {username: u, password: \"" + secretMark + "${oops\\n'\\\"\"}\n", "exporters.loki.basic_auth.password: line 9: the value holds a ${ without a closing }"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.yaml)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			began := time.Now()
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			reload <- struct{}{}
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(logs.String(), tt.want) {
				if time.Now().After(deadline) {
					t.Fatalf("no rejection saying %q logged:\n%s", tt.want, logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			took := time.Since(began)
			runtime.ReadMemStats(&m1)
			alloc := m1.TotalAlloc - m0.TotalAlloc
			t.Logf("%d-byte config rejected in %s; %.1f MiB allocated meanwhile", len(tt.yaml), took, float64(alloc)/(1<<20))
			out := logs.String()
			if !strings.Contains(out, "config reload rejected") {
				t.Errorf("no \"config reload rejected\" in the log:\n%s", out)
			}
			if strings.Contains(out, secretMark) {
				t.Errorf("the agent's log shows the secret value:\n%s", out)
			}
			if alloc > 64<<20 {
				t.Errorf("rejecting the configuration allocated %d bytes", alloc)
			}
			ship(tt.name)
		})
	}
}
