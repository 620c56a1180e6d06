// Package runtimetest runs the small crashing programs under
// processors/stacktrace/testdata/runtimes in real language runtimes, so that tests read crash
// output that a runtime really printed rather than text written by hand.
//
// A missing runtime fails the test with the command that installs it; it is never a
// skip. Runtimes that cannot be installed from the machine's package sources (.NET,
// Dart) have captured output under testdata/runtimes/<lang>/ instead, with its origin
// in the README next to it.
package runtimetest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Before and After are the lines around every crash: programs print Before themselves;
// Output appends After, as the next line a restarted process (or the same one, still
// logging) writes.
const (
	Before = "INFO before crash"
	After  = "INFO after crash"
)

// Case is one crashing program.
type Case struct {
	// Lang is the runtime: go, java, python, node, ruby, php, dotnet, dart.
	Lang string
	// Name names the case within its runtime.
	Name string
	// File is the program (or, for a captured case, the output) under
	// testdata/runtimes/<Lang>/.
	File string
	// Captured marks output captured elsewhere rather than produced by running File.
	Captured bool
	// Root, when set, is the directory holding <Lang>/<File> in place of
	// testdata/runtimes, for programs a test keeps with itself.
	Root string
}

// Cases lists every program and captured output.
var Cases = []Case{
	{Lang: "go", Name: "panic", File: "panic/main.go"},
	{Lang: "go", Name: "nil_map", File: "nilmap/main.go"},
	{Lang: "go", Name: "deadlock", File: "deadlock/main.go"},
	{Lang: "java", Name: "uncaught", File: "Uncaught.java"},
	{Lang: "java", Name: "nested_exception", File: "Nested.java"},
	{Lang: "java", Name: "jul_logged", File: "Logged.java"},
	{Lang: "python", Name: "uncaught", File: "uncaught.py"},
	{Lang: "python", Name: "chained", File: "chained.py"},
	{Lang: "python", Name: "exception_group", File: "group.py"},
	{Lang: "python", Name: "logging_exception", File: "logged.py"},
	{Lang: "node", Name: "uncaught", File: "uncaught.js"},
	{Lang: "node", Name: "cause", File: "cause.js"},
	{Lang: "node", Name: "repeated_cause", File: "repeated.js"},
	{Lang: "ruby", Name: "uncaught_cause", File: "uncaught.rb"},
	{Lang: "ruby", Name: "no_method", File: "nomethod.rb"},
	{Lang: "php", Name: "uncaught_previous", File: "uncaught.php"},
	{Lang: "php", Name: "type_error", File: "typeerror.php"},
	{Lang: "dotnet", Name: "unhandled_inner", File: "unhandled_inner.txt", Captured: true},
	{Lang: "dotnet", Name: "aggregate", File: "aggregate.txt", Captured: true},
	{Lang: "dart", Name: "unhandled", File: "unhandled.txt", Captured: true},
	{Lang: "dart", Name: "unhandled_async", File: "unhandled_async.txt", Captured: true},
}

// install says how to get each runtime's command on a Debian machine.
var install = map[string]string{
	"go":     "install Go from https://go.dev/dl/",
	"java":   "apt-get install -y --no-install-recommends openjdk-17-jdk-headless",
	"python": "install Python 3.11 (apt-get install -y --no-install-recommends python3)",
	"node":   "install Node.js 20 from https://nodejs.org/",
	"ruby":   "apt-get update && apt-get install -y --no-install-recommends ruby",
	"php":    "apt-get update && apt-get install -y --no-install-recommends php-cli",
}

// Dir returns the absolute path of testdata/runtimes.
func Dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtimetest: cannot locate its own source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "runtimes")
}

// Output runs c (or reads its captured output) and returns what it wrote to stdout
// and stderr, interleaved as a container runtime would log them, followed by After.
// Absolute paths of the testdata directory are kept: they are part of what the
// runtime printed.
func Output(t testing.TB, c Case) string {
	t.Helper()
	root := c.Root
	if root == "" {
		root = Dir(t)
	}
	dir := filepath.Join(root, c.Lang)
	if c.Captured {
		data, err := os.ReadFile(filepath.Join(dir, c.File))
		if err != nil {
			t.Fatalf("captured %s output: %v", c.Lang, err)
		}
		return strings.TrimSuffix(string(data), "\n") + "\n" + After + "\n"
	}
	var args []string
	env := os.Environ()
	switch c.Lang {
	case "go":
		bin := filepath.Join(t.TempDir(), "crash")
		build := exec.Command(need(t, c.Lang, "go"), "build", "-o", bin, "main.go")
		build.Dir = filepath.Join(dir, filepath.Dir(c.File))
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", c.File, err, out)
		}
		args = []string{bin}
	case "java":
		args = []string{need(t, c.Lang, "java"), c.File}
	case "python":
		args = []string{need(t, c.Lang, "python3"), c.File}
		env = append(env, "PYTHONUNBUFFERED=1")
	case "node":
		args = []string{need(t, c.Lang, "node"), c.File}
	case "ruby":
		args = []string{need(t, c.Lang, "ruby"), c.File}
	case "php":
		// Errors logged to stderr, as the PHP CLI in a container writes them.
		args = []string{need(t, c.Lang, "php"), "-d", "display_errors=0", "-d", "log_errors=1", "-d", "error_log=", c.File}
	default:
		t.Fatalf("runtimetest: no way to run %s", c.Lang)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after 2m", c.Lang, c.File)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %s %s: %v", c.Lang, c.File, err)
	}
	text := out.String()
	if !strings.HasPrefix(text, Before+"\n") && !strings.Contains(text, Before) {
		t.Fatalf("%s %s did not print %q first; output:\n%s", c.Lang, c.File, Before, text)
	}
	if !strings.HasSuffix(text, After+"\n") {
		text = strings.TrimSuffix(text, "\n") + "\n" + After + "\n"
	}
	return text
}

// need returns the path of command, failing the test with the install command when
// the runtime is missing.
func need(t testing.TB, lang, command string) string {
	t.Helper()
	p, err := exec.LookPath(command)
	if err != nil {
		t.Fatalf("the %s runtime is needed (%s not on PATH): %s", lang, command, install[lang])
	}
	return p
}
