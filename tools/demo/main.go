// Command demo runs outrider's main job locally against real backends: it starts a
// real Loki, Vault, PostgreSQL and Jaeger v2 (an OTLP trace backend standing in for
// Tempo) on 127.0.0.1 and a strict Sentry-protocol receiver; the agent renders a KV
// secret and database credentials for the demo app (examples/demo-app), which serves
// requests from its load generator: JSON logs with correlation IDs, traces over OTLP,
// errors and a panic reported with sentry-go to the sidecar, queries to PostgreSQL with
// the rendered credentials. Midway the credentials rotate and the app reloads without
// dropping a request. The demo prints what arrived in each backend — scrubbed,
// correlated by trace_id — and the queries to see it. `make demo` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
	"github.com/outrider-dev/outrider/internal/pgtest"
	"github.com/outrider-dev/outrider/internal/sentrytest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

func main() {
	bin := flag.String("outrider", "bin/outrider", "outrider binary")
	appBin := flag.String("app", "bin/demo-app", "the demo app's binary (go build ./examples/demo-app)")
	seconds := flag.Int("seconds", 30, "how long the load generator runs")
	keep := flag.Bool("keep", false, "keep the backends, the agent and the app running until Ctrl-C")
	flag.Parse()
	if err := run(*bin, *appBin, time.Duration(*seconds)*time.Second, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, appBin string, loadFor time.Duration, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "outrider-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("starting a real Loki %s, Vault %s, Jaeger %s (OTLP trace backend) and PostgreSQL on 127.0.0.1 (Loki takes ~20 s)",
		lokitest.Version, vaulttest.Version, jaegertest.Version)
	jaeger, err := jaegertest.StartIn(ctx, filepath.Join(dir, "jaeger"))
	if err != nil {
		return err
	}
	defer jaeger.Stop()
	// No Sentry can run here: a strict Sentry-protocol receiver stands in for the
	// project the agent forwards events to.
	sentrySrv := sentrytest.New(sentrytest.WithPublicKey("demo-upstream-key"), sentrytest.WithProject(1))
	defer sentrySrv.Close()
	loki, err := lokitest.Start(ctx, filepath.Join(dir, "loki"))
	if err != nil {
		return err
	}
	defer loki.Stop()
	v, err := vaulttest.Start(ctx, filepath.Join(dir, "vault"))
	if err != nil {
		return err
	}
	defer v.Stop()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		return err
	}
	defer pg.Stop()
	if err := setupVault(v.Client, pg); err != nil {
		return err
	}
	step("Loki %s, Vault %s (KV secret secret/demo-shop, database role database/creds/shop: TTL 8s, max 20s)", loki.URL, v.Addr)

	logDir := filepath.Join(dir, "app-logs")
	secretDir := filepath.Join(dir, "secrets")
	for _, d := range []string{logDir, secretDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(v.RootToken), 0o600); err != nil {
		return err
	}
	ports, err := backendtest.FreePorts(5)
	if err != nil {
		return err
	}
	port, otlpGRPC, otlpHTTP := ports[0], fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	sentryAddr, appAddr := fmt.Sprintf("127.0.0.1:%d", ports[3]), fmt.Sprintf("127.0.0.1:%d", ports[4])
	cfgPath := filepath.Join(dir, "outrider.yaml")
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: demo-shop, namespace: demo, pod: demo-shop-0, container: app}
server: {listen: "127.0.0.1:%[6]d"}
log: {level: warn, format: text}
logs:
  sources:
    - name: app
      path: %[2]s/*.log
      parser: {format: auto}
receivers:
  otlp:
    grpc: {listen: "%[8]s"}
    http: {listen: "%[9]s"}
  sentry: {listen: "%[11]s", public_key: demo-local-key}
exporters:
  loki:
    url: %[3]s
    batch: {max_wait: 200ms}
  otlp:
    endpoint: http://%[10]s
    batch: {max_wait: 200ms}
  sentry:
    dsn: %[12]s
errors: {environment: demo}
grafana: {url: "http://grafana.local:3000", tempo_datasource_uid: tempo, loki_datasource_uid: loki}
secrets:
  vault:
    address: %[4]s
    auth: {method: token, token_file: %[5]s}
  poll_interval: 1s
  revoke_grace: 2s
  reload: {method: signal, signal: SIGHUP, pid_file: %[1]s/app.pid}
  files:
    - path: %[7]s/app.env
      source: secret/demo-shop
      format: env
    - path: %[7]s/db.env
      template: |
        {{ with secret "database/creds/shop" }}DB_USER={{ .Data.username }}
        DB_PASSWORD={{ .Data.password }}{{ end }}
`, dir, logDir, loki.URL, v.Addr, tokenFile, port, secretDir, otlpGRPC, otlpHTTP, jaeger.OTLPGRPCEndpoint(), sentryAddr, sentrySrv.DSN("demo-upstream-key", 1))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	step("config %s:\n%s", cfgPath, indent(cfg))

	start := time.Now().Add(-time.Minute)
	agent := exec.CommandContext(ctx, bin, "agent", "--config", cfgPath)
	agent.Stdout, agent.Stderr = os.Stdout, os.Stderr
	agent.Cancel = func() error { return agent.Process.Signal(syscall.SIGTERM) }
	agent.WaitDelay = 30 * time.Second
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start %s (run `make build` first): %w", bin, err)
	}
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
	}()
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK(readyURL) }); err != nil {
		return fmt.Errorf("agent not ready: %w", err)
	}
	dbUser := envValue(filepath.Join(secretDir, "db.env"), "DB_USER")
	step("agent ready: /readyz answered only after the secrets were rendered:\n    %s/app.env (%s)\n    %s/db.env  (%s, DB_USER=%s, password hidden)",
		secretDir, fileMode(filepath.Join(secretDir, "app.env")), secretDir, fileMode(filepath.Join(secretDir, "db.env")), dbUser)

	logPath := filepath.Join(logDir, "app.log")
	app, err := startApp(ctx, appBin, dir, []string{
		"DEMO_LISTEN=" + appAddr,
		"DEMO_LOG_FILE=" + logPath,
		"DEMO_PID_FILE=" + filepath.Join(dir, "app.pid"),
		"DB_CREDENTIALS_FILE=" + filepath.Join(secretDir, "db.env"),
		fmt.Sprintf("DB_ADDR=%s:%d", pg.Host, pg.Port),
		"API_KEY_FILE=" + filepath.Join(secretDir, "app.env"),
		fmt.Sprintf("SENTRY_DSN=http://demo-local-key@%s/1", sentryAddr),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpHTTP,
		"OTEL_SERVICE_NAME=demo-shop",
		// This demo has no metrics backend: the SDK is told not to export metrics, as
		// the injector does for a pod without one.
		"OTEL_METRICS_EXPORTER=none",
	})
	if err != nil {
		return err
	}
	defer app.stop()
	if err := waitFor(ctx, 60*time.Second, func() bool { return httpOK("http://" + appAddr + "/healthz") }); err != nil {
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("the demo app did not come up: %w\nits stderr: %s\nits log:\n%s", err, app.errors(), indent(string(b)))
	}

	step("demo app (examples/demo-app) serves on %s; its load generator runs for %s: orders, slow queries, declined payments, a panic now and then", appAddr, loadFor)
	rep, err := runLoad(ctx, appBin, "http://"+appAddr, loadFor)
	if err != nil {
		return err
	}
	step("load: %d requests in %.0f s, by status %v, %d failed on purpose", rep.Requests, rep.Seconds, rep.Status, len(rep.Failed))
	if rep.Status["error"] > 0 {
		return fmt.Errorf("%d requests got no answer from the app", rep.Status["error"])
	}

	// The app keeps logging (a reload after each rotation), so the file and Loki are
	// compared at the same moment until they agree.
	var written int
	var entries []lokitest.Entry
	if err := waitFor(ctx, 60*time.Second, func() bool {
		if written, err = countLines(logPath); err != nil {
			return false
		}
		entries, err = loki.Query(ctx, `{service="demo-shop", source="app"}`, start, time.Now().Add(time.Minute))
		return err == nil && len(entries) == written
	}); err != nil {
		return fmt.Errorf("the app wrote %d lines and Loki has %d entries (%v)", written, len(entries), err)
	}
	levels := map[string]int{}
	withTrace := 0
	for _, e := range entries {
		levels[e.Labels["level"]]++
		if e.Metadata["trace_id"] != "" {
			withTrace++
		}
	}
	step("arrived in Loki: %d entries (%d lines written), %d with trace_id in structured metadata, by level %v", len(entries), written, withTrace, levels)

	// Every failed request is one correlated error: its log line, its trace and its
	// Sentry events share the trace ID.
	var failed failure
	for _, f := range rep.Failed {
		if f.Kind == "panic" || failed.TraceID == "" {
			failed = f
		}
	}
	if failed.TraceID == "" {
		return fmt.Errorf("no failed request to follow (statuses %v)", rep.Status)
	}
	spans, err := jaeger.WaitForTrace(ctx, failed.TraceID, 1)
	if err != nil {
		return fmt.Errorf("the failed request's trace in Jaeger: %w", err)
	}
	found, totalSpans, sampled := 0, 0, 0
	for i, id := range rep.Traces {
		if i%max(1, len(rep.Traces)/50) != 0 || sampled == 50 {
			continue
		}
		sampled++
		got, err := jaeger.WaitForTrace(ctx, id, 1)
		if err == nil {
			found++
			totalSpans += len(got)
		}
	}
	step("arrived in the trace backend: %d of %d sampled traces (%d spans), with service.name, k8s.pod.name and k8s.namespace.name added by the agent", found, sampled, totalSpans)

	minEvents := len(rep.Failed)
	events, err := sentrySrv.WaitEvents(ctx, minEvents)
	if err != nil {
		return fmt.Errorf("events at the Sentry receiver: %w (got %d, want at least %d)", err, len(sentrySrv.Events()), minEvents)
	}
	if errs := sentrySrv.Errors(); len(errs) > 0 {
		return fmt.Errorf("the Sentry receiver refused what it got: %v", errs)
	}
	bySource := map[string]int{}
	for _, e := range events {
		src, _ := e.Tag("outrider.source")
		bySource[src]++
	}
	step("arrived at the Sentry project: %d events, by source %v", len(events), bySource)

	step("one correlated error: the %s request, trace_id %s", failed.Kind, failed.TraceID)
	logLines, err := loki.WaitCount(ctx, fmt.Sprintf(`{service="demo-shop", level="error"} | trace_id="%s"`, failed.TraceID), start, 1, 30*time.Second)
	if err != nil {
		return fmt.Errorf("the failed request's error line in Loki: %w", err)
	}
	fmt.Printf("    Loki:   %s\n", clip(logLines[0].Line, 160))
	for _, s := range spans {
		fmt.Printf("    trace:  span %-28s %-6s status=%s %s\n", s.Name, s.Kind, s.StatusCode, s.StatusMessage)
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return len(eventsOf(sentrySrv, failed.TraceID)) > 0 }); err != nil {
		return fmt.Errorf("no Sentry event carries the failed request's trace_id %s: %w", failed.TraceID, err)
	}
	if err := printEvents(sentrySrv, failed.TraceID); err != nil {
		return err
	}

	step("waiting for the database credentials to rotate (Vault caps the renewal near the 20 s max TTL) …")
	if err := waitFor(ctx, 45*time.Second, func() bool {
		return envValue(filepath.Join(secretDir, "db.env"), "DB_USER") != dbUser
	}); err != nil {
		return fmt.Errorf("no rotation: %w", err)
	}
	newUser := envValue(filepath.Join(secretDir, "db.env"), "DB_USER")
	if err := waitFor(ctx, 15*time.Second, func() bool { return app.reloads(logPath) > 0 }); err != nil {
		return fmt.Errorf("the app did not reload after the rotation: %w", err)
	}
	_ = waitFor(ctx, 10*time.Second, func() bool { gone, _ := pg.RoleExists(ctx, dbUser); return !gone })
	oldExists, _ := pg.RoleExists(ctx, dbUser)
	newExists, _ := pg.RoleExists(ctx, newUser)
	after, err := runLoad(ctx, appBin, "http://"+appAddr, 3*time.Second)
	if err != nil {
		return err
	}
	step("rotated: %s -> %s; the app reloaded %d time(s) on SIGHUP and kept serving (%d requests, by status %v, on the new credentials); old PostgreSQL role still there: %t, new role there: %t",
		dbUser, newUser, app.reloads(logPath), rep.Requests+after.Requests, mergeStatus(rep.Status, after.Status), oldExists, newExists)

	leak, err := loki.WaitCount(ctx, `{service="demo-shop"} |= "API key"`, start, 1, 30*time.Second)
	if err == nil && len(leak) > 0 {
		step("the app logged its API key; Loki got:\n%s", indent(leak[0].Line))
	}
	audits, err := loki.WaitCount(ctx, `{service="demo-shop", source="outrider-audit"}`, start, 5, 30*time.Second)
	if err == nil {
		kinds := map[string]int{}
		for _, e := range audits {
			for _, k := range []string{"auth", "fetch", "render", "reload", "renew", "rotate", "revoke"} {
				if strings.Contains(e.Line, `"kind":"`+k+`"`) {
					kinds[k]++
				}
			}
		}
		step("audit events in Loki {source=\"outrider-audit\"}: %v", kinds)
	}
	step(`the queries behind Grafana's panels and links, against Loki %s and Jaeger %s:
    {service="demo-shop"}
    sum by (level) (count_over_time({service="demo-shop"}[5m]))
    {service="demo-shop", level="error"} | trace_id="%s"       (log -> trace: derived field trace_id)
    %s/api/v3/traces/%s                                          (trace -> logs: by trace_id)
    {service="demo-shop", source="outrider-audit"} | json | kind="rotate"`, loki.URL, jaeger.QueryURL(), failed.TraceID, jaeger.QueryURL(), failed.TraceID)
	if dockerEngine() {
		step("a Docker engine is running: `docker compose -f examples/compose/docker-compose.yml up` gives the same stack with Grafana on http://localhost:3000")
	} else {
		step("no Docker engine here; where one runs, `docker compose -f examples/compose/docker-compose.yml up` gives the same stack with Grafana")
	}
	if keep {
		step("running; press Ctrl-C to stop")
		<-ctx.Done()
	}
	return nil
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// demoAPIKey is the KV secret the demo app leaks into its log.
const demoAPIKey = "sk-demo-4f8a1c9e7b2d"

// setupVault writes the KV secret and configures the database engine on pg.
func setupVault(c *api.Client, pg *pgtest.Server) error {
	if _, err := c.KVv2("secret").Put(context.Background(), "demo-shop", map[string]any{"api_key": demoAPIKey, "region": "eu-1"}); err != nil {
		return fmt.Errorf("write KV secret: %w", err)
	}
	if err := c.Sys().Mount("database", &api.MountInput{Type: "database"}); err != nil {
		return fmt.Errorf("enable the database engine: %w", err)
	}
	if _, err := c.Logical().Write("database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.URL(),
		"username": "postgres", "password": pg.Password, "allowed_roles": "shop",
	}); err != nil {
		return fmt.Errorf("configure the database engine: %w", err)
	}
	if _, err := c.Logical().Write("database/roles/shop", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "8s",
		"max_ttl":             "20s",
	}); err != nil {
		return fmt.Errorf("create the database role: %w", err)
	}
	return nil
}

// demoApp is the demo app's serving process.
type demoApp struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startApp(ctx context.Context, bin, dir string, env []string) (*demoApp, error) {
	a := &demoApp{stderr: &bytes.Buffer{}}
	a.cmd = exec.CommandContext(ctx, bin, "serve")
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stderr = a.stderr
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the demo app %s (go build -o %s ./examples/demo-app): %w", bin, bin, err)
	}
	return a, nil
}

// reloads counts the app's log lines saying it took new credentials after SIGHUP.
func (a *demoApp) reloads(logPath string) int {
	b, _ := os.ReadFile(logPath)
	return strings.Count(string(b), "reload: new database credentials in use")
}

func (a *demoApp) errors() string { return strings.TrimSpace(a.stderr.String()) }

func (a *demoApp) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
}

// loadReport is what `demo-app load` prints.
type loadReport struct {
	Requests int            `json:"requests"`
	Status   map[string]int `json:"status"`
	Failed   []failure      `json:"failed"`
	Traces   []string       `json:"traces"`
	Seconds  float64        `json:"seconds"`
}

type failure struct {
	Kind    string `json:"kind"`
	TraceID string `json:"trace_id"`
}

// runLoad runs the demo app's load generator against target for d.
func runLoad(ctx context.Context, bin, target string, d time.Duration) (loadReport, error) {
	var rep loadReport
	cmd := exec.CommandContext(ctx, bin, "load", "-target", target, "-requests", "0", "-duration", d.String(),
		"-rate", "40", "-concurrency", "4", "-decline-every", "60", "-crash-every", "300")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return rep, fmt.Errorf("load generator: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("load generator's report: %w", err)
	}
	return rep, nil
}

func mergeStatus(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return bytes.Count(b, []byte("\n")), nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// dockerEngine reports whether a Docker engine answers (the CLI alone is not enough).
func dockerEngine() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").Run() == nil
}

func envValue(path, key string) string {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `'"`)
		}
	}
	return ""
}

func fileMode(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return st.Mode().Perm().String()
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
