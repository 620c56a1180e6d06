package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/agent"
	"github.com/outrider-dev/outrider/config"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValidate: every problem at once — listeners against each other (server.listen
// included), files named by the configuration — warnings that do not fail, --offline,
// and "-" for standard input.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	tmpl := writeFile(t, dir, "t.tmpl", "x={{ .Data.x }}")
	// A data_dir below a regular file cannot be created, even by root.
	blocker := writeFile(t, dir, "blocker", "")
	base := `data_dir: DATA
server: {listen: "127.0.0.1:4318"}
receivers: {otlp: {http: {listen: "0.0.0.0:4318"}, grpc: {listen: "localhost:4317"}}, sentry: {listen: "127.0.0.1:4317", public_key: k}}
exporters: {loki: {url: "http://127.0.0.1:3100"}, sentry: {dsn: "http://k@127.0.0.1:9/1"}}
secrets:
  vault: {address: "http://127.0.0.1:8200", auth: {method: token, token: t}}
  files: [{path: /tmp/s/db.env, template_file: TEMPLATE}]
`
	clean := `data_dir: DATA
server: {listen: "127.0.0.1:8686"}
receivers: {otlp: {http: {listen: "127.0.0.1:0"}, grpc: {listen: "127.0.0.1:0"}}}
exporters: {loki: {url: "http://127.0.0.1:3100"}, otlp: {endpoint: "http://127.0.0.1:4317"}}
`
	r := func(s, data, template string) string {
		return strings.NewReplacer("DATA", data, "TEMPLATE", template).Replace(s)
	}
	for _, tc := range []struct {
		name   string
		yaml   string
		args   []string
		stdin  bool
		code   int
		stderr []string
		not    []string
		// overlay, when set, is written to a file passed with --overlay.
		overlay string
	}{
		{name: "every problem at once", yaml: r(base, dir, "/nonexistent/t.tmpl"), code: 2, stderr: []string{
			"3 problems",
			"receivers.otlp.http.listen: 0.0.0.0:4318 takes the same port as server.listen (127.0.0.1:4318)",
			"receivers.sentry.listen: 127.0.0.1:4317 takes the same port as receivers.otlp.grpc.listen (localhost:4317)",
			`secrets.files[0].template_file: cannot read "/nonexistent/t.tmpl": no such file or directory`,
			"warning: receivers.otlp: traces have nowhere to go",
		}},
		{name: "every phase at once", yaml: "bogus: 1\n" + strings.Replace(r(base, "relative/dir", "/nonexistent/t.tmpl"), "shutdown_timeout", "x", 1), code: 2, stderr: []string{
			"bogus: unknown key",
			`data_dir: must be an absolute path, got "relative/dir"`,
			"receivers.otlp.http.listen: 0.0.0.0:4318 takes the same port as server.listen",
			"secrets.files[0].template_file: cannot read",
		}},
		{name: "too large on stdin", yaml: "#" + strings.Repeat("x", config.MaxBytes) + "\n", stdin: true, code: 2, stderr: []string{"more than the limit"}},
		{name: "offline skips host checks", yaml: r(base, dir, "/nonexistent/t.tmpl"), args: []string{"--offline"}, code: 2, stderr: []string{"2 problems"}, not: []string{"template_file"}},
		{name: "clean", yaml: r(clean, dir, tmpl), code: 0},
		{name: "stdin", yaml: r(clean, dir, tmpl), stdin: true, code: 0},
		{name: "stdin invalid", yaml: "logz: 1\n", stdin: true, code: 2, stderr: []string{"<stdin>", "logz: unknown key"}},
		{name: "data_dir not writable warns", yaml: r(clean, filepath.Join(blocker, "data"), tmpl), code: 0, stderr: []string{"warning: data_dir: " + blocker + " is not a directory"}},
		{name: "data_dir offline", yaml: r(clean, filepath.Join(blocker, "data"), tmpl), args: []string{"--offline"}, code: 0, not: []string{"warning"}},
		{name: "overlay merged", yaml: r(clean, dir, tmpl), overlay: "exporters: {loki: {batch: {max_wait: 2s}}}\n", code: 0},
		{name: "overlay with a wrong key", yaml: r(clean, dir, tmpl), overlay: "exporters: {lokki: {}}\n", code: 2, stderr: []string{"overlay.yaml", "lokki"}},
		{name: "overlay collides on this host", yaml: r(clean, dir, tmpl), overlay: "receivers: {otlp: {grpc: {listen: \"127.0.0.1:8686\"}}}\n", code: 2,
			stderr: []string{"receivers.otlp.grpc.listen: 127.0.0.1:8686 takes the same port as server.listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdin *bytes.Reader
			args := []string{"--config"}
			if tc.stdin {
				args = append(args, "-")
				stdin = bytes.NewReader([]byte(tc.yaml))
			} else {
				args = append(args, writeFile(t, t.TempDir(), "c.yaml", tc.yaml))
				stdin = bytes.NewReader(nil)
			}
			if tc.overlay != "" {
				args = append(args, "--overlay", writeFile(t, t.TempDir(), "overlay.yaml", tc.overlay))
			}
			var stdout, stderr bytes.Buffer
			code := validate(append(args, tc.args...), stdin, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(stderr.String(), w) {
					t.Errorf("stderr has %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestCompletion: each script names every command and its flags; the bash script is
// valid bash and completes commands and flags when run.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out, errb bytes.Buffer
		if code := run([]string{"completion", shell}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", shell, code, errb.String())
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), c.name) {
				t.Errorf("%s script lacks command %s", shell, c.name)
			}
		}
		for _, f := range []string{"timeout", "offline", "self-signed", "addr"} {
			if !strings.Contains(out.String(), f) {
				t.Errorf("%s script lacks flag %s", shell, f)
			}
		}
		if sh, err := exec.LookPath(shell); err == nil {
			check := exec.Command(sh, "-n")
			if shell == "fish" {
				check = exec.Command(sh, "--no-execute")
			}
			check.Stdin = bytes.NewReader(out.Bytes())
			if msg, err := check.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, msg)
			}
		} else {
			t.Errorf("%s is not installed; .ci/run installs it (apt-get install zsh fish)", shell)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run the bash completion")
	}
	var script bytes.Buffer
	run([]string{"completion", "bash"}, &script, &bytes.Buffer{})
	for _, tc := range []struct{ words, want string }{
		{"outrider re", "render"},
		{"outrider render --ti", "--timeout"},
		{"outrider completion z", "zsh"},
		{"outrider validate --of", "--offline"},
	} {
		words := strings.Fields(tc.words)
		prog := script.String() + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_outrider\necho \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("completing %q = %q (%v), want %q", tc.words, out, err, tc.want)
		}
	}
}

// TestRenderHonoursTimeout: with Vault unreachable, render --once keeps retrying with
// backoff until --timeout (more than the three attempts it used to give up after),
// then fails naming the file.
func TestRenderHonoursTimeout(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", `data_dir: `+dir+`
secrets:
  vault: {address: "http://127.0.0.1:9", auth: {method: token, token: t}}
  retry: {initial_interval: 50ms, max_interval: 100ms}
  files: [{path: `+dir+`/db.env, source: secret/db}]
`)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"render", "--config", cfg, "--once", "--timeout", "3s"}, &stdout, &stderr)
	took := time.Since(start)
	if code != exitFailed || !strings.Contains(stderr.String(), "gave up after 3s (--timeout)") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if took < 2*time.Second {
		t.Errorf("gave up after %s, before --timeout", took)
	}
}

// TestStatusOfARunningAgent: outrider status prints each unit of a running agent.
func TestStatusOfARunningAgent(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte("data_dir: "+dir+"\nserver: {listen: \"127.0.0.1:0\", shutdown_timeout: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	a := agent.New(agent.Options{ConfigPath: dir + "/missing.yaml", Config: cfg, Version: "test", OnListen: func(s string) { addrc <- s }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	addr := <-addrc
	var stdout, stderr bytes.Buffer
	deadline := time.Now().Add(10 * time.Second)
	for {
		stdout.Reset()
		stderr.Reset()
		if run([]string{"status", "--addr", addr}, &stdout, &stderr) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never 0:\n%s%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range []string{"ready yes, healthy yes", "UNIT", "server", "running", "graph", "outrider test"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, stdout.String())
		}
	}
}

// FuzzValidate feeds arbitrary bytes to `validate --config - --offline`: it never
// panics, and answers valid (0) or invalid (2), never a runtime failure.
func FuzzValidate(f *testing.F) {
	f.Add([]byte("data_dir: /tmp/x\n"))
	f.Add([]byte("bogus: 1\nserver: {listen: \"0.0.0.0:1\"}\nreceivers: {sentry: {listen: \":1\"}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var stdout, stderr bytes.Buffer
		code := validate([]string{"--config", "-", "--offline"}, bytes.NewReader(data), &stdout, &stderr)
		if code != exitOK && code != exitUsage {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	})
}
