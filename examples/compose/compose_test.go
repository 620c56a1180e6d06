// Package compose holds the docker-compose stack of the demo; its test loads the file
// with the compose specification's own loader (no Docker engine runs here) and checks
// that every file, service, port and address it wires together agrees.
package compose

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/config"
)

// load loads docker-compose.yml as `docker compose` would, with env as the .env file.
func load(t *testing.T, env ...string) *types.Project {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(wd, "docker-compose.yml")},
		cli.WithWorkingDirectory(wd), cli.WithEnv(env), cli.WithDiscardEnvFile, cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("the compose loader refuses docker-compose.yml: %v", err)
	}
	return p
}

// envFromExample is .env.example with every commented assignment taken in.
func envFromExample(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(line, "#")
		if k, v, ok := strings.Cut(line, "="); ok && regexp.MustCompile(`^[A-Z_]+$`).MatchString(k) {
			env = append(env, k+"="+v)
		}
	}
	if len(env) == 0 {
		t.Fatal(".env.example sets nothing")
	}
	return env
}

func TestComposeFileIsWellFormed(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"defaults", nil},
		{".env.example", nil}, // filled below
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if tc.name == ".env.example" {
				env = envFromExample(t)
			}
			p := load(t, env...)
			checkProject(t, p)
		})
	}
}

