package lokiexporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{URL: "http://127.0.0.1:3100"}
	c.ApplyDefaults()
	if c.Timeout != 10*time.Second || c.Concurrency != 2 {
		t.Errorf("timeout %s, concurrency %d", c.Timeout, c.Concurrency)
	}
	if c.Batch != (exporterhelper.BatchConfig{MaxBytes: 512 << 10, MaxWait: time.Second, MaxPendingBytes: 2 << 20}) {
		t.Errorf("batch defaults %+v", c.Batch)
	}
	if c.Retry.InitialInterval != 250*time.Millisecond || c.Retry.MaxInterval != 30*time.Second || c.Retry.MaxElapsed != 0 {
		t.Errorf("retry defaults %+v", c.Retry)
	}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestPushURL(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"http://127.0.0.1:3100", "http://127.0.0.1:3100/loki/api/v1/push", ""},
		{"http://127.0.0.1:3100/", "http://127.0.0.1:3100/loki/api/v1/push", ""},
		{"https://logs.example.com/custom/push", "https://logs.example.com/custom/push", ""},
		{"https://logs.example.com:443?x=1", "https://logs.example.com:443/loki/api/v1/push?x=1", ""},
		{"", "", "is required"},
		{"127.0.0.1:3100", "", "must start with http"},
		{"ftp://x", "", "must start with http"},
		{"http://", "", "has no host"},
		{"http://user:hunter2@loki:3100", "", "use basic_auth"},
		{"http://user:hunter2@loki:3100/%zz", "", "invalid URL"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := pushURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("pushURL(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("pushURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"valid basic", func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", Password: "p"} }, nil},
		{"valid bearer file", func(c *Config) { c.BearerTokenFile = tokenFile }, nil},
		{"no url", func(c *Config) { c.URL = "" }, []string{"loki.url: is required"}},
		{"basic without user", func(c *Config) { c.BasicAuth.Password = "p" }, []string{"loki.basic_auth.username: is required"}},
		{"password twice", func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", Password: "p", PasswordFile: tokenFile} },
			[]string{"loki.basic_auth.password_file: set either password or password_file"}},
		{"missing password file", func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", PasswordFile: missing} },
			[]string{`loki.basic_auth.password_file: cannot read "` + missing + `"`}},
		{"basic and bearer", func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", Password: "p"}; c.BearerToken = "t" },
			[]string{"loki.bearer_token: set either basic_auth or a bearer token"}},
		{"bearer twice", func(c *Config) { c.BearerToken = "t"; c.BearerTokenFile = tokenFile },
			[]string{"loki.bearer_token_file: set either bearer_token or bearer_token_file"}},
		{"missing bearer file", func(c *Config) { c.BearerTokenFile = missing }, []string{`loki.bearer_token_file: cannot read "` + missing}},
		{"tenant newline", func(c *Config) { c.TenantID = "a\nb" }, []string{"loki.tenant_id: must be a single line"}},
		{"tls", func(c *Config) { c.TLS = tlsconfig.Config{CertFile: tokenFile} }, []string{"loki.tls.key_file:"}},
		{"bad label", func(c *Config) { c.Labels = map[string]string{"app.kubernetes.io/name": "x"} },
			[]string{`loki.labels: invalid label name "app.kubernetes.io/name"`}},
		{"empty label value", func(c *Config) { c.Labels = map[string]string{"env": ""} }, []string{`loki.labels: label "env" has an empty value`}},
		{"reserved label", func(c *Config) { c.Labels = map[string]string{"__name__": "x"} }, []string{`loki.labels: label name "__name__" starts with "__"`}},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"loki.timeout: must be positive"}},
		{"concurrency", func(c *Config) { c.Concurrency = 1000 }, []string{"loki.concurrency: must be between 1 and 64"}},
		{"batch", func(c *Config) { c.Batch.MaxPendingBytes = 10 }, []string{"loki.batch.max_pending_bytes:"}},
		{"retry", func(c *Config) { c.Retry.MaxElapsed = -1 }, []string{"loki.retry.max_elapsed:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{URL: "http://127.0.0.1:3100"}
			c.ApplyDefaults()
			tc.mutate(&c)
			var p confval.Problems
			c.Validate(p.At("loki"))
			err := p.Err()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || p.Len() != len(tc.want) {
				t.Fatalf("problems = %v, want %d: %q", err, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "t0ken") {
				t.Errorf("problem reveals a secret: %v", err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{}, Settings{}); err == nil || !strings.Contains(err.Error(), "url: is required") {
		t.Fatalf("New(Config{}) = %v", err)
	}
}
