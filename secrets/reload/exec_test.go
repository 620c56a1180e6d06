package reload

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func execConfig(timeout time.Duration, script string) Config {
	return Config{Method: MethodExec, Command: []string{"/bin/sh", "-c", script}, Timeout: timeout,
		MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}
}

// readPID waits for a pid written to path by a command and returns it.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "the command to write "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func TestExecReload(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "hvs.must-not-leak")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	h := newHarness()
	r := h.newReloader(t, execConfig(5*time.Second,
		`printf '%s|%s|%s' "$OUTRIDER_RELOAD_NAME" "$OUTRIDER_RELOAD_REASONS" "${VAULT_TOKEN:-unset}" > `+out))
	r.Notify("/vault/secrets/a")
	r.Notify("/vault/secrets/b")
	r.Notify("/vault/secrets/a")
	got, err := r.ReloadNow(context.Background())
	if err != nil || !got.OK || got.Method != MethodExec || got.Targets != 1 {
		t.Fatalf("ReloadNow = %+v, %v", got, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/vault/secrets/app.env|/vault/secrets/a\n/vault/secrets/b|unset"; string(b) != want {
		t.Errorf("the command saw %q, want %q", b, want)
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	h := newHarness()
	r := h.newReloader(t, execConfig(300*time.Millisecond, `sleep 30 & echo $! > `+pidFile+`; wait`))
	out, err := r.ReloadNow(context.Background())
	if err == nil || out.OK {
		t.Fatalf("ReloadNow = %+v, want a timeout", out)
	}
	mustContain(t, "error", err.Error(), "timed out after 300ms", "killed with its process group")
	sleeper := readPID(t, pidFile)
	eventually(t, 10*time.Second, "the command's child to be killed", func() bool { return processDead(sleeper) })
	if out.Duration > 5*time.Second {
		t.Errorf("a 300ms timeout took %s", out.Duration)
	}
}

func TestExecLeftoversKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	r := newHarness().newReloader(t, execConfig(5*time.Second, `sleep 30 & echo $! > `+pidFile))
	if out, err := r.ReloadNow(context.Background()); err != nil || !out.OK {
		t.Fatalf("ReloadNow = %+v, %v", out, err)
	}
	sleeper := readPID(t, pidFile)
	eventually(t, 10*time.Second, "the process left behind to be killed", func() bool { return processDead(sleeper) })
}

func TestExecFailureQuotesStderrTail(t *testing.T) {
	h := newHarness()
	r := h.newReloader(t, execConfig(10*time.Second,
		`echo first-line >&2; i=0; while [ $i -lt 2000 ]; do echo "line$i" >&2; i=$((i+1)); done; exit 3`))
	out, err := r.ReloadNow(context.Background())
	if err == nil || out.OK {
		t.Fatalf("ReloadNow = %+v, want a failure", out)
	}
	msg := err.Error()
	mustContain(t, "error", msg, "exit status 3", "line1999", "stderr (last 1024 bytes): …")
	mustNotContain(t, "error", msg, "first-line")
	if len(msg) > maxStderrTail+300 {
		t.Errorf("error of %d bytes is not bounded", len(msg))
	}
	ev := h.audit.list()
	if len(ev) != 1 || ev[0].Error != msg || ev[0].Kind != "reload" || ev[0].Outcome != "error" {
		t.Errorf("audit %+v", ev)
	}
	mustContain(t, "audit detail", ev[0].Detail, "exec: command sh")
}

func TestExecCannotStart(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "reload.sh")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newHarness().newReloader(t, Config{Method: MethodExec, Command: []string{prog}})
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReloadNow(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Fatalf("ReloadNow of a removed program: %v", err)
	}
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, ""},
		{"short", []string{"ab", "cd"}, "abcd"},
		{"exactly max", []string{"0123456789"}, "0123456789"},
		{"overflow across writes", []string{"0123456", "789ab"}, "…23456789ab"},
		{"one big write", []string{"0123456789abcdef"}, "…6789abcdef"},
		{"big write after small", []string{"xy", "0123456789"}, "…0123456789"},
		{"control characters", []string{"a\tb\x01c\n"}, "a bc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &tailBuffer{max: 10}
			for _, w := range tt.writes {
				if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := tb.String(); got != tt.want {
				t.Errorf("tail = %q, want %q", got, tt.want)
			}
		})
	}
}
