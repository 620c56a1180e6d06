package inject

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
	"github.com/outrider-dev/outrider/sources/tail"
)

// TestEncodeRoundTrip checks that the YAML encoder writes what the config package
// reads back to the same values: "$" kept literal outside templates, templates
// untouched, *bool false kept, durations, sizes, secrets, maps and lists.
func TestEncodeRoundTrip(t *testing.T) {
	no := false
	cfg := config.Config{
		DataDir:  "/data",
		Identity: config.Identity{Service: "price$${HOME}"},
		Server:   config.Server{Listen: ":9000", ShutdownTimeout: 1500 * time.Millisecond, Pprof: true},
		Logs: config.Logs{Sources: []config.LogSource{{Config: tail.Config{
			Name: "app", Path: "/var/log/app/*.log", Labels: map[string]string{"team": "a$b", "tier": ""},
			MaxLineBytes: 3 << 20,
		}}}},
		Exporters: config.Exporters{Loki: &lokiexporter.Config{
			URL:       "http://loki:3100",
			BasicAuth: lokiexporter.BasicAuth{Username: "u", Password: confval.Secret("p$w${X}")},
		}},
		Secrets: secrets.Config{
			Vault: vault.Config{Address: "https://vault:8200", Auth: vault.AuthConfig{Method: "kubernetes", Role: "r"}},
			Files: []secrets.File{{FileConfig: render.FileConfig{
				Path:              "/vault/secrets/a",
				Template:          "{{ env \"HOME\" }} ${HOME} $$ $\n  indented: \"quoted\"\n",
				ErrorOnMissingKey: &no,
			}}},
		},
	}
	first := parseEncoded(t, cfg)
	if got := first.Identity.Service; got != cfg.Identity.Service {
		t.Errorf("identity.service = %q, want %q", got, cfg.Identity.Service)
	}
	if got := first.Logs.Sources[0].Labels; !reflect.DeepEqual(got, cfg.Logs.Sources[0].Labels) {
		t.Errorf("labels = %v, want %v", got, cfg.Logs.Sources[0].Labels)
	}
	if got := first.Exporters.Loki.BasicAuth.Password.Reveal(); got != "p$w${X}" {
		t.Errorf("password = %q, want it unexpanded", got)
	}
	f := first.Secrets.Files[0]
	if f.Template != cfg.Secrets.Files[0].Template || f.ErrorOnMissingKey == nil || *f.ErrorOnMissingKey {
		t.Errorf("file = template %q, error_on_missing_key %v", f.Template, f.ErrorOnMissingKey)
	}
	if first.Server.ShutdownTimeout != 1500*time.Millisecond || !first.Server.Pprof || first.Logs.Sources[0].MaxLineBytes != 3<<20 {
		t.Errorf("server %+v, max_line_bytes %s", first.Server, first.Logs.Sources[0].MaxLineBytes)
	}
	// Everything the first load filled in survives a second round.
	if second := parseEncoded(t, *first); !reflect.DeepEqual(first, second) {
		t.Errorf("a second round changed the configuration:\n%+v\n%+v", first, second)
	}
}

func parseEncoded(t *testing.T, cfg config.Config) *config.Config {
	t.Helper()
	n, err := encodeYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := marshalYAML(n)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := config.Parse("test", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return parsed
}

// TestGeneratedConfig checks the parts of the generated configuration that follow
// from sizes and options.
func TestGeneratedConfig(t *testing.T) {
	tests := []struct {
		name   string
		set    map[string]string
		del    []string
		check  func(t *testing.T, c *config.Config)
		absent []string
	}{
		{"queue shared by traces and logs", map[string]string{AnnotationQueueSizeLimit: "256Mi"}, nil, func(t *testing.T, c *config.Config) {
			if c.Queue.MaxSize != 112<<20 {
				t.Errorf("queue.max_size = %s, want 112MiB (7/8 of 256Mi for two queues)", c.Queue.MaxSize)
			}
		}, nil},
		{"queue for traces only", map[string]string{AnnotationQueueSizeLimit: "64Mi", AnnotationLokiURL: ""}, nil, func(t *testing.T, c *config.Config) {
			if c.Queue.MaxSize != 56<<20 {
				t.Errorf("queue.max_size = %s, want 56MiB", c.Queue.MaxSize)
			}
		}, nil},
		{"soft memory limit", map[string]string{AnnotationMemoryLimit: "100Mi"}, nil, func(t *testing.T, c *config.Config) {
			if c.Runtime.MemoryLimit != 80<<20 {
				t.Errorf("runtime.memory_limit = %s, want 80MiB", c.Runtime.MemoryLimit)
			}
		}, nil},
		{"service with dollar", map[string]string{AnnotationService: "shop$${POD_NAME}"}, nil, func(t *testing.T, c *config.Config) {
			if c.Identity.Service != "shop$${POD_NAME}" {
				t.Errorf("identity.service = %q, want it literal", c.Identity.Service)
			}
		}, nil},
		{"auth path", map[string]string{AnnotationAuthPath: "/auth/k8s/"}, nil, func(t *testing.T, c *config.Config) {
			if c.Secrets.Vault.Auth.MountPath != "k8s" {
				t.Errorf("mount_path = %q, want k8s", c.Secrets.Vault.Auth.MountPath)
			}
		}, nil},
		{"reload http", map[string]string{AnnotationReload: "http:http://127.0.0.1:8080/-/reload"}, nil, func(t *testing.T, c *config.Config) {
			if r := c.Secrets.Reload; r.Method != "http" || r.URL != "http://127.0.0.1:8080/-/reload" {
				t.Errorf("reload = %+v", r)
			}
		}, nil},
		{"reload process from command", map[string]string{AnnotationReload: "signal:USR1"}, nil, func(t *testing.T, c *config.Config) {
			if r := c.Secrets.Reload; r.Method != "signal" || r.Signal != "USR1" || r.Process != "web" {
				t.Errorf("reload = %+v, want SIGUSR1 to web (base name of /bin/web)", r)
			}
		}, nil},
		{"telemetry only", map[string]string{}, []string{AnnotationRole, AnnotationSecretPrefix + "db"}, func(t *testing.T, c *config.Config) {
			if c.Secrets.Enabled() || c.Receivers.OTLP == nil {
				t.Errorf("secrets enabled %v, otlp %v", c.Secrets.Enabled(), c.Receivers.OTLP)
			}
		}, []string{"secrets:", "vault"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newTestInjector(t, testDefaults())
			pod := basePod()
			for k, v := range tt.set {
				pod.Annotations[k] = v
			}
			for _, k := range tt.del {
				delete(pod.Annotations, k)
			}
			req := requestFor(t, pod)
			patched, _ := applyPatch(t, in, req, in.Mutate(req))
			text := patched.Annotations[AnnotationConfig]
			c, err := config.Parse("generated", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			tt.check(t, c)
			for _, a := range tt.absent {
				if strings.Contains(text, a) {
					t.Errorf("the configuration holds %q:\n%s", a, text)
				}
			}
		})
	}
}
