package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// TestSecretsEndToEnd runs the agent binary against a real Vault and a real Loki: a
// KV v2 secret is rendered into a 0400 file before /readyz turns ready; a change in
// Vault rewrites the file and the app gets SIGHUP; the secret's current and previous
// values, written by the app into its log or sent in a span, reach Loki and the trace
// backend only as [REDACTED]; and the
// fetch, render and reload audit events are in Loki's outrider-audit stream, without
// values.
func TestSecretsEndToEnd(t *testing.T) {
	loki := sharedLoki(t)
	ctx := context.Background()
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := vaulttest.Start(vctx, t.TempDir())
	if err != nil {
		t.Fatalf("real Vault is required: %v", err)
	}
	t.Cleanup(v.Stop)
	const (
		canary1 = "canary-pw-first-7f3a9c"
		canary2 = "canary-pw-second-b81d44"
	)
	if _, err := v.Client.KVv2("secret").Put(ctx, "app", map[string]any{"db_password": canary1, "user": "shop"}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	for _, d := range []string{"logs", "secrets"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	pidFile, hupFile := filepath.Join(dir, "app.pid"), filepath.Join(dir, "hups")
	app := exec.Command("sh", "-c", fmt.Sprintf(`echo $$ > %s; trap 'echo HUP >> %s' HUP; while :; do sleep 0.05; done`, pidFile, hupFile))
	app.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Process.Kill(); _ = app.Wait() })
	tokenFile := filepath.Join(dir, "vault-token")
	writeFile(t, tokenFile, v.RootToken)

	secretFile := filepath.Join(dir, "secrets", "app.env")
	cfgPath := filepath.Join(dir, "outrider.yaml")
	jaeger := jaegertest.Shared(t)
	ports, err := backendtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	otlpGRPC := fmt.Sprintf("127.0.0.1:%d", ports[0])
	writeFile(t, cfgPath, agentConfig(dir, "e2e-secrets", loki.URL, "",
		fmt.Sprintf("  otlp: {endpoint: \"http://%s\", batch: {max_wait: 200ms}}\n", jaeger.OTLPGRPCEndpoint()))+
		fmt.Sprintf("receivers:\n  otlp: {grpc: {listen: %q}, http: {listen: \"127.0.0.1:%d\"}}\n", otlpGRPC, ports[1])+fmt.Sprintf(`secrets:
  vault:
    address: %s
    auth: {method: token, token_file: %s}
  poll_interval: 1s
  reload: {method: signal, signal: SIGHUP, pid_file: %s}
  files:
    - path: %s
      source: secret/app
      format: env
`, v.Addr, tokenFile, pidFile, secretFile))
	start := time.Now().Add(-time.Minute)
	// A backlog written before the agent starts (as after a restart) is read only once
	// the secrets are rendered, so it is scrubbed too.
	w := openAppend(t, filepath.Join(dir, "logs", "app.log"))
	w.line(`{"time":%q,"level":"error","msg":"backlog: connecting with password %s"}`, time.Now().UTC().Format(time.RFC3339Nano), canary1)
	w.flush()
	agent := startAgent(t, cfgPath)
	addr := waitListen(t, agent)

	waitFor(t, 30*time.Second, "/readyz ready and the secret file rendered", func() bool {
		_, err := os.Stat(secretFile)
		return err == nil && strings.Contains(httpGet(t, "http://"+addr+"/readyz"), "ready")
	})
	st, _ := os.Stat(secretFile)
	if st.Mode().Perm() != 0o400 {
		t.Errorf("secret file mode %v, want 0400", st.Mode().Perm())
	}
	if data, _ := os.ReadFile(secretFile); !strings.Contains(string(data), "db_password="+canary1) {
		t.Fatalf("rendered file:\n%s", data)
	}

	if _, err := v.Client.KVv2("secret").Put(ctx, "app", map[string]any{"db_password": canary2, "user": "shop"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the file to hold the new value and the app to get SIGHUP", func() bool {
		data, _ := os.ReadFile(secretFile)
		hups, _ := os.ReadFile(hupFile)
		return strings.Contains(string(data), "db_password="+canary2) && strings.Count(string(hups), "HUP") >= 1
	})

	for i, pw := range []string{canary1, canary2} {
		w.line(`{"time":%q,"level":"error","msg":"login failed with password %s seq=%d","request_id":"%s"}`, time.Now().UTC().Format(time.RFC3339Nano), pw, i, pw)
	}
	w.flush()
	entries, err := loki.WaitCount(ctx, `{service="e2e-secrets", source="app"}`, start, 3, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		all := e.Line + fmt.Sprint(e.Metadata)
		if strings.Contains(all, "canary-pw") {
			t.Errorf("a live secret value reached Loki: %s %v", e.Line, e.Metadata)
		}
		if !strings.Contains(e.Line, "[REDACTED]") {
			t.Errorf("line not scrubbed: %s", e.Line)
		}
	}

	// Spans carrying the current and the previous value, in attributes, an event and
	// the status, reach the trace backend scrubbed.
	checkSpanScrubbed(t, jaeger, otlpGRPC, canary2, canary1)

	audits, err := loki.WaitCount(ctx, `{service="e2e-secrets", source="outrider-audit"}`, start, 3, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range audits {
		if strings.Contains(e.Line, "canary-pw") || strings.Contains(e.Line, v.RootToken+`"`) {
			t.Errorf("an audit event carries a value: %s", e.Line)
		}
		for _, k := range []string{"fetch", "render", "reload"} {
			if strings.Contains(e.Line, `"kind":"`+k+`"`) {
				kinds[k] = true
			}
		}
	}
	for _, k := range []string{"fetch", "render", "reload"} {
		if !kinds[k] {
			t.Errorf("no %s audit event in Loki; got %d audit entries", k, len(audits))
		}
	}
	// A config change that leaves the secrets section alone keeps the syncer: no new
	// fetch, no reload of the app. A change to it takes effect.
	hupsBefore := countHUPs(hupFile)
	cfg := string(mustReadFile(t, cfgPath))
	replaceFile(t, cfgPath, strings.Replace(cfg, "parser: {format: json}", "parser: {format: json}\n      labels: {reloaded: logs}", 1))
	waitLog(t, agent, "config reloaded")
	time.Sleep(2 * time.Second)
	if n := countHUPs(hupFile); n != hupsBefore {
		t.Errorf("a logs-only config reload reloaded the app (%d -> %d SIGHUPs)", hupsBefore, n)
	}
	jsonFile := filepath.Join(dir, "secrets", "app.json")
	replaceFile(t, cfgPath, string(mustReadFile(t, cfgPath))+fmt.Sprintf("    - path: %s\n      source: secret/app\n      format: json\n", jsonFile))
	waitFor(t, 30*time.Second, "the file added by a config reload", func() bool {
		data, _ := os.ReadFile(jsonFile)
		return strings.Contains(string(data), canary2)
	})
	if data, _ := os.ReadFile(secretFile); !strings.Contains(string(data), "db_password="+canary2) {
		t.Errorf("after the secrets reload the first file lost its content:\n%s", data)
	}

	if err := agent.stop(30 * time.Second); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}

func countHUPs(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "HUP")
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSpanScrubbed sends a span holding each value through the agent at addr and
// checks that Jaeger stored it without them.
func checkSpanScrubbed(t *testing.T, j *jaegertest.Jaeger, addr string, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	_, span := tp.Tracer("e2e").Start(ctx, "db.connect")
	for i, v := range values {
		span.SetAttributes(attribute.String(fmt.Sprintf("db.password.%d", i), v), attribute.String(fmt.Sprintf("db.dsn.%d", i), "postgres://shop:"+v+"@db/shop"))
	}
	span.AddEvent("login", trace.WithAttributes(attribute.String("password", values[0])))
	span.SetStatus(otelcodes.Error, "login failed for "+values[0])
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	td, err := j.WaitForTrace(ctx, span.SpanContext().TraceID().String(), 1)
	if err != nil || len(td) != 1 {
		t.Fatalf("span in Jaeger: %v (%d spans)", err, len(td))
	}
	data, err := j.GetTraceData(ctx, span.SpanContext().TraceID().String())
	if err != nil {
		t.Fatal(err)
	}
	var m ptrace.JSONMarshaler
	raw, _ := m.MarshalTraces(data)
	for _, v := range values {
		if strings.Contains(string(raw), v) {
			t.Errorf("a live secret value reached the trace backend: %s", raw)
		}
	}
	if strings.Count(string(raw), "[REDACTED]") < 2*len(values)+2 {
		t.Errorf("span not scrubbed everywhere: %s", raw)
	}
}
