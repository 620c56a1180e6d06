package reload

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		in    string
		comm  string
		state byte
		ok    bool
	}{
		{"1234 (nginx) S 1 1234 1234 0 -1", "nginx", 'S', true},
		{"7 (a b) c) Z 1 7", "a b) c", 'Z', true},
		{"7 () R 1", "", 'R', true},
		{"7 (x)", "", 0, false},
		{"7 (x)S", "", 0, false},
		{"7 x) S", "", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err == nil) != tt.ok || got.comm != tt.comm || got.state != tt.state {
				t.Fatalf("parseStat(%q) = %+v, %v", tt.in, got, err)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	for _, s := range []string{"1 (init) S 0", "7 (a b) c) Z 1", "(", ")", "1 () R", "1 (x) "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseStat(b)
		if err == nil && len(info.comm) >= len(b) {
			t.Fatalf("comm %q as long as the input", info.comm)
		}
	})
}

func TestParsePID(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1234\n", 1234, true},
		{"  42  ", 42, true},
		{"42\nsomething else", 42, true},
		{"", 0, false},
		{"\n42", 0, false},
		{"0", 0, false},
		{"-5", 0, false},
		{"12a", 0, false},
		{"99999999999", 0, false},
		{strings.Repeat("x", 100), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePID([]byte(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parsePID(%q) = %d, %v", tt.in, got, err)
			}
			if err != nil && len(err.Error()) > 80 {
				t.Errorf("error not bounded: %v", err)
			}
		})
	}
}

func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"1", "1234\n", " 7 ", "", "-1", "2147483648", "1\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := parsePID(b)
		if err == nil && pid <= 0 {
			t.Fatalf("parsePID(%q) = %d", b, pid)
		}
	})
}

func signalConfig(process, pidFile string) Config {
	return Config{Method: MethodSignal, Process: process, PIDFile: pidFile, MinWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond}
}

func TestSignalByPIDFile(t *testing.T) {
	c := startChild(t, uniqueName("rlp"), "")
	h := newHarness()
	r := h.newReloader(t, signalConfig("", writePIDFile(t, c.pid)))
	out, err := r.ReloadNow(context.Background())
	if err != nil || !out.OK || out.Targets != 1 || out.Method != MethodSignal {
		t.Fatalf("ReloadNow = %+v, %v", out, err)
	}
	if n := c.hups(t); n != 1 {
		t.Errorf("the app got %d SIGHUPs, want 1", n)
	}
	mustContain(t, "target", out.Target, "SIGHUP to pid_file")
}

func TestSignalByPIDFileCheckedByName(t *testing.T) {
	name := uniqueName("rlk")
	c := startChild(t, name, "")
	pf := writePIDFile(t, c.pid)
	cfg := signalConfig(name, pf)
	cfg.Signal = "SIGUSR1"
	r := newHarness().newReloader(t, cfg)
	if out, err := r.ReloadNow(context.Background()); err != nil || out.Targets != 1 {
		t.Fatalf("ReloadNow = %+v, %v", out, err)
	}
	eventually(t, 10*time.Second, "the app to get SIGUSR1", func() bool { return c.count("USR1") == 1 })

	r = newHarness().newReloader(t, signalConfig(uniqueName("rlw"), pf))
	out, err := r.ReloadNow(context.Background())
	if err == nil || out.OK {
		t.Fatalf("a pid file naming a process of another name was signalled: %+v", out)
	}
	mustContain(t, "error", err.Error(), "not running or not named")
	if n := c.hups(t); n != 0 {
		t.Errorf("the app got %d SIGHUPs", n)
	}
}

func TestSignalByName(t *testing.T) {
	t.Run("comm", func(t *testing.T) {
		name := uniqueName("rlc")
		c := startChild(t, name, "something-else")
		r := newHarness().newReloader(t, signalConfig(name, ""))
		out, err := r.ReloadNow(context.Background())
		if err != nil || out.Targets != 1 {
			t.Fatalf("ReloadNow = %+v, %v", out, err)
		}
		if n := c.hups(t); n != 1 {
			t.Errorf("the app got %d SIGHUPs, want 1", n)
		}
	})
	t.Run("argv0 of a long name, several matches", func(t *testing.T) {
		name := uniqueName("reload-test-long-") // longer than comm keeps
		c1 := startChild(t, name, "")
		c2 := startChild(t, name, "")
		other := startChild(t, uniqueName("rlo"), "")
		r := newHarness().newReloader(t, signalConfig(name, ""))
		out, err := r.ReloadNow(context.Background())
		if err != nil || out.Targets != 2 {
			t.Fatalf("ReloadNow = %+v, %v; want 2 targets", out, err)
		}
		for i, c := range []*child{c1, c2} {
			if n := c.hups(t); n != 1 {
				t.Errorf("app %d got %d SIGHUPs, want 1", i, n)
			}
		}
		if n := other.hups(t); n != 0 {
			t.Errorf("an app with another name got %d SIGHUPs", n)
		}
	})
}

