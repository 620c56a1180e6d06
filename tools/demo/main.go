// Command demo runs outrider's main job locally against real backends: it starts a
// real Loki, Vault and PostgreSQL on 127.0.0.1; the agent renders a KV secret and
// database credentials into files for a demo app, rotates the credentials midway and
// makes the app reload; the app writes a log (JSON lines with correlation IDs, errors,
// a Java stack trace, a rotation, and a line leaking its API key), sends traces over
// OTLP and reports an error with its Sentry SDK while logging a panic; and the demo
// prints what arrived in Loki, in a real OTLP trace backend (Jaeger v2 standing in for
// Tempo) and at a Sentry-protocol receiver — scrubbed, correlated by trace_id — with
// the queries to see it. `make demo` runs it.
package main

import (
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
	lines := flag.Int("lines", 2000, "JSON lines the demo app writes")
	keep := flag.Bool("keep", false, "keep Loki and the agent running until Ctrl-C")
	flag.Parse()
	if err := run(*bin, *lines, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string, n int, keep bool) error {
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
	app, err := startApp(dir)
	if err != nil {
		return err
	}
	defer app.stop()
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(v.RootToken), 0o600); err != nil {
		return err
	}
	ports, err := backendtest.FreePorts(4)
	if err != nil {
		return err
	}
	port, otlpGRPC, otlpHTTP := ports[0], fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	sentryAddr := fmt.Sprintf("127.0.0.1:%d", ports[3])
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

	step("demo app writes %d JSON lines, an error with a Java stack trace, and rotates its log", n)
	traceID, err := writeAppLogs(logDir, n)
	if err != nil {
		return err
	}
	want := n + 2 // plus the stack trace and the API key line
	entries, err := loki.WaitCount(ctx, `{service="demo-shop", source="app"}`, start, want, 60*time.Second)
	if err != nil {
		return err
	}
	levels := map[string]int{}
	withTrace := 0
	for _, e := range entries {
		levels[e.Labels["level"]]++
		if e.Metadata["trace_id"] != "" {
			withTrace++
		}
	}
	step("arrived in Loki: %d entries (%d written), %d with trace_id in structured metadata, by level %v", len(entries), want, withTrace, levels)
	for _, e := range entries {
		if strings.Contains(e.Line, "\tat ") {
			step("the stack trace arrived as one entry (labels %v, metadata %v):\n%s", e.Labels, e.Metadata, indent(e.Line))
			break
		}
	}
	const nTraces = 20
	step("demo app sends %d traces (%d spans) with the OpenTelemetry Go SDK to the agent's OTLP receiver %s", nTraces, nTraces*5, otlpGRPC)
	traceIDs, err := sendTraces(ctx, otlpGRPC, nTraces)
	if err != nil {
		return err
	}
	spans, stored, err := tracesArrived(ctx, jaeger, traceIDs)
	if err != nil {
		return fmt.Errorf("traces in Jaeger: %w", err)
	}
	step("arrived in the trace backend: %d of %d spans, with service.name, k8s.pod.name and k8s.namespace.name added by the agent;\n    the failed payment span's attribute with the API key was stored as %q\n    look one up: %s/api/v3/traces/%s", spans, nTraces*5, stored, jaeger.QueryURL(), traceIDs[nTraces/2])

	failedTrace := traceIDs[nTraces/2]
	step("errors: the app's Sentry SDK (DSN http://demo-local-key@%s/1) reports the failed payment, the app logs a Go panic in the same trace, and the failed span is in the trace backend", sentryAddr)
	if err := reportWithSDK(fmt.Sprintf("http://demo-local-key@%s/1", sentryAddr), failedTrace, "00f067aa0ba902b7"); err != nil {
		return err
	}
	if err := appendPanic(logDir, failedTrace); err != nil {
		return err
	}
	step("arrived at the Sentry project (the Java error logged earlier, with no request; then events from the SDK, from the log's Go panic and from the error span, all with the failed request's trace_id %s):", failedTrace)
	if err := printEvents(ctx, sentrySrv, 4); err != nil {
		return err
	}

	step("waiting for the database credentials to rotate (Vault caps the renewal near the 20 s max TTL) …")
	if err := waitFor(ctx, 45*time.Second, func() bool {
		return envValue(filepath.Join(secretDir, "db.env"), "DB_USER") != dbUser
	}); err != nil {
		return fmt.Errorf("no rotation: %w", err)
	}
	newUser := envValue(filepath.Join(secretDir, "db.env"), "DB_USER")
	_ = waitFor(ctx, 10*time.Second, func() bool { gone, _ := pg.RoleExists(ctx, dbUser); return !gone })
	oldExists, _ := pg.RoleExists(ctx, dbUser)
	newExists, _ := pg.RoleExists(ctx, newUser)
	step("rotated: %s -> %s; the app reloaded %d time(s); old PostgreSQL role still there: %t, new role there: %t",
		dbUser, newUser, app.reloads(), oldExists, newExists)

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
		for _, e := range audits {
			if strings.Contains(e.Line, `"kind":"rotate"`) || strings.Contains(e.Line, `"kind":"revoke"`) {
				fmt.Println("    " + e.Line)
			}
		}
	}
	step(`see it in Grafana/Explore or with logcli against %s:
    {service="demo-shop"}
    {service="demo-shop", level="error"}
    {service="demo-shop"} | trace_id="%s"
    sum by (level) (count_over_time({service="demo-shop"}[5m]))
    {service="demo-shop", source="outrider-audit"} | json | kind="rotate"`, loki.URL, traceID)
	if keep {
		step("running; press Ctrl-C to stop")
		<-ctx.Done()
	}
	return nil
}

