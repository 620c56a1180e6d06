package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

// TestInjectedSidecar runs the sample pod through the real injector and checks that
// the sidecar benchidle runs is the injected one: the file source, both receivers,
// three exporters and the secret, every pod path inside the working directory, and a
// configuration the agent loads.
func TestInjectedSidecar(t *testing.T) {
	dir := t.TempDir()
	s, err := injectSidecar(dir, backendAddrs{vault: "http://127.0.0.1:8200", loki: "http://127.0.0.1:3100", otlp: "http://127.0.0.1:4317"},
		ports{server: 18686, otlpGRPC: 14317, otlpHTTP: 14318, sentry: 14319}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(s.dsnFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.dsnFile, []byte("https://key@sentry.example.com/1"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(s.configPath(), []byte(s.config))
	if err != nil {
		t.Fatalf("the agent refuses the configuration: %v\n%s", err, s.config)
	}
	switch {
	case len(cfg.Logs.Sources) != 1, cfg.Receivers.OTLP == nil, cfg.Receivers.Sentry == nil,
		cfg.Exporters.Loki == nil, cfg.Exporters.OTLP == nil, cfg.Exporters.Sentry == nil, len(cfg.Secrets.Files) != 1:
		t.Errorf("not the injected set of parts:\n%s", s.config)
	}
	if cfg.Runtime.MemoryLimit == 0 {
		t.Error("the injector's runtime.memory_limit is missing")
	}
	for _, p := range append([]string{cfg.DataDir, s.tokenPath, s.dsnFile, s.logDir, s.configPath()}, s.secretFiles...) {
		if !strings.HasPrefix(p, dir+"/") {
			t.Errorf("path %s is outside the working directory %s", p, dir)
		}
	}
	if s.server != "127.0.0.1:18686" || s.sentry != "127.0.0.1:14319" || !strings.Contains(s.config, "127.0.0.1:14317") {
		t.Errorf("listeners not moved: server %s sentry %s\n%s", s.server, s.sentry, s.config)
	}
	env := strings.Join(s.env, " ")
	for _, want := range []string{"POD_NAME=web-0", "POD_NAMESPACE=shop", "NODE_NAME=node-1", "OTEL_SERVICE_NAME=web", "HOME=/home/nonroot"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment %q lacks %s", env, want)
		}
	}
	if s.args[0] != "agent" {
		t.Errorf("args %q", s.args)
	}
}

func TestRemapPath(t *testing.T) {
	mounts := map[string]string{"/var/lib/outrider": "/w/data", "/var/log/app": "/w/logs/dir-1", "/var/log": "/w/varlog"}
	for in, want := range map[string]string{
		"/var/lib/outrider":          "/w/data",
		"/var/lib/outrider/queue":    "/w/data/queue",
		"/var/log/app/*.log":         "/w/logs/dir-1/*.log",
		"/var/log/other.log":         "/w/varlog/other.log",
		"/var/lib/outrider-other/x":  "/var/lib/outrider-other/x",
		"http://127.0.0.1:3100/push": "http://127.0.0.1:3100/push",
	} {
		if got := remapPath(in, mounts); got != want {
			t.Errorf("remapPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseVaultTime(t *testing.T) {
	text := `# HELP outrider_vault_request_duration_seconds Duration
outrider_vault_request_duration_seconds_bucket{op="login",le="0.001"} 0
outrider_vault_request_duration_seconds_sum{op="login"} 0.012
outrider_vault_request_duration_seconds_count{op="login"} 1
outrider_vault_request_duration_seconds_sum{op="read"} 0.0105
outrider_vault_request_duration_seconds_count{op="read"} 2
outrider_vault_request_duration_seconds_sum{op="token_renew"} 0.5
outrider_vault_request_duration_seconds_count{op="token_renew"} 1
outrider_vault_requests_total{op="read",result="success"} 2
`
	d, n, err := parseVaultTime(strings.NewReader(text))
	if err != nil || n != 3 || d < 22*time.Millisecond || d > 23*time.Millisecond {
		t.Errorf("parseVaultTime = %v, %d, %v; want 22.5ms over 3 requests", d, n, err)
	}
	if _, _, err := parseVaultTime(strings.NewReader("outrider_up 1\n")); err == nil {
		t.Error("no error without the series")
	}
}

func TestFigures(t *testing.T) {
	mem := func(mib int64) procstat.Memory {
		return procstat.Memory{RSS: mib << 20, Anon: mib << 19, File: mib << 19}
	}
	results := []result{{name: nameOutrider, runs: []run{
		{startup: 200 * time.Millisecond, vault: 20 * time.Millisecond, idle: mem(14), burstPeak: 30 << 20, afterBurst: mem(16)},
		{startup: 100 * time.Millisecond, vault: 10 * time.Millisecond, idle: mem(12), burstPeak: 28 << 20, afterBurst: mem(15)},
		{startup: 300 * time.Millisecond, vault: 30 * time.Millisecond},
	}}}
	g := gates{maxStartup: 150 * time.Millisecond, maxIdleMiB: 15, maxAfterBurstMiB: 15}
	byName := map[string]figure{}
	for _, f := range figures(results, g) {
		byName[strings.TrimSpace(f.name)] = f
	}
	tests := []struct {
		name        string
		median, max float64
		runs        int
		verdict     string
	}{
		{"start-up less Vault round trips (ms)", 180, 270, 3, "FAIL"},
		{"idle RSS (MiB)", 13, 14, 2, "PASS"},
		{"RSS after the burst passed (MiB)", 15.5, 16, 2, "FAIL"},
		{"peak RSS in the burst (MiB)", 29, 30, 2, ""},
	}
	for _, tt := range tests {
		f, ok := byName[tt.name]
		if !ok {
			t.Fatalf("no figure %q", tt.name)
		}
		m, x, _ := f.stats()
		if m != tt.median || x != tt.max || len(f.values) != tt.runs || f.verdict() != tt.verdict {
			t.Errorf("%s: median %v max %v runs %d verdict %q; want %v %v %d %q", tt.name, m, x, len(f.values), f.verdict(), tt.median, tt.max, tt.runs, tt.verdict)
		}
	}
	var out bytes.Buffer
	if err := printTable(&out, options{gates: g}, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "load average") || !strings.Contains(out.String(), "FAIL") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestParseFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "outrider")
	if err := writeExecutable(bin); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	for _, args := range [][]string{
		{},
		{"-outrider", bin, "-vault", bin, "-starts", "0"},
		{"-outrider", bin, "-vault", bin, "-idle-runs", "6"},
		{"-outrider", bin, "-vault", bin, "-burst-spans", "0"},
	} {
		if _, err := parseFlags(args, &stderr); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	o, err := parseFlags([]string{"-outrider", bin, "-vault", bin}, &stderr)
	if err != nil || o.starts != 5 || o.idleRuns != 3 || o.idle != 30*time.Second || o.gates.maxIdleMiB != 15 {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

// TestCommandFailsWithoutBinary checks the exit status of a run that cannot start.
func TestCommandFailsWithoutBinary(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := command.Run(context.Background(), []string{"-outrider", filepath.Join(t.TempDir(), "missing")}, &stdout, &stderr); code == 0 {
		t.Errorf("exit status 0 for a missing binary; stderr %s", stderr.String())
	}
}

func writeExecutable(path string) error { return os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755) }
