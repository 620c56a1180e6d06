package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// maxStderrTail is how much of the end of a failed command's stderr is quoted in
// the error.
const maxStderrTail = 1024

// pipeGrace is how long the stderr reader may run on after the command's process
// group was killed: only a process that left the group (setsid) can hold the pipe
// that long, and its output is not waited for.
const pipeGrace = time.Second

// execNotifier runs a command.
type execNotifier struct {
	argv    []string
	name    string // the Reloader's name, for OUTRIDER_RELOAD_NAME
	timeout time.Duration
}

func (e *execNotifier) method() string { return MethodExec }

func (e *execNotifier) target() string { return "command " + filepath.Base(e.argv[0]) }

// reload runs the command in a new process group and waits for it. On timeout or
// cancellation the whole group is killed; when the command exits, whatever it left
// running in its group is killed too, so nothing outlives the reload.
func (e *execNotifier) reload(ctx context.Context, reasons []string) (int, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("reload command: %w", err)
	}
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Env = commandEnv(os.Environ(), e.name, reasons)
	cmd.Stderr = pw // an *os.File: passed to the child as is, no copying goroutine in exec
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }

	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return 0, fmt.Errorf("reload command %s cannot start: %w; check command[0] and that it exists in outrider's container", e.argv[0], err)
	}
	pw.Close()
	tail := &tailBuffer{max: maxStderrTail}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = tail.ReadFrom(pr)
	}()

	waitErr := cmd.Wait()
	_ = killGroup(cmd.Process.Pid)
	select {
	case <-readDone:
	case <-time.After(pipeGrace):
	}
	pr.Close() // ends the reader if a process outside the group still holds the pipe
	<-readDone

	switch {
	case waitErr == nil:
		return 1, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return 1, fmt.Errorf("reload command %s timed out after %s and was killed with its process group; make it finish sooner or raise timeout", e.argv[0], e.timeout)
	case ctx.Err() != nil:
		return 1, fmt.Errorf("reload command %s was killed with its process group: %w", e.argv[0], ctx.Err())
	}
	msg := fmt.Sprintf("reload command %s failed: %v", e.argv[0], waitErr)
	if s := tail.String(); s != "" {
		msg += fmt.Sprintf("; stderr (last %d bytes): %s", maxStderrTail, s)
	}
	return 1, errors.New(msg)
}

// killGroup sends SIGKILL to the process group led by pid. A group that is already
// empty is not an error.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// commandEnv is the environment of a reload command: outrider's, without the Vault
// credentials and settings (VAULT_*), plus what changed.
func commandEnv(base []string, name string, reasons []string) []string {
	env := make([]string, 0, len(base)+2)
	for _, kv := range base {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "OUTRIDER_RELOAD_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"OUTRIDER_RELOAD_NAME="+name,
		"OUTRIDER_RELOAD_REASONS="+strings.Join(reasons, "\n"))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	buf  []byte
	lost bool
}

// ReadFrom reads r to its end, keeping the tail.
func (t *tailBuffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	chunk := make([]byte, 4096)
	for {
		n, err := r.Read(chunk)
		total += int64(n)
		_, _ = t.Write(chunk[:n])
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Write keeps the last max bytes of everything written.
func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.lost = t.lost || len(p) > t.max || len(t.buf) > 0
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.lost = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the tail as one printable line, with "…" in front when earlier
// output was dropped.
func (t *tailBuffer) String() string {
	s := snippet(t.buf, t.max)
	if t.lost && s != "" {
		s = "…" + s
	}
	return s
}
