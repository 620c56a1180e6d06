package sentryexporter

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c.Timeout != exporterhelper.DefaultTimeout || c.Concurrency != DefaultConcurrency || c.MaxPendingBytes != DefaultMaxPendingBytes ||
		c.Retry.InitialInterval != exporterhelper.DefaultInitialInterval || c.Retry.MaxRetryAfter != exporterhelper.DefaultMaxRetryAfter {
		t.Errorf("defaults %+v", c)
	}
	c.DSN = "https://" + secretish + "@o1.ingest.sentry.io/1"
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Errorf("defaults with a DSN do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := Config{DSN: confval.Secret("https://" + secretish + "@o1.ingest.sentry.io/1")}
		c.ApplyDefaults()
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"no dsn", func(c *Config) { c.DSN = "" }, []string{"sentry.dsn: is required"}},
		{"bad dsn", func(c *Config) { c.DSN = confval.Secret("https://" + secretish + "@o1.ingest.sentry.io/x") }, []string{"sentry.dsn: does not end with a numeric project id"}},
		{"tls on plaintext", func(c *Config) {
			c.DSN = confval.Secret("http://" + secretish + "@sentry.internal/1")
			c.TLS = tlsconfig.Config{ServerName: "sentry"}
		}, []string{"sentry.tls: is set but dsn http://<key>@sentry.internal/1 is plaintext"}},
		{"concurrency", func(c *Config) { c.Concurrency = MaxConcurrency + 1 }, []string{"sentry.concurrency: must be between 1 and 16, got 17"}},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"sentry.timeout: must be positive"}},
		{"pending", func(c *Config) { c.MaxPendingBytes = -1 }, []string{"sentry.max_pending_bytes: must be positive"}},
		{"retry", func(c *Config) { c.Retry.MaxElapsed = -time.Second }, []string{"sentry.retry.max_elapsed: must not be negative"}},
		{"several at once", func(c *Config) { c.DSN = ""; c.Concurrency = -1 }, []string{"sentry.dsn:", "sentry.concurrency:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			var p confval.Problems
			c.Validate(p.At("sentry"))
			err := p.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no problem reported")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secretish) {
				t.Errorf("problems reveal the key: %q", err)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{DSN: confval.Secret("https://" + secretish + "@h/x")}, Settings{}, nil)
	if err == nil || !confval.IsConfigError(err) {
		t.Fatalf("New = %v, want a configuration error", err)
	}
	if strings.Contains(err.Error(), secretish) {
		t.Errorf("error reveals the key: %q", err)
	}
}