func TestSignalSkipsZombies(t *testing.T) {
	name := uniqueName("rlz")
	c := startChild(t, name, "")
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped until the cleanup's Wait: a zombie.
	eventually(t, 10*time.Second, "the killed app to become a zombie", func() bool { return processDead(c.pid) })
	r := newHarness().newReloader(t, signalConfig(name, ""))
	out, err := r.ReloadNow(context.Background())
	if err == nil || out.OK || out.Targets != 0 {
		t.Fatalf("ReloadNow = %+v, %v; want a failure", out, err)
	}
	mustContain(t, "error", err.Error(), "1 exited (zombie)")

	pf := writePIDFile(t, c.pid)
	r = newHarness().newReloader(t, signalConfig("", pf))
	if _, err := r.ReloadNow(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("signalling a zombie by pid file: %v", err)
	}
}

func TestSignalRefusals(t *testing.T) {
	selfComm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	// A process that has exited and been reaped.
	gone := exec.Command("/bin/true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	garbage := dir + "/garbage.pid"
	if err := os.WriteFile(garbage, []byte("nginx\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ourselves by name", signalConfig(strings.TrimSpace(string(selfComm)), ""), "outrider's own process is never signalled"},
		{"ourselves by pid file", signalConfig("", writePIDFile(t, os.Getpid())), "names outrider's own process"},
		{"pid 1 by pid file", signalConfig("", writePIDFile(t, 1)), "allow_pid1: true"},
		{"no such process", signalConfig(uniqueName("rln"), ""), "shareProcessNamespace: true"},
		{"missing pid file", signalConfig("", dir+"/missing.pid"), "cannot read pid_file"},
		{"garbage pid file", signalConfig("", garbage), "holds \"nginx\", not a process id"},
		{"stale pid file", signalConfig("", writePIDFile(t, gone.Process.Pid)), "stale pid file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness()
			r := h.newReloader(t, tt.cfg)
			out, err := r.ReloadNow(context.Background())
			if err == nil || out.OK {
				t.Fatalf("ReloadNow succeeded: %+v", out)
			}
			mustContain(t, "error", err.Error(), tt.want)
			if h.reloads(t, MethodSignal, ResultError) != 1 {
				t.Errorf("failure not counted")
			}
			if ev := h.audit.list(); len(ev) != 1 || ev[0].Outcome != "error" || ev[0].Error != err.Error() {
				t.Errorf("audit events %+v", ev)
			}
		})
	}
}

func TestSignalPID1WhenAllowed(t *testing.T) {
	// Only the lookup is checked: PID 1 is never actually signalled by a test.
	fs := procFS{dir: "/proc", self: os.Getpid()}
	info, err := fs.stat(1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fs.find(info.comm, false)
	if err != nil || !res.pid1 || containsPID(res.pids, 1) {
		t.Fatalf("find(%q) without allow_pid1 = %+v, %v", info.comm, res, err)
	}
	res, err = fs.find(info.comm, true)
	if err != nil || !containsPID(res.pids, 1) {
		t.Fatalf("find(%q) with allow_pid1 = %+v, %v", info.comm, res, err)
	}
}

func containsPID(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

func TestSignalRecycledPID(t *testing.T) {
	// The scan found pid under one name; by the time of the signal the pid belongs to
	// another program: it must not be signalled.
	c := startChild(t, uniqueName("rlr"), "")
	fs := procFS{dir: "/proc", self: os.Getpid()}
	if err := fs.signal(c.pid, syscall.SIGHUP, "some-other-name-"+strconv.Itoa(c.pid)); err != errGone {
		t.Fatalf("signal with a changed name = %v, want errGone", err)
	}
	if n := c.hups(t); n != 0 {
		t.Errorf("a process whose name changed got %d SIGHUPs", n)
	}
}
