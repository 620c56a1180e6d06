package measure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childArg makes the test binary act as a system under test (see childMain).
const childArg = "measure-test-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == childArg {
		os.Exit(childMain(os.Args[2]))
	}
	goleak.VerifyTestMain(m)
}

// childMain behaves as mode says:
//
//	term         allocate some memory, then exit 0 on SIGTERM
//	ignore-term  ignore SIGTERM and sleep
//	exit         print 40 numbered lines and exit 3
func childMain(mode string) int {
	switch mode {
	case "term":
		terms := make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
		ballast := bytes.Repeat([]byte{1}, 8<<20)
		fmt.Println("ready", len(ballast))
		select {
		case <-terms:
			return 0
		case <-time.After(time.Minute):
			return 4
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 0
	case "exit":
		for i := 1; i <= 40; i++ {
			fmt.Printf("line %d\n", i)
		}
		return 3
	}
	return 2
}

func startChild(t *testing.T, mode string, logs io.Writer) *Process {
	t.Helper()
	p, err := Start(slog.New(slog.NewTextHandler(logs, nil)), "child", os.Args[0], []string{childArg, mode}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

// waitOutput waits until the process's output holds want.
func waitOutput(t *testing.T, p *Process, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(p.Output())
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("output %q lacks %q", data, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProcessStopsOnSIGTERM(t *testing.T) {
	var logs bytes.Buffer
	p := startChild(t, "term", &logs)
	if p.Started().IsZero() || p.Started().After(time.Now()) {
		t.Errorf("started %v", p.Started())
	}
	if filepath.Base(p.Output()) != "child.log" {
		t.Errorf("output %s, want child.log in the directory", p.Output())
	}
	waitOutput(t, p, "ready")
	if p.Exited() {
		t.Fatal("exited while it should run")
	}
	u, err := p.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakRSS < 8<<20 || u.CPU < 0 {
		t.Errorf("usage while running %+v, want a peak RSS of at least the 8 MiB ballast", u)
	}
	if _, _, ok := p.ExitUsage(); ok {
		t.Error("ExitUsage ok while the process runs")
	}
	p.Stop(20 * time.Second)
	if !p.Exited() || p.Err() != nil {
		t.Fatalf("after Stop: exited %v, err %v", p.Exited(), p.Err())
	}
	cpu, peak, ok := p.ExitUsage()
	if !ok || peak < 8<<20 || cpu < 0 {
		t.Errorf("ExitUsage = %v, %d, %v", cpu, peak, ok)
	}
	if _, err := p.Usage(); err == nil {
		t.Error("Usage of a reaped process succeeded")
	}
	p.Stop(time.Second)
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings for a clean stop:\n%s", logs.String())
	}
}

func TestProcessKilledWhenIgnoringSIGTERM(t *testing.T) {
	var logs bytes.Buffer
	p := startChild(t, "ignore-term", &logs)
	waitOutput(t, p, "ready")
	p.Stop(200 * time.Millisecond)
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("err %v, want killed by SIGKILL", p.Err())
	}
	if !strings.Contains(logs.String(), "process ignored SIGTERM; killing it") {
		t.Errorf("no warning about the kill:\n%s", logs.String())
	}
}

func TestProcessExitingByItself(t *testing.T) {
	var logs bytes.Buffer
	p := startChild(t, "exit", &logs)
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the process did not exit")
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Errorf("err %v, want exit status 3", p.Err())
	}
	if _, _, ok := p.ExitUsage(); !ok {
		t.Error("no rusage after exit")
	}
	began := time.Now()
	p.Stop(time.Minute)
	if time.Since(began) > 10*time.Second {
		t.Error("Stop waited for a process that had exited")
	}
	var out bytes.Buffer
	p.ShowFailure(&out, "it gave up")
	text := out.String()
	if !strings.HasPrefix(text, "--- last 30 lines of child output ("+p.Output()+") ---\nline 11\n") ||
		!strings.HasSuffix(text, "line 40\n--- end of child output ---\n") {
		t.Errorf("tail:\n%s", text)
	}
	if !strings.Contains(logs.String(), `problem="it gave up"`) {
		t.Errorf("failure not logged:\n%s", logs.String())
	}
}

func TestStartFails(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	tests := []struct {
		name, bin, dir, wantErr string
	}{
		{name: "no binary", bin: filepath.Join(dir, "nope"), dir: dir, wantErr: "start sut ("},
		{name: "no directory", bin: os.Args[0], dir: filepath.Join(dir, "missing"), wantErr: "create sut output file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(logger, "sut", tt.bin, nil, tt.dir)
			if err == nil {
				p.Stop(time.Second)
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestPrintTail(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{name: "empty", content: "", want: ""},
		{name: "fewer lines than asked", content: "a\nb\n", want: "--- last 2 lines of x output (PATH) ---\na\nb\n--- end of x output ---\n"},
		{name: "last lines", content: "a\nb\nc\nd", want: "--- last 3 lines of x output (PATH) ---\nb\nc\nd\n--- end of x output ---\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			PrintTail(&b, "x", path, 3)
			if want := strings.ReplaceAll(tt.want, "PATH", path); b.String() != want {
				t.Errorf("got %q, want %q", b.String(), want)
			}
		})
	}
	var b bytes.Buffer
	PrintTail(&b, "x", filepath.Join(dir, "missing"), 3)
	if b.Len() != 0 {
		t.Errorf("printed %q for a missing file", b.String())
	}
}
