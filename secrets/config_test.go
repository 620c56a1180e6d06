package secrets

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

func validConfig() Config {
	return Config{
		Vault: vault.Config{Address: "http://127.0.0.1:8200", Auth: vault.AuthConfig{Method: vault.MethodToken, Token: "t"}},
		Files: []File{{FileConfig: render.FileConfig{Path: "/vault/secrets/db.env", Source: "secret/db"}}},
	}
}

func TestApplyDefaults(t *testing.T) {
	c := validConfig()
	c.Files = append(c.Files, File{FileConfig: render.FileConfig{Path: "/vault/secrets/x", Template: "x"}, Reload: &reload.Config{Method: reload.MethodSignal, Process: "nginx"}})
	c.ApplyDefaults()
	if c.PollInterval != 30*time.Second || c.RevokeGrace != 30*time.Second || c.Retry.InitialInterval != time.Second || c.Retry.MaxInterval != time.Minute {
		t.Errorf("defaults: poll %v, grace %v, retry %+v", c.PollInterval, c.RevokeGrace, c.Retry)
	}
	if c.RedactRetention != 24*time.Hour || c.RedactMaxRetained != 1000 {
		t.Errorf("redaction retention defaults: %v, %d", c.RedactRetention, c.RedactMaxRetained)
	}
	if c.Reload.Method != reload.MethodNone || c.Files[1].Reload.Signal != "SIGHUP" {
		t.Errorf("reload defaults not applied: %+v, %+v", c.Reload, c.Files[1].Reload)
	}
	if c.Files[0].Mode != "0400" || c.Files[0].Format != render.FormatEnv {
		t.Errorf("file defaults not applied: %+v", c.Files[0].FileConfig)
	}
	if c.Vault.MaxRequestsPerSecond != vault.DefaultMaxRequestsPerSecond {
		t.Errorf("vault defaults not applied")
	}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
	// Set values are kept.
	c = validConfig()
	c.PollInterval, c.RevokeGrace, c.Retry.InitialInterval = 5*time.Second, time.Second, 2*time.Minute
	c.ApplyDefaults()
	if c.PollInterval != 5*time.Second || c.RevokeGrace != time.Second || c.Retry.MaxInterval != 2*time.Minute {
		t.Errorf("set values changed: %+v %+v", c.PollInterval, c.Retry)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none for a valid config
	}{
		{"valid", func(*Config) {}, nil},
		{"disabled", func(c *Config) { *c = Config{} }, nil},
		{"auth without files", func(c *Config) { c.Files = nil }, []string{"files: vault is configured but there are no files"}},
		{"poll too short", func(c *Config) { c.PollInterval = 500 * time.Millisecond }, []string{"poll_interval: must be at least 1s"}},
		{"negative grace", func(c *Config) { c.RevokeGrace = -time.Second }, []string{"revoke_grace: must be between 0s and 24h0m0s"}},
		{"redact retention too short", func(c *Config) { c.RedactRetention = time.Second }, []string{"redact_retention: must be between 1m0s and 720h0m0s (got 1s)"}},
		{"redact retention too long", func(c *Config) { c.RedactRetention = 1000 * time.Hour }, []string{"redact_retention: must be between"}},
		{"redact max retained", func(c *Config) { c.RedactMaxRetained = -1 }, []string{"redact_max_retained: must be between 1 and 100000 (got -1)"}},
		{"retry max below initial", func(c *Config) { c.Retry = RetryConfig{InitialInterval: 10 * time.Second, MaxInterval: time.Second} }, []string{"retry.max_interval: must be at least retry.initial_interval (10s)"}},
		{"retry initial negative", func(c *Config) { c.Retry.InitialInterval = -1 }, []string{"retry.initial_interval: must be positive"}},
		{"vault", func(c *Config) { c.Vault.Address = "vault:8200" }, []string{"vault.address: "}},
		{"reload", func(c *Config) { c.Reload.Method = "kill" }, []string{"reload.method: must be one of"}},
		{"file", func(c *Config) { c.Files[0].Path = "relative" }, []string{"files[0].path: \"relative\" must be absolute"}},
		{"file reload", func(c *Config) { c.Files[0].Reload = &reload.Config{Method: reload.MethodHTTP} }, []string{"files[0].reload.url: required with method http"}},
		{"duplicate path", func(c *Config) {
			c.Files = append(c.Files, File{FileConfig: render.FileConfig{Path: "/vault/secrets/db.env", Template: "x"}})
		}, []string{"files[1].path: \"/vault/secrets/db.env\" is also files[0]'s path"}},
		{"template syntax", func(c *Config) {
			c.Files[0] = File{FileConfig: render.FileConfig{Path: "/a", Template: "{{ secrt \"x\" }}"}}
		}, []string{"files[0].template: line 1: function \"secrt\" not defined"}},
		{"several at once", func(c *Config) {
			c.PollInterval = time.Millisecond
			c.Files[0].Path = ""
		}, []string{"poll_interval", "files[0].path: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			c.ApplyDefaults()
			var p confval.Problems
			c.Validate(&p)
			err := p.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	c := validConfig()
	c.PollInterval = time.Millisecond
	if _, err := New(c, Settings{}); err == nil || !strings.Contains(err.Error(), "poll_interval") {
		t.Errorf("New with a bad config = %v", err)
	}
	if _, err := New(Config{}, Settings{}); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Errorf("New without files = %v", err)
	}
	c = validConfig()
	c.Files[0] = File{FileConfig: render.FileConfig{Path: "/a", TemplateFile: "/does/not/exist.tmpl"}}
	if _, err := New(c, Settings{}); err == nil || !strings.Contains(err.Error(), "files[0]: template_file") {
		t.Errorf("New with a missing template file = %v", err)
	}
	c = validConfig()
	c.Reload = reload.Config{Method: reload.MethodExec, Command: []string{"/no/such/program"}}
	if _, err := New(c, Settings{}); err == nil || !strings.Contains(err.Error(), "command[0]") {
		t.Errorf("New with a missing reload command = %v", err)
	}
	c = validConfig()
	s, err := New(c, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Error("a new Syncer is ready before rendering anything")
	}
}
