package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

const validYAML = `
data_dir: /var/lib/outrider
identity: {service: checkout, namespace: shop}
server: {listen: "127.0.0.1:9000", shutdown_timeout: 45s}
logs:
  sources:
    - name: app
      path: /var/log/app/*.log
      max_line_bytes: 64KiB
      parser: {format: json}
exporters:
  loki:
    url: http://127.0.0.1:3100
    tenant_id: team-a
    basic_auth: {username: u, password: hunter2-very-secret}
`

func TestParseValid(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ShutdownTimeout != 45*time.Second {
		t.Errorf("shutdown_timeout = %v", cfg.Server.ShutdownTimeout)
	}
	if got := cfg.Logs.Sources[0].MaxLineBytes; got != 64<<10 {
		t.Errorf("max_line_bytes = %v, want 64KiB", got)
	}
	if cfg.Logs.Sources[0].Type != "file" {
		t.Errorf("type default = %q, want file", cfg.Logs.Sources[0].Type)
	}
	if cfg.Log.Level != "info" || cfg.Log.Format != "json" {
		t.Errorf("log defaults = %+v", cfg.Log)
	}
	if cfg.Runtime.GCPercent != 100 || cfg.Runtime.IdleRelease != 5*time.Second {
		t.Errorf("runtime defaults = %+v", cfg.Runtime)
	}
	if cfg.Identity.Service != "checkout" || cfg.Identity.Namespace != "shop" {
		t.Errorf("identity = %+v", cfg.Identity)
	}
	if cfg.Exporters.Loki.BasicAuth.Password.Reveal() != "hunter2-very-secret" {
		t.Errorf("password not decoded")
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, *cfg.Exporters.Loki); strings.Contains(out, "hunter2") {
			t.Errorf("%s of the loki config reveals the password: %s", format, out)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	base := func(mut string) string { return strings.Replace(validYAML, "      max_line_bytes: 64KiB\n", mut, 1) }
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"invalid yaml", "data_dir: [unclosed\n", []string{"invalid YAML", "line"}},
		{"unknown key", base("      pathh: /x\n"), []string{"logs.sources[0].pathh: unknown key", "valid keys here"}},
		{"unknown top-level key", validYAML + "extra: 1\n", []string{"extra: unknown key"}},
		{"bad duration", strings.Replace(validYAML, "45s", "45 parsecs", 1), []string{"server.shutdown_timeout: invalid duration"}},
		{"bad size", base("      max_line_bytes: lots\n"), []string{"logs.sources[0].max_line_bytes"}},
		{"relative path", strings.Replace(validYAML, "/var/log/app/*.log", "app/*.log", 1), []string{"logs.sources[0].path"}},
		{"relative data dir", strings.Replace(validYAML, "data_dir: /var/lib/outrider", "data_dir: data", 1), []string{"data_dir: must be an absolute path"}},
		{"wrong type", strings.Replace(validYAML, "identity: {service: checkout, namespace: shop}", "identity: [a, b]", 1), []string{"identity: expected a mapping"}},
		{"bad log level", validYAML + "log: {level: loud}\n", []string{"log.level: must be one of"}},
		{"idle release too often", validYAML + "runtime: {idle_release: 100ms}\n", []string{"runtime.idle_release: must be 0 (off) or at least 1s"}},
		{"unknown source type", base("      type: journald\n"), []string{"logs.sources[0].type: unknown source type"}},
		{"missing exporter", strings.Split(validYAML, "exporters:")[0], []string{"exporters.loki: required"}},
		{"unset env", strings.Replace(validYAML, "team-a", "${OUTRIDER_TEST_SURELY_UNSET}", 1), []string{"exporters.loki.tenant_id: environment variable OUTRIDER_TEST_SURELY_UNSET is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !confval.IsConfigError(err) {
				t.Errorf("error is not a configuration error: %T %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	y := strings.Replace(strings.Replace(validYAML, "45s", "soon", 1), "      max_line_bytes: 64KiB\n", "      bogus: 1\n      start_at: middle\n", 1)
	_, err := Parse("test.yaml", []byte(y))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"server.shutdown_timeout", "logs.sources[0].bogus"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not list %s:\n%v", w, err)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-y", "x-alpha-y", ""},
		{"${MISSING:-def}", "def", ""},
		{"${EMPTY:-def}", "def", ""},
		{"${EMPTY}", "", ""},
		{"$$A", "$A", ""},
		{"cost $5", "cost $5", ""},
		{"${MISSING}", "", "MISSING is not set"},
		{"${A", "", "unterminated"},
		{"${1BAD}", "", "invalid environment variable name"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expandEnv(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestIdentityFromEnvironment(t *testing.T) {
	env := map[string]string{"OTEL_SERVICE_NAME": "svc", "POD_NAMESPACE": "ns", "POD_NAME": "p-1", "CONTAINER_NAME": "app"}
	cfg := defaultWith(func(k string) string { return env[k] })
	want := map[string]string{"service": "svc", "namespace": "ns", "pod": "p-1", "container": "app"}
	if got := cfg.Identity.Labels(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validYAML))
	f.Add([]byte("logs: {sources: [{path: /a, multiline: {start: '('}}]}"))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("server: {listen: ${X:-}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !confval.IsConfigError(err) {
			t.Fatalf("error is not a configuration error: %v", err)
		}
	})
}

func TestNoexpandFieldsAreLiteral(t *testing.T) {
	var v struct {
		Template string `yaml:"template" config:"noexpand"`
		Other    string `yaml:"other"`
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte("template: 'a ${HOME} $$ b'\nother: ${OUTRIDER_TEST_X:-x}\n"), &root); err != nil {
		t.Fatal(err)
	}
	p := &confval.Problems{}
	newDecoder(p).decode(&root, reflect.ValueOf(&v).Elem(), "")
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if v.Template != "a ${HOME} $$ b" || v.Other != "x" {
		t.Errorf("template %q (want literal), other %q (want expanded)", v.Template, v.Other)
	}
}

func TestPushedTelemetrySections(t *testing.T) {
	const head = "data_dir: /var/lib/outrider\n"
	ok := head + `receivers:
  otlp: {}
exporters:
  otlp: {endpoint: "http://tempo:4317", headers: {X-Scope-OrgID: team-a}}
queue: {max_size: 64MiB}
`
	cfg, err := Parse("t.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Receivers.OTLP
	if r == nil || r.GRPC.Listen != "127.0.0.1:4317" || r.HTTP.Listen != "127.0.0.1:4318" {
		t.Errorf("receiver defaults: %+v", r)
	}
	if cfg.Queue.MaxSize != 64<<20 || cfg.Queue.SegmentSize == 0 || cfg.Queue.Fsync != "interval" {
		t.Errorf("queue: %+v", cfg.Queue)
	}
	if cfg.Exporters.OTLP.Protocol != "grpc" || cfg.Exporters.OTLP.Compression != "gzip" {
		t.Errorf("otlp exporter defaults: %+v", cfg.Exporters.OTLP)
	}
	for _, tt := range []struct{ yaml, want string }{
		{head + "receivers: {otlp: {}}\n", "receivers.otlp: has nowhere to send"},
		{ok + "", ""},
		{strings.Replace(ok, "otlp: {}", "otlp: {max_request_bytes: 6MiB}", 1), "receivers.otlp.max_request_bytes: 6MiB is more than half of queue.segment_size"},
		{strings.Replace(ok, "max_size: 64MiB", "fsync: sometimes", 1), "queue.fsync"},
		{strings.Replace(ok, `"http://tempo:4317"`, `"tempo:4317"`, 1), "exporters.otlp.endpoint"},
		{strings.Replace(ok, "otlp: {}", "otlp: {grpc: {listen: nowhere}}", 1), "receivers.otlp.grpc.listen"},
		{strings.Replace(ok, "otlp: {}", `otlp: {grpc: {listen: "127.0.0.1:0"}, http: {listen: "127.0.0.1:0"}}`, 1), ""}, // any free port, twice
		{strings.Replace(ok, "otlp: {}", `otlp: {grpc: {listen: "127.0.0.1:4317"}, http: {listen: "127.0.0.1:4317"}}`, 1), "same address"},
	} {
		_, err := Parse("t.yaml", []byte(tt.yaml))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}

func TestIdentityResourceAttributes(t *testing.T) {
	got := Identity{Service: "shop", Namespace: "prod", Pod: "shop-0", PodUID: "u1", Container: "app", Node: "n1", Environment: "prod-eu"}.ResourceAttributes()
	want := map[string]string{"service.name": "shop", "k8s.namespace.name": "prod", "k8s.pod.name": "shop-0", "k8s.pod.uid": "u1",
		"k8s.container.name": "app", "k8s.node.name": "n1", "deployment.environment": "prod-eu"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len((Identity{Service: "x"}).ResourceAttributes()) != 1 {
		t.Error("empty values must be left out")
	}
}

// TestErrorsToLoki: error events need somewhere to go — Sentry, or Loki with
// errors.to_loki — and to_loki needs the Loki exporter.
func TestErrorsToLoki(t *testing.T) {
	const head = "data_dir: /var/lib/outrider\n"
	const loki = "  loki: {url: \"http://loki:3100\"}\n"
	const sentry = "  sentry: {dsn: \"https://key@sentry.example.com/7\"}\n"
	const recv = "receivers: {sentry: {public_key: k}}\n"
	for _, tt := range []struct {
		name, yaml, want string
		on               bool
	}{
		{"sentry receiver, loki, to_loki", head + recv + "exporters:\n" + loki + "errors: {to_loki: true}\n", "", true},
		{"sentry receiver and both", head + recv + "exporters:\n" + loki + sentry + "errors: {to_loki: true}\n", "", true},
		{"sentry only", head + recv + "exporters:\n" + sentry, "", true},
		{"to_loki without the receiver", head + "exporters:\n" + loki + "errors: {to_loki: true}\n", "", true},
		{"loki without to_loki", head + "exporters:\n" + loki, "", false},
		{"sentry receiver, loki, no to_loki", head + recv + "exporters:\n" + loki,
			"receivers.sentry: has nowhere to send events: add exporters.sentry.dsn (your Sentry project's DSN), or errors.to_loki: true with exporters.loki", false},
		{"to_loki without loki", head + "exporters:\n" + sentry + "errors: {to_loki: true}\n",
			"errors.to_loki: needs exporters.loki: add exporters.loki.url, or remove to_loki", false},
		{"errors validated with to_loki only", head + "exporters:\n" + loki + "errors: {to_loki: true, per_window: -1}\n",
			"errors.per_window", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tt.yaml))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ErrorEventsOn() != tt.on {
				t.Errorf("ErrorEventsOn() = %v, want %v", cfg.ErrorEventsOn(), tt.on)
			}
		})
	}
}
