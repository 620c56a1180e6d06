package backendtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a backend server run as a child process of the tests: its output goes
// to a log file, it is killed when the test process dies, and Stop ends it.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
}

// StartProcess starts bin with args, its output appended to logPath, and waits until
// ready reports true (polled every 100 ms) or timeout passes. name is the backend's
// name in errors, which point at the log.
func StartProcess(ctx context.Context, name, logPath string, ready func() bool, timeout time.Duration, bin string, args ...string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, logPath: logPath, cmd: cmd, logFile: logf, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.logFile.Close()
			return nil, fmt.Errorf("%s exited while starting; see %s", name, logPath)
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if ready() {
			return p, nil
		}
	}
	p.Stop()
	return nil, fmt.Errorf("%s not ready after %s; see %s", name, timeout, logPath)
}

// Stop ends the process (SIGTERM, then SIGKILL after 20 s) and waits for it. Safe on
// nil and more than once.
func (p *Process) Stop() {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
	p.logFile.Close()
}

// ReadyURL returns a readiness check that GETs url and wants 200.
func ReadyURL(url string) func() bool {
	return func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}
