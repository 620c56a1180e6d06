package kube

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/lokitest"
)

// TestStdoutShipped runs the real agent with the configuration the injector generates
// for outrider.dev/stdout (from the real `outrider inject -f`), its pod log directory
// moved to a temporary one laid out as the kubelet lays out a pod's directory
// (<container>/0.log in the CRI format, and outrider's own container), against a real
// Loki: every app line arrives once with its container and stream labels, a line the
// runtime split in parts arrives whole, a kubelet rotation (0.log renamed to
// 0.log.<timestamp>, a new 0.log) loses nothing, and the sidecar's own output is never
// shipped.
func TestStdoutShipped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	loki, err := lokitest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer loki.Stop()

	file := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: shop
  annotations:
    outrider.dev/inject: "true"
    outrider.dev/stdout: "true"
spec:
  containers:
    - {name: api, image: "registry.example.com/shop/api:2"}
    - {name: worker, image: "registry.example.com/shop/worker:2"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runOutrider(ctx, "inject", "--image", sidecarImage, "--loki-url", loki.URL, "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(out), &pod); err != nil {
		t.Fatal(err)
	}
	generated := pod.Metadata.Annotations[inject.AnnotationConfig]

	// The sidecar's paths and ports, moved to this test's.
	dir := t.TempDir()
	podDir, dataDir := filepath.Join(dir, "pod"), filepath.Join(dir, "data")
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(generated, inject.PodLogsDir, podDir)), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["data_dir"] = dataDir
	cfg["server"] = map[string]any{"listen": freeLoopbackAddr(t)}
	cfg["receivers"] = map[string]any{"otlp": map[string]any{
		"grpc": map[string]any{"listen": freeLoopbackAddr(t)},
		"http": map[string]any{"listen": freeLoopbackAddr(t)},
	}}
	cfgYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}

	// The kubelet's layout of the pod's directory, and CRI lines as the runtime writes
	// them: "<RFC3339Nano> <stream> <P|F> <text>".
	base := time.Now().UTC().Add(-time.Minute)
	seq := 0
	cri := func(stream, tag, text string) string {
		seq++
		return fmt.Sprintf("%s %s %s %s\n", base.Add(time.Duration(seq)*time.Millisecond).Format(time.RFC3339Nano), stream, tag, text)
	}
	appendTo := func(container, name, lines string) {
		t.Helper()
		p := filepath.Join(podDir, container, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(lines); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("x", 40000)
	appendTo("api", "0.log", cri("stdout", "F", "api starting")+
		cri("stderr", "F", "api warning on stderr")+
		cri("stdout", "P", long[:16384])+cri("stdout", "P", long[16384:32768])+cri("stdout", "F", long[32768:]+" end"))
	appendTo("worker", "0.log", cri("stdout", "F", "worker ready"))
	appendTo(inject.SidecarName, "0.log", cri("stderr", "F", "outrider's own line"))

	var agentLog bytes.Buffer
	cmd := exec.CommandContext(ctx, outriderBin, "agent", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "POD_NAME=api", "POD_NAMESPACE=shop", "POD_UID=0b5c1f5e-4b1e-4a43-9f4f-1a2b3c4d5e6f", "CONTAINER_NAME=api", "OTEL_SERVICE_NAME=api")
	cmd.Stdout, cmd.Stderr = &agentLog, &agentLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("agent log:\n%s\nconfiguration:\n%s", agentLog.String(), cfgYAML)
		}
	}()

	query := `{service="api"}`
	if _, err := loki.WaitCount(ctx, query, base.Add(-time.Minute), 4, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The kubelet's rotation: 0.log renamed to 0.log.<timestamp>, a new 0.log.
	appendTo("api", "0.log", cri("stdout", "F", "api last line before rotation"))
	if err := os.Rename(filepath.Join(podDir, "api", "0.log"), filepath.Join(podDir, "api", "0.log.20261206-120000")); err != nil {
		t.Fatal(err)
	}
	appendTo("api", "0.log", cri("stdout", "F", "api first line after rotation"))
	if _, err := loki.WaitCount(ctx, query, base.Add(-time.Minute), 6, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Let a stray duplicate or the sidecar's own line arrive, if they were coming.
	time.Sleep(3 * time.Second)
	entries, err := loki.Query(ctx, query, base.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ container, stream, line string }
	var got []key
	for _, e := range entries {
		got = append(got, key{e.Labels["container"], e.Labels["stream"], e.Line})
	}
	want := []key{
		{"api", "stdout", "api starting"},
		{"api", "stderr", "api warning on stderr"},
		{"api", "stdout", long + " end"},
		{"worker", "stdout", "worker ready"},
		{"api", "stdout", "api last line before rotation"},
		{"api", "stdout", "api first line after rotation"},
	}
	for _, w := range want {
		if n := slices.Index(got, w); n < 0 {
			t.Errorf("missing in Loki: container=%s stream=%s %.60q", w.container, w.stream, w.line)
		}
	}
	if len(got) != len(want) {
		for _, g := range got {
			t.Logf("in Loki: container=%s stream=%s %.60q", g.container, g.stream, g.line)
		}
		t.Errorf("%d entries in Loki, want %d (each line once, and not outrider's own)", len(got), len(want))
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("the agent did not stop cleanly on SIGTERM: %v", err)
	}
	stopped = true
}
