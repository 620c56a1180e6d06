package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "data_dir: /tmp/outrider-test\nlogs:\n  sources:\n    - name: app\n      path: /var/log/app/*.log\nexporters:\n  loki: {url: \"http://127.0.0.1:3100\"}\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"no command", nil, 2, "", []string{"usage"}},
		{"unknown command", []string{"fly"}, 2, "", []string{`unknown command "fly"`}},
		{"version", []string{"version"}, 0, "go:      go", nil},
		{"help", []string{"help"}, 0, "completion", nil},
		{"--help", []string{"--help"}, 0, "commands:", nil},
		{"help render", []string{"help", "render"}, 0, "example:\n  outrider render --config", nil},
		{"help unknown", []string{"help", "fly"}, 2, "", []string{`unknown command "fly"`}},
		{"render --help", []string{"render", "--help"}, 0, "--timeout duration", nil},
		{"inject --help", []string{"inject", "--help"}, 0, "--self-signed", nil},
		{"agent --help", []string{"agent", "--help"}, 0, "example:\n  outrider agent --config", nil},
		{"agent -h", []string{"agent", "-h"}, 0, "usage: outrider agent", nil},
		{"validate --help", []string{"validate", "--help"}, 0, "--offline", nil},
		{"status --help", []string{"status", "--help"}, 0, "--addr string", nil},
		{"completion without shell", []string{"completion"}, 2, "", []string{"bash, zsh or fish"}},
		{"completion unknown shell", []string{"completion", "tcsh"}, 2, "", []string{`unknown shell "tcsh"`}},
		{"unknown flag", []string{"render", "--nope"}, 2, "", []string{"flag provided but not defined: -nope", "outrider help render"}},
		{"status unreachable", []string{"status", "--addr", "127.0.0.1:1", "--timeout", "2s"}, 1, "", []string{"cannot reach the agent at 127.0.0.1:1"}},
		{"validate ok", []string{"validate", "--config", good}, 0, "configuration is valid", nil},
		{"validate missing flag", []string{"validate"}, 2, "", []string{"--config FILE is required"}},
		{"validate missing file", []string{"validate", "--config", filepath.Join(dir, "nope.yaml")}, 2, "", []string{"does not exist"}},
		{"invalid yaml", []string{"validate", "--config", write("bad.yaml", "logs: [\n")}, 2, "", []string{"invalid YAML"}},
		{"unknown key", []string{"validate", "--config", write("unknown.yaml", "logz: {}\n")}, 2, "", []string{"logz: unknown key"}},
		{"bad duration", []string{"validate", "--config", write("dur.yaml", "server: {shutdown_timeout: forever}\n")}, 2, "", []string{"server.shutdown_timeout: invalid duration"}},
		{"relative path", []string{"validate", "--config", write("rel.yaml", "logs: {sources: [{path: logs/*.log}]}\nexporters: {loki: {url: \"http://127.0.0.1:3100\"}}\n")}, 2, "", []string{"logs.sources[0].path"}},
		{"render without --once", []string{"render", "--config", good}, 2, "", []string{"only --once is supported"}},
		{"render without secrets", []string{"render", "--config", good, "--once"}, 2, "", []string{"has no secrets.files"}},
		{"agent bad config", []string{"agent", "--config", write("agent.yaml", "nope: 1\n")}, 2, "", []string{"nope: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.stdout)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
			}
		})
	}
}
