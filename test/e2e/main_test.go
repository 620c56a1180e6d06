// Package e2e runs the outrider binary against real backends on 127.0.0.1. A missing
// backend is a failure that says how to build it, never a skip.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/jaegertest"
	"github.com/outrider-dev/outrider/internal/lokitest"
)

// outriderBin is the agent binary built once for the package.
var outriderBin string

func TestMain(m *testing.M) {
	// The stand-in apps are shells that trap SIGHUP, and a shell cannot trap a
	// signal that was ignored when it started (as under nohup). Handled here, it
	// starts at its default action in every process this test starts.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	dir, err := os.MkdirTemp("", "outrider-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outriderBin = filepath.Join(dir, "outrider")
	build := exec.Command("go", "build", "-o", outriderBin, "github.com/outrider-dev/outrider/cmd/outrider")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build outrider:", err)
		os.Exit(1)
	}
	code := m.Run()
	jaegertest.StopShared(code == 0)
	if shared.loki != nil {
		shared.loki.Stop()
		os.RemoveAll(shared.loki.Dir)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// shared is one Loki for the tests that never stop it; each test uses its own service
// label.
var shared struct {
	once sync.Once
	loki *lokitest.Loki
	err  error
}

func sharedLoki(t *testing.T) *lokitest.Loki {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "outrider-e2e-loki-")
		if err != nil {
			shared.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.loki, shared.err = lokitest.Start(ctx, dir)
	})
	if shared.err != nil {
		t.Fatalf("real Loki is required: %v", shared.err)
	}
	return shared.loki
}

// startLoki starts a real Loki of the test's own, stopped at cleanup: for tests that
// stop and restart it.
func startLoki(t *testing.T) *lokitest.Loki {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lokitest.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("real Loki is required: %v", err)
	}
	t.Cleanup(l.Stop)
	return l
}

// agentProc is one run of the outrider binary.
type agentProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

func startAgent(t *testing.T, configPath string, extraArgs ...string) *agentProc {
	t.Helper()
	logPath := filepath.Join(filepath.Dir(configPath), fmt.Sprintf("agent-%d.log", time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(outriderBin, append([]string{"agent", "--config", configPath}, extraArgs...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

func (p *agentProc) dumpLog() {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	p.t.Logf("agent log %s (last %d lines):\n%s", p.log, len(lines), strings.Join(lines, "\n"))
}

// kill sends SIGKILL and waits for the process to go.
func (p *agentProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns the exit error after the agent drained.
func (p *agentProc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.t.Errorf("agent did not stop within %s of SIGTERM", timeout)
		p.kill()
		return p.err
	}
}

// appender appends lines to a file, one write per call.
type appender struct {
	t *testing.T
	f *os.File
	w *bufio.Writer
}

func openAppend(t *testing.T, path string) *appender {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	a := &appender{t: t, f: f, w: bufio.NewWriterSize(f, 64<<10)}
	t.Cleanup(func() { a.close() })
	return a
}

func (a *appender) line(format string, args ...any) {
	fmt.Fprintf(a.w, format, args...)
	a.w.WriteByte('\n')
}

func (a *appender) flush() {
	if err := a.w.Flush(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *appender) close() {
	if a.f == nil {
		return
	}
	_ = a.w.Flush()
	_ = a.f.Close()
	a.f = nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// countSeq counts how often each "seq=N" (or "seq":N) appears in entries, and reports
// missing and duplicated sequence numbers in [0, n).
func countSeq(t *testing.T, lines []string, n int) (missing, dups int) {
	t.Helper()
	seen := make([]int, n)
	for _, l := range lines {
		var seq int
		i := strings.Index(l, "seq=")
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscanf(l[i+4:], "%d", &seq); err != nil || seq < 0 || seq >= n {
			t.Errorf("entry with bad seq: %q", l)
			continue
		}
		seen[seq]++
	}
	for _, c := range seen {
		switch {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	return missing, dups
}