func checkProject(t *testing.T, p *types.Project) {
	want := []string{"app", "outrider", "loadgen", "vault", "vault-init", "postgres", "loki", "tempo", "prometheus", "grafana"}
	for _, name := range want {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	tag := regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+$`)
	for name, s := range p.Services {
		switch {
		case s.Build != nil:
			if _, err := os.Stat(s.Build.Context); err != nil {
				t.Errorf("%s: build context %s: %v", name, s.Build.Context, err)
			}
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: Dockerfile %s: %v", name, df, err)
			}
		case s.Image == "":
			t.Errorf("%s: neither image nor build", name)
		}
		if s.Image != "" && (!tag.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned by a tag", name, s.Image)
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount %s -> %s: %v", name, v.Source, v.Target, err)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q is not declared", name, v.Source)
				}
			}
		}
		for _, port := range s.Ports {
			if port.Target == 0 || port.Published == "" {
				t.Errorf("%s: port %+v has no target or published port", name, port)
			}
		}
		if hc := s.HealthCheck; hc != nil {
			if len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL") {
				t.Errorf("%s: healthcheck test %q: want [CMD, program, args...] or [CMD-SHELL, command]", name, hc.Test)
			}
			if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
				t.Errorf("%s: healthcheck without interval, timeout or retries", name)
			}
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && target.HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
	}
	o := p.Services["outrider"]
	if o.NetworkMode != "service:app" || o.Pid != "service:app" {
		t.Errorf("outrider: network_mode %q, pid %q; want service:app for both (a sidecar's namespaces)", o.NetworkMode, o.Pid)
	}
}

// agentConfig is the outrider config the compose stack runs, with its overlay merged.
func agentConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load("outrider.yaml")
	if err != nil {
		t.Fatalf("outrider.yaml: %v", err)
	}
	return cfg
}

// TestAgentConfigPassesValidate runs the real `outrider validate` on the stack's
// config, with each overlay the README offers.
func TestAgentConfigPassesValidate(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "outrider")
	build := exec.Command("go", "build", "-o", bin, "github.com/outrider-dev/outrider/cmd/outrider")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build outrider: %v\n%s", err, out)
	}
	for _, overlay := range []string{"overlay-none.yaml", "overlay-sentry.yaml"} {
		cmd := exec.Command(bin, "validate", "--offline", "--config", "outrider.yaml", "--overlay", overlay)
		cmd.Env = append(os.Environ(), "SENTRY_DSN=https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("outrider validate --config outrider.yaml --overlay %s: %v\n%s", overlay, err, out)
		}
	}
}

// TestStackAgrees checks that what one file says another serves is served there: the
// app's SDK endpoints and DSN are the agent's listeners, the agent's exporters point
// at services on the ports their configs listen on, Prometheus scrapes the agent's
// server, Grafana's datasources reach the backends, and the paths the agent reads are
// on volumes that the writer of that path mounts too.
func TestStackAgrees(t *testing.T) {
	p := load(t)
	cfg := agentConfig(t)
	app, agent := p.Services["app"], p.Services["outrider"]
	envOf := func(s types.ServiceConfig, k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		t.Errorf("%s: environment %s is not set", s.Name, k)
		return ""
	}

	// The app reaches the agent on localhost (shared network namespace).
	otlp := envOf(app, "OTEL_EXPORTER_OTLP_ENDPOINT")
	if u, _ := url.Parse(otlp); u.Hostname() != "localhost" || port(t, cfg.Receivers.OTLP.HTTP.Listen) != portOf(t, otlp) {
		t.Errorf("app sends OTLP to %s; the agent's OTLP/HTTP receiver listens on %s (in the app's network namespace)", otlp, cfg.Receivers.OTLP.HTTP.Listen)
	}
	dsn, err := url.Parse(envOf(app, "SENTRY_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	if dsn.Port() != strconv.Itoa(port(t, cfg.Receivers.Sentry.Listen)) || dsn.User.Username() != cfg.Receivers.Sentry.PublicKey.Reveal() {
		t.Errorf("app's SENTRY_DSN %s does not match receivers.sentry (listen %s, public_key %s)", dsn, cfg.Receivers.Sentry.Listen, cfg.Receivers.Sentry.PublicKey)
	}
	// The agent's server is published on the app (whose network namespace it shares).
	serverPort := port(t, cfg.Server.Listen)
	if !slices.ContainsFunc(app.Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == serverPort }) {
		t.Errorf("the agent's server listens on %d, which the app service does not publish", serverPort)
	}

	// Exporters point at services, on the ports those services listen on.
	backendPorts := map[string][]int{
		"loki":       {yamlInt(t, "loki.yaml", "server", "http_listen_port")},
		"tempo":      {portOf(t, "x://"+yamlString(t, "tempo.yaml", "distributor", "receivers", "otlp", "protocols", "grpc", "endpoint"))},
		"prometheus": {9090},
	}
	for _, target := range []struct{ what, url string }{
		{"exporters.loki.url", cfg.Exporters.Loki.URL},
		{"exporters.otlp.endpoint", cfg.Exporters.OTLP.Endpoint},
		{"exporters.otlp_metrics.endpoint", cfg.Exporters.OTLPMetrics.Endpoint},
		{"secrets.vault.address", cfg.Secrets.Vault.Address},
	} {
		u, err := url.Parse(target.url)
		if err != nil {
			t.Errorf("%s: %v", target.what, err)
			continue
		}
		if _, ok := p.Services[u.Hostname()]; !ok {
			t.Errorf("%s %s: %s is not a service of the stack", target.what, target.url, u.Hostname())
			continue
		}
		if ports, ok := backendPorts[u.Hostname()]; ok && !slices.Contains(ports, portOf(t, target.url)) {
			t.Errorf("%s %s: %s listens on %v", target.what, target.url, u.Hostname(), ports)
		}
	}
	if got := envOf(p.Services["vault"], "VAULT_DEV_LISTEN_ADDRESS"); port(t, got) != portOf(t, cfg.Secrets.Vault.Address) {
		t.Errorf("secrets.vault.address %s, but Vault listens on %s", cfg.Secrets.Vault.Address, got)
	}

	// Prometheus scrapes the agent through the app's network namespace.
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &prom)
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			scraped = scraped || slices.Contains(st.Targets, fmt.Sprintf("app:%d", serverPort))
		}
	}
	if !scraped {
		t.Errorf("prometheus.yml does not scrape the agent at app:%d", serverPort)
	}

	// Grafana's datasources reach the stack's backends.
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "../grafana/provisioning/datasources/outrider.yaml", &ds)
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		uids[d.UID] = true
		u, err := url.Parse(d.URL)
		if err != nil {
			t.Errorf("datasource %s: %v", d.UID, err)
			continue
		}
		ports, ok := backendPorts[u.Hostname()]
		if !ok && u.Hostname() != "tempo" {
			t.Errorf("datasource %s: %s is not a backend of the stack", d.UID, d.URL)
		}
		if u.Hostname() == "tempo" {
			ports = []int{yamlInt(t, "tempo.yaml", "server", "http_listen_port")}
		}
		if !slices.Contains(ports, portOf(t, d.URL)) {
			t.Errorf("datasource %s: %s, but %s listens on %v", d.UID, d.URL, u.Hostname(), ports)
		}
	}
	for _, uid := range []string{cfg.Grafana.TempoDatasourceUID, cfg.Grafana.LokiDatasourceUID} {
		if !uids[uid] {
			t.Errorf("the agent's grafana section links to datasource %q, which is not provisioned", uid)
		}
	}

	// Shared paths: what the agent reads is on a volume its writer mounts too.
	mountOf := func(s types.ServiceConfig, path string) (types.ServiceVolumeConfig, bool) {
		for _, v := range s.Volumes {
			if path == v.Target || strings.HasPrefix(path, v.Target+"/") {
				return v, true
			}
		}
		return types.ServiceVolumeConfig{}, false
	}
	shared := []struct {
		path           string
		writer, reader types.ServiceConfig
	}{
		{envOf(app, "DEMO_LOG_FILE"), app, agent},
		{envOf(app, "DB_CREDENTIALS_FILE"), agent, app},
		{envOf(app, "API_KEY_FILE"), agent, app},
		{cfg.Secrets.Vault.Auth.TokenFile, p.Services["vault-init"], agent},
	}
	for _, sh := range shared {
		w, wok := mountOf(sh.writer, sh.path)
		r, rok := mountOf(sh.reader, sh.path)
		if !wok || !rok || w.Source != r.Source || w.Target != r.Target {
			t.Errorf("%s: written by %s (mount %+v) and read by %s (mount %+v): not the same volume at the same path", sh.path, sh.writer.Name, w, sh.reader.Name, r)
		}
		if w.ReadOnly {
			t.Errorf("%s: %s writes it, but mounts it read-only", sh.path, sh.writer.Name)
		}
	}
	if len(cfg.Logs.Sources) == 0 || !matchGlob(cfg.Logs.Sources[0].Path, envOf(app, "DEMO_LOG_FILE")) {
		t.Errorf("the agent's log source does not read the app's log file %s", envOf(app, "DEMO_LOG_FILE"))
	}
	for _, f := range cfg.Secrets.Files {
		if _, ok := mountOf(agent, f.Path); !ok {
			t.Errorf("secrets file %s is on no volume of the agent", f.Path)
		}
	}
}

// TestVaultInitIsValidShell parses vault-init.sh with a real POSIX shell.
func TestVaultInitIsValidShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh on this machine")
	}
	if out, err := exec.Command(sh, "-n", "vault-init.sh").CombinedOutput(); err != nil {
		t.Errorf("sh -n vault-init.sh: %v\n%s", err, out)
	}
}

func matchGlob(pattern, path string) bool {
	ok, _ := filepath.Match(pattern, path)
	return ok
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// portOf returns a URL's port, with the scheme's default.
func portOf(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	if u.Port() != "" {
		n, _ := strconv.Atoi(u.Port())
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func yamlValue(t *testing.T, path string, keys ...string) any {
	t.Helper()
	var m map[string]any
	readYAML(t, path, &m)
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %s", path, strings.Join(keys, "."))
		}
		v = mm[k]
	}
	return v
}

func yamlInt(t *testing.T, path string, keys ...string) int {
	n, ok := yamlValue(t, path, keys...).(int)
	if !ok {
		t.Fatalf("%s: %s is not a number", path, strings.Join(keys, "."))
	}
	return n
}

func yamlString(t *testing.T, path string, keys ...string) string {
	s, ok := yamlValue(t, path, keys...).(string)
	if !ok {
		t.Fatalf("%s: %s is not a string", path, strings.Join(keys, "."))
	}
	return s
}
