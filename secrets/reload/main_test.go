package reload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/secrets/audit"
)

// childEnv, when set, makes the test binary a test application: it appends the name
// of every SIGHUP and SIGUSR1 it receives, one per line, to the file named by the
// variable.
const childEnv = "OUTRIDER_RELOAD_TEST_CHILD"

func TestMain(m *testing.M) {
	if out := os.Getenv(childEnv); out != "" {
		runChild(out)
		return
	}
	goleak.VerifyTestMain(m)
}

// runChild is the test application. It exits after a minute in case the test that
// started it died without killing it.
func runChild(out string) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	appendLine := func(s string) {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			os.Exit(3)
		}
		_, _ = f.WriteString(s + "\n")
		_ = f.Close()
	}
	appendLine("ready")
	deadline := time.After(time.Minute)
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				appendLine("HUP")
			} else {
				appendLine("USR1")
			}
		case <-deadline:
			os.Exit(0)
		}
	}
}

// child is a running test application.
type child struct {
	cmd *exec.Cmd
	out string
	pid int
}

// uniqueName returns a process name no other process on the machine has.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// startChild starts the test application as a program called name (a symlink to the
// test binary, so that /proc/PID/comm is name), with argv[0] set to argv0 when not
// empty, and waits until it handles signals.
func startChild(t *testing.T, name, argv0 string) *child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, name)
	if _, err := os.Lstat(bin); err != nil {
		if err := os.Symlink(self, bin); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "signals-"+uniqueName(""))
	cmd := exec.Command(bin)
	if argv0 != "" {
		cmd.Args[0] = argv0
	}
	cmd.Env = append(os.Environ(), childEnv+"="+out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: out, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	eventually(t, 10*time.Second, "the test application to start", func() bool { return c.count("ready") == 1 })
	return c
}

// count returns how many lines of the child's signal file are s.
func (c *child) count(s string) int {
	b, _ := os.ReadFile(c.out)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == s {
			n++
		}
	}
	return n
}

// hups returns how many SIGHUPs the child has handled, after making sure it handled
// every signal sent before: it sends SIGUSR1 and waits for it to be logged.
func (c *child) hups(t *testing.T) int {
	t.Helper()
	before := c.count("USR1")
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the test application to log SIGUSR1", func() bool { return c.count("USR1") > before })
	return c.count("HUP")
}

// writePIDFile writes pid to a new pid file and returns its path.
func writePIDFile(t *testing.T, pid int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(p, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventually polls cond until it holds, failing the test after deadline (a deadline
// for a slow machine, not a timing assertion).
func eventually(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processDead reports whether pid has exited (gone, or a zombie nobody reaped).
func processDead(pid int) bool {
	info, err := procFS{dir: "/proc"}.stat(pid)
	return err != nil || info.dead()
}

// auditLog collects audit events.
type auditLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditLog) Record(e audit.Event) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
}

func (a *auditLog) list() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

// harness builds Reloaders with recorded audit events, metrics and logs.
type harness struct {
	audit   *auditLog
	metrics *Metrics
	logs    *syncBuffer
}

func newHarness() *harness {
	return &harness{audit: &auditLog{}, metrics: NewMetrics(prometheus.NewRegistry()), logs: &syncBuffer{}}
}

func (h *harness) settings(name string) Settings {
	return Settings{
		Logger:  slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Audit:   h.audit,
		Metrics: h.metrics,
		Name:    name,
	}
}

func (h *harness) newReloader(t *testing.T, cfg Config) *Reloader {
	t.Helper()
	r, err := New(cfg, h.settings("/vault/secrets/app.env"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// reloads returns outrider_secrets_reloads_total{method, result}.
func (h *harness) reloads(t *testing.T, method, result string) int {
	t.Helper()
	var d dto.Metric
	if err := h.metrics.reloads.WithLabelValues(method, result).Write(&d); err != nil {
		t.Fatal(err)
	}
	return int(d.GetCounter().GetValue())
}

// runReloader runs r.Run until the test ends and checks that it returns nil.
func runReloader(t *testing.T, r *Reloader) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return cancel
}

// waitCtx returns a context with a generous deadline for Wait.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func intp(n int) *int { return &n }

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s %q lacks %q", what, s, w)
		}
	}
}

func mustNotContain(t *testing.T, what, s string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(s, b) {
			t.Errorf("%s reveals %q: %s", what, b, s)
		}
	}
}
