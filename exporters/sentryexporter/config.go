package sentryexporter

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

// Defaults of Config.
const (
	// DefaultConcurrency is the default of Config.Concurrency.
	DefaultConcurrency = 2
	// MaxConcurrency is the most envelopes Config.Concurrency may send at once.
	MaxConcurrency = 16
	// DefaultMaxPendingBytes is the default of Config.MaxPendingBytes.
	DefaultMaxPendingBytes confval.ByteSize = 4 << 20
)

// Config is the configuration of one Sentry exporter.
type Config struct {
	// DSN is the Sentry project's DSN, where envelopes go:
	// https://<public_key>@o123.ingest.sentry.io/<project_id> for sentry.io, or
	// http(s)://<public_key>@host[:port][/path]/<project_id> for a self-hosted Sentry.
	// It holds the project's key: it is never logged or printed.
	DSN confval.Secret `yaml:"dsn"`
	// DSNFile is a file holding the DSN, such as a Kubernetes Secret mounted into the
	// sidecar; it is read when the configuration is loaded (a reload reads it again).
	// Exclusive with DSN.
	DSNFile string `yaml:"dsn_file"`
	// TLS configures the connection to an https DSN.
	TLS tlsconfig.Config `yaml:"tls"`
	// Timeout bounds each request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry controls retries after 5xx answers and connection failures; defaults
	// 250ms to 30s, until shutdown. Sentry's rate limits are waited out without
	// counting as retries (see the package documentation).
	Retry exporterhelper.RetryConfig `yaml:"retry"`
	// Concurrency is the number of envelopes sent at once, between 1 and 16;
	// default 2.
	Concurrency int `yaml:"concurrency"`
	// MaxPendingBytes bounds the envelope bytes accepted but not yet delivered or
	// dropped, including envelopes held back by a rate limit; ExportEnvelope blocks at
	// the bound. Default 4MiB. An envelope larger than the bound is still taken when
	// nothing else is pending.
	MaxPendingBytes confval.ByteSize `yaml:"max_pending_bytes"`
}

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = exporterhelper.DefaultTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	c.Retry.ApplyDefaults()
}

// Validate reports every problem with its field path relative to the exporter's block.
// Messages never show the DSN's key.
func (c *Config) Validate(p *confval.Problems) {
	raw, field, err := c.rawDSN()
	if err != nil {
		p.Addf(field, "%v", err)
	} else if d, err := parseDSN(raw); err != nil {
		p.Addf(field, "%v", err)
	} else if d.scheme != "https" && !c.TLS.IsZero() {
		p.Addf("tls", "is set but dsn %s is plaintext http; use an https:// DSN to connect with TLS", d.redacted())
	}
	c.TLS.Validate(p.At("tls"))
	exporterhelper.ValidateTimeout(p, "timeout", c.Timeout)
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		p.Addf("concurrency", "must be between 1 and %d, got %d", MaxConcurrency, c.Concurrency)
	}
	if c.MaxPendingBytes <= 0 {
		p.Addf("max_pending_bytes", "must be positive, got %d", int64(c.MaxPendingBytes))
	}
	c.Retry.Validate(p.At("retry"))
}

// maxDSNFileBytes bounds what is read of DSNFile; a DSN is a short URL.
const maxDSNFileBytes = 4 << 10

// rawDSN returns the DSN, from DSN or read from DSNFile, and the field it came from.
// Errors never show the file's content.
func (c *Config) rawDSN() (raw, field string, err error) {
	if c.DSNFile == "" {
		return c.DSN.Reveal(), "dsn", nil
	}
	if c.DSN != "" {
		return "", "dsn_file", errors.New("set either dsn or dsn_file, not both")
	}
	f, err := os.Open(c.DSNFile)
	if err != nil {
		return "", "dsn_file", fmt.Errorf("cannot read %q: %w", c.DSNFile, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDSNFileBytes+1))
	switch {
	case err != nil:
		return "", "dsn_file", fmt.Errorf("cannot read %q: %w", c.DSNFile, err)
	case len(data) > maxDSNFileBytes:
		return "", "dsn_file", fmt.Errorf("%q is larger than %d bytes; it must hold only the DSN", c.DSNFile, maxDSNFileBytes)
	}
	return strings.TrimSpace(string(data)), "dsn_file", nil
}
