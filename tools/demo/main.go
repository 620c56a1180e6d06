// Command demo runs outrider's main job locally against real backends: it starts a
// real Loki on 127.0.0.1, writes an application log (JSON lines with correlation IDs,
// errors, a Java stack trace and a rotation), runs the outrider agent on it, and prints
// what arrived in Loki with the LogQL to see it. `make demo` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/internal/lokitest"
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

	step("starting a real Loki %s on 127.0.0.1 (takes ~20 s)", lokitest.Version)
	loki, err := lokitest.Start(ctx, filepath.Join(dir, "loki"))
	if err != nil {
		return err
	}
	defer loki.Stop()
	step("Loki ready at %s", loki.URL)

	logDir := filepath.Join(dir, "app-logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "outrider.yaml")
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: demo-shop, namespace: demo, pod: demo-shop-0, container: app}
server: {listen: "127.0.0.1:0"}
log: {level: warn, format: text}
logs:
  sources:
    - name: app
      path: %[2]s/*.log
      parser: {format: auto}
exporters:
  loki:
    url: %[3]s
    batch: {max_wait: 200ms}
`, dir, logDir, loki.URL)
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

	step("demo app writes %d JSON lines, an error with a Java stack trace, and rotates its log", n)
	traceID, err := writeAppLogs(logDir, n)
	if err != nil {
		return err
	}
	want := n + 1
	entries, err := loki.WaitCount(ctx, `{service="demo-shop"}`, start, want, 60*time.Second)
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
	step(`see it in Grafana/Explore or with logcli against %s:
    {service="demo-shop"}
    {service="demo-shop", level="error"}
    {service="demo-shop"} | trace_id="%s"
    sum by (level) (count_over_time({service="demo-shop"}[5m]))`, loki.URL, traceID)
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
		if i == 100 {
			fmt.Fprintf(f, "java.lang.IllegalStateException: inventory out of sync\n\tat com.shop.Inventory.reserve(Inventory.java:88)\n\tat com.shop.Orders.place(Orders.java:42)\nCaused by: java.sql.SQLException: connection reset\n\tat org.postgresql.Driver.exec(Driver.java:310)\n\t... 2 more\n")
		}
		if i%200 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errTrace, f.Close()
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
