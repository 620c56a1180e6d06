package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/processors/redact"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunServesHealthAndStops(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("data_dir: "+t.TempDir()+"\nserver: {listen: \"127.0.0.1:0\", shutdown_timeout: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	a := New(Options{ConfigPath: t.TempDir() + "/missing.yaml", Config: cfg, Version: "test", OnListen: func(s string) { addrc <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	addr := <-addrc

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, "http://"+addr+"/readyz")
		if code == http.StatusOK && strings.Contains(body, "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if _, body := get(t, "http://"+addr+"/metrics"); !strings.Contains(body, `version="test"} 1`) || !strings.Contains(body, `outrider_build_info{goversion="go`) || !strings.Contains(body, "outrider_ready 1") {
		t.Errorf("/metrics lacks build info or readiness:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestMetricsSurviveManyGraphs(t *testing.T) {
	m := newMetrics(buildInfo("test"))
	y := "data_dir: " + t.TempDir() + "\nlogs: {sources: [{name: a, path: /tmp/x/*.log}]}\nexporters: {loki: {url: \"http://127.0.0.1:1\"}}\n"
	cfg, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := buildGraph(cfg, m, redact.NewRegistry(m.redact), discard(), nil); err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunWithReceiversStopsCleanly runs the agent with both receivers and every
// exporter pointing at closed ports: it starts, stores what it accepts, and stops
// within its shutdown timeout without leaking a goroutine (goleak in TestMain),
// leaving the undelivered data in its queues.
func TestRunWithReceiversStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte(`data_dir: `+dir+`
server: {listen: "127.0.0.1:0", shutdown_timeout: 2s}
receivers:
  otlp: {grpc: {listen: "127.0.0.1:0"}, http: {listen: "127.0.0.1:0"}}
  sentry: {listen: "127.0.0.1:0", public_key: k}
exporters:
  loki: {url: "http://127.0.0.1:9"}
  otlp: {endpoint: "http://127.0.0.1:9"}
  sentry: {dsn: "http://key@127.0.0.1:9/1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	a := New(Options{ConfigPath: dir + "/missing.yaml", Config: cfg, Version: "test", OnListen: func(s string) { addrc <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	addr := <-addrc
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get(t, "http://"+addr+"/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			_, body := get(t, "http://"+addr+"/readyz")
			t.Fatalf("not ready: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, q := range []string{"traces", "logs", "errors"} {
		if _, err := os.Stat(filepath.Join(dir, "queue", q)); err != nil {
			t.Errorf("queue %s: %v", q, err)
		}
	}
	cancel()
	select {
	case <-done:
		// An error is expected: the exporters could not deliver before the deadline.
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within the shutdown timeout")
	}
}

// TestRunRefusesABusySentryPort: the error names the setting once and says what to
// check.
func TestRunRefusesABusySentryPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte(`data_dir: `+dir+`
server: {listen: "127.0.0.1:0", shutdown_timeout: 2s}
receivers:
  sentry: {listen: "`+ln.Addr().String()+`"}
exporters:
  sentry: {dsn: "http://key@127.0.0.1:9/1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = New(Options{ConfigPath: dir + "/missing.yaml", Config: cfg, Version: "test"}).Run(context.Background())
	if err == nil || strings.Count(err.Error(), "receivers.sentry.listen") != 1 || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("Run = %v, want one error naming receivers.sentry.listen and what to check", err)
	}
}
