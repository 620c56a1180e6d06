package secrets

import (
	"fmt"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

// Defaults applied by Config.ApplyDefaults.
const (
	DefaultPollInterval = 30 * time.Second
	// MinPollInterval is the shortest poll_interval accepted.
	MinPollInterval     = time.Second
	DefaultRevokeGrace  = 30 * time.Second
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = time.Minute
	maxRevokeGrace      = 24 * time.Hour
	maxRetryInterval    = 24 * time.Hour

	// DefaultRedactRetention and DefaultRedactMaxRetained are redact_retention's and
	// redact_max_retained's defaults.
	DefaultRedactRetention   = 24 * time.Hour
	DefaultRedactMaxRetained = 1000
	minRedactRetention       = time.Minute
	maxRedactRetention       = 720 * time.Hour
	maxRedactMaxRetained     = 100000
)

// Config is the secrets section: where Vault is, how to keep secrets fresh, and the
// files to render.
type Config struct {
	// Vault configures the client: address, TLS, auth, request-rate cap.
	Vault vault.Config `yaml:"vault"`
	// PollInterval is how often every KV secret is checked for a change: one
	// metadata request per KV v2 secret, one read per KV v1 (or other lease-less)
	// secret. Default 30s, minimum 1s. It also caps the delay between retries while
	// Vault is unreachable, so files are fresh again within one interval after Vault
	// returns.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RevokeGrace is how long the old lease is kept after the application reloaded
	// with rotated credentials (connections finishing with the old ones), before it
	// is revoked. Default 30s.
	RevokeGrace time.Duration `yaml:"revoke_grace"`
	// RedactRetention is how long a secret value stays scrubbed from telemetry after
	// it stopped being current (rotated, no longer used by any file, or held by a
	// syncer a reload replaced): a log backlog read after an outage may still carry
	// it. Default 24h (a day-long backend outage, the previous file of a daily log
	// rotation); between 1m and 720h.
	RedactRetention time.Duration `yaml:"redact_retention"`
	// RedactMaxRetained bounds how many such old values are kept; past it the oldest
	// go first (counted in outrider_redact_retained_dropped_total). Default 1000
	// (a day of 5-minute database leases); between 1 and 100000.
	RedactMaxRetained int `yaml:"redact_max_retained"`
	// Retry sets the jittered exponential backoff used when Vault fails. Requests
	// never exceed vault.max_requests_per_second whatever these say.
	Retry RetryConfig `yaml:"retry"`
	// Reload is how the application is told to reload, for every file without its
	// own reload block. Changes to several such files close together cost one
	// reload.
	Reload reload.Config `yaml:"reload"`
	// Files are the files to render.
	Files []File `yaml:"files"`
}

// RetryConfig is the backoff between attempts when Vault fails: full jitter,
// starting at InitialInterval and doubling up to MaxInterval (and never longer than
// poll_interval for a secret that is polled).
type RetryConfig struct {
	// InitialInterval is the first (and shortest) delay; default 1s.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps the delay; default 1m.
	MaxInterval time.Duration `yaml:"max_interval"`
}

// File is one rendered file: render.FileConfig's fields, plus an optional reload
// that replaces the section's for this file.
type File struct {
	render.FileConfig `yaml:",inline"`
	// Reload, when set, is how the application is told that this file changed,
	// instead of the section's reload.
	Reload *reload.Config `yaml:"reload"`
}

// ApplyDefaults fills zero-valued fields with their defaults, including those of the
// Vault client, the reloads and every file.
func (c *Config) ApplyDefaults() {
	c.Vault.ApplyDefaults()
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RevokeGrace == 0 {
		c.RevokeGrace = DefaultRevokeGrace
	}
	if c.RedactRetention == 0 {
		c.RedactRetention = DefaultRedactRetention
	}
	if c.RedactMaxRetained == 0 {
		c.RedactMaxRetained = DefaultRedactMaxRetained
	}
	if c.Retry.InitialInterval == 0 {
		c.Retry.InitialInterval = DefaultRetryInitial
	}
	if c.Retry.MaxInterval == 0 {
		c.Retry.MaxInterval = max(DefaultRetryMax, c.Retry.InitialInterval)
	}
	c.Reload.ApplyDefaults()
	for i := range c.Files {
		c.Files[i].FileConfig.ApplyDefaults()
		if c.Files[i].Reload != nil {
			c.Files[i].Reload.ApplyDefaults()
		}
	}
}

// Enabled reports whether there is anything to render: without files the section is
// off and no Vault client is made.
func (c *Config) Enabled() bool { return len(c.Files) > 0 }

// Validate records every problem in p, with field paths relative to the section
// (vault.address, files[2].path …). Call it after ApplyDefaults. A section without
// files is disabled and only checked for an auth block without files.
func (c *Config) Validate(p *confval.Problems) {
	if !c.Enabled() {
		if c.Vault.Auth.Method != "" {
			p.Addf("files", "vault is configured but there are no files to render; add files (path plus template or source), or remove the section")
		}
		return
	}
	c.Vault.Validate(p.At("vault"))
	if c.PollInterval < MinPollInterval {
		p.Addf("poll_interval", "must be at least %s (got %s); KV v2 costs one request per secret per interval", MinPollInterval, c.PollInterval)
	}
	if c.RevokeGrace < 0 || c.RevokeGrace > maxRevokeGrace {
		p.Addf("revoke_grace", "must be between 0s and %s (got %s), e.g. 30s", maxRevokeGrace, c.RevokeGrace)
	}
	if c.RedactRetention < minRedactRetention || c.RedactRetention > maxRedactRetention {
		p.Addf("redact_retention", "must be between %s and %s (got %s), e.g. 24h: how long a rotated value is still scrubbed from logs read late", minRedactRetention, maxRedactRetention, c.RedactRetention)
	}
	if c.RedactMaxRetained < 1 || c.RedactMaxRetained > maxRedactMaxRetained {
		p.Addf("redact_max_retained", "must be between 1 and %d (got %d), e.g. 1000", maxRedactMaxRetained, c.RedactMaxRetained)
	}
	switch r := c.Retry; {
	case r.InitialInterval <= 0:
		p.Addf("retry.initial_interval", "must be positive, e.g. 1s (got %s)", r.InitialInterval)
	case r.MaxInterval < r.InitialInterval:
		p.Addf("retry.max_interval", "must be at least retry.initial_interval (%s); got %s", r.InitialInterval, r.MaxInterval)
	case r.MaxInterval > maxRetryInterval:
		p.Addf("retry.max_interval", "must be at most %s (got %s), e.g. 1m", maxRetryInterval, r.MaxInterval)
	}
	c.Reload.Validate(p.At("reload"))
	seen := make(map[string]int, len(c.Files))
	for i := range c.Files {
		f := &c.Files[i]
		fp := p.At(fmt.Sprintf("files[%d]", i))
		f.FileConfig.Validate(fp)
		if f.Reload != nil {
			f.Reload.Validate(fp.At("reload"))
		}
		if f.Path == "" {
			continue
		}
		if j, dup := seen[f.Path]; dup {
			fp.Addf("path", "%q is also files[%d]'s path; every file needs its own path", f.Path, j)
			continue
		}
		seen[f.Path] = i
	}
}
