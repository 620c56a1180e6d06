package exporterhelper

import (
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	want := Config{
		Batch:       BatchConfig{MaxBytes: 1 << 20, MaxWait: time.Second, MaxPendingBytes: 4 << 20},
		Retry:       RetryConfig{InitialInterval: 250 * time.Millisecond, MaxInterval: 30 * time.Second, MaxRetryAfter: 5 * time.Minute},
		Concurrency: 2,
		Timeout:     10 * time.Second,
	}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestConfigDefaultsFollowSetValues(t *testing.T) {
	c := Config{Batch: BatchConfig{MaxBytes: 16 << 20}, Retry: RetryConfig{InitialInterval: time.Minute}}
	c.ApplyDefaults()
	if c.Batch.MaxPendingBytes != 32<<20 {
		t.Errorf("max_pending_bytes = %s, want 2×max_bytes", c.Batch.MaxPendingBytes)
	}
	if c.Retry.MaxInterval != time.Minute {
		t.Errorf("max_interval = %s, want raised to initial_interval", c.Retry.MaxInterval)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config { var c Config; c.ApplyDefaults(); return c }
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"negative max_bytes", func(c *Config) { c.Batch.MaxBytes = -1 }, []string{"batch.max_bytes: must be positive"}},
		{"zero max_wait", func(c *Config) { c.Batch.MaxWait = 0 }, []string{"batch.max_wait: must be positive"}},
		{"pending below max", func(c *Config) { c.Batch.MaxPendingBytes = 1024 }, []string{"batch.max_pending_bytes: 1KiB is less than max_bytes (1MiB)"}},
		{"interval order", func(c *Config) { c.Retry.MaxInterval = time.Millisecond }, []string{"retry.max_interval: 1ms is less than initial_interval"}},
		{"negative elapsed", func(c *Config) { c.Retry.MaxElapsed = -time.Second }, []string{"retry.max_elapsed: must not be negative"}},
		{"zero retry after", func(c *Config) { c.Retry.MaxRetryAfter = 0 }, []string{"retry.max_retry_after: must be positive"}},
		{"concurrency", func(c *Config) { c.Concurrency = 65 }, []string{"concurrency: must be between 1 and 64"}},
		{"timeout", func(c *Config) { c.Timeout = -1 }, []string{"timeout: must be positive"}},
		{"several", func(c *Config) { c.Concurrency = -1; c.Retry.InitialInterval = -1 }, []string{"concurrency:", "retry.initial_interval:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			var p confval.Problems
			c.Validate(&p)
			err := p.Err()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no problem, want %q", tc.want)
			}
			if p.Len() != len(tc.want) {
				t.Errorf("%d problems (%v), want %d", p.Len(), err, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %q", err, w)
				}
			}
		})
	}
}