func writeAppLogs(dir string, n int) (string, error) {
	path := filepath.Join(dir, "app.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	var errTrace string
	for i := 0; i < n; i++ {
		if i == n/2 {
			f.Close()
			if err := os.Rename(path, path+".1"); err != nil {
				return "", err
			}
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
				return "", err
			}
		}
		traceID := fmt.Sprintf("%016x%016x", 0xdeadbeef, i+1)
		level, msg := "info", fmt.Sprintf("GET /api/orders/%d 200", i)
		if i%50 == 7 {
			level, msg = "error", fmt.Sprintf("POST /api/orders/%d 500: payment declined", i)
			errTrace = traceID
		}
		fmt.Fprintf(f, `{"time":%q,"level":%q,"msg":%q,"trace_id":%q,"span_id":"%016x","request_id":"req-%06d"}`+"\n",
			time.Now().UTC().Format(time.RFC3339Nano), level, msg, traceID, i+1, i)
		if i == 200 {
			fmt.Fprintf(f, `{"time":%q,"level":"warn","msg":"calling payments with API key %s"}`+"\n", time.Now().UTC().Format(time.RFC3339Nano), demoAPIKey)
		}
		if i == 100 {
			fmt.Fprintf(f, "java.lang.IllegalStateException: inventory out of sync\n\tat com.shop.Inventory.reserve(Inventory.java:88)\n\tat com.shop.Orders.place(Orders.java:42)\nCaused by: java.sql.SQLException: connection reset\n\tat org.postgresql.Driver.exec(Driver.java:310)\n\t... 2 more\n")
		}
		if i%200 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errTrace, f.Close()
}

// appendPanic writes an error line carrying a Go panic and the failed request's trace
// ID, as a crashing handler's logger would.
func appendPanic(dir, traceID string) error {
	f, err := os.OpenFile(filepath.Join(dir, "app.log"), os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": "error",
		"msg": "handler panicked", "trace_id": traceID, "request_id": "req-demo-payment", "stack": goPanic})
	_, err = fmt.Fprintf(f, "%s\n", line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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

// demoApp stands in for the application: it writes its pid and counts SIGHUPs.
type demoApp struct {
	cmd  *exec.Cmd
	hups string
}

func startApp(dir string) (*demoApp, error) {
	a := &demoApp{hups: filepath.Join(dir, "app.hups")}
	a.cmd = exec.Command("sh", "-c", fmt.Sprintf(`echo $$ > %s/app.pid; trap 'echo reload >> %s' HUP; while :; do sleep 0.1; done`, dir, a.hups))
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *demoApp) reloads() int {
	b, _ := os.ReadFile(a.hups)
	return strings.Count(string(b), "reload")
}

func (a *demoApp) stop() {
	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
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
