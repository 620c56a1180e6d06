package exporterhelper

import (
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// BatchConfig controls how items are grouped into requests.
type BatchConfig struct {
	// MaxBytes is the most item bytes in one request; 0 means DefaultMaxBytes. A single
	// item larger than this is sent alone.
	MaxBytes confval.ByteSize `yaml:"max_bytes"`
	// MaxWait is how long a request waits for more items after its first one before it
	// is sent anyway; 0 means DefaultMaxWait.
	MaxWait time.Duration `yaml:"max_wait"`
	// MaxPendingBytes bounds the item bytes accepted but not yet delivered or dropped
	// (buffered, queued and in flight). Add blocks at this bound. 0 means
	// DefaultMaxPendingBytes.
	MaxPendingBytes confval.ByteSize `yaml:"max_pending_bytes"`
}

// Batching defaults.
const (
	DefaultMaxBytes        confval.ByteSize = 1 << 20
	DefaultMaxWait                          = time.Second
	DefaultMaxPendingBytes confval.ByteSize = 4 << 20
)

// ApplyDefaults fills zero-valued fields.
func (c *BatchConfig) ApplyDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = max(DefaultMaxPendingBytes, 2*c.MaxBytes)
	}
}

// Validate reports problems with field paths relative to the batch block.
func (c *BatchConfig) Validate(p *confval.Problems) {
	if c.MaxBytes <= 0 {
		p.Addf("max_bytes", "must be positive, got %d", int64(c.MaxBytes))
	}
	if c.MaxWait <= 0 {
		p.Addf("max_wait", "must be positive, got %s", c.MaxWait)
	}
	switch {
	case c.MaxPendingBytes <= 0:
		p.Addf("max_pending_bytes", "must be positive, got %d", int64(c.MaxPendingBytes))
	case c.MaxBytes > 0 && c.MaxPendingBytes < c.MaxBytes:
		p.Addf("max_pending_bytes", "%s is less than max_bytes (%s); allow at least one full request, better several (one per worker plus one filling)",
			c.MaxPendingBytes, c.MaxBytes)
	}
}

// RetryConfig controls retries of failed pushes.
type RetryConfig struct {
	// InitialInterval is the first delay after a failure; 0 means
	// DefaultInitialInterval. Delays grow exponentially, with jitter.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps the delay between attempts; 0 means DefaultMaxInterval.
	MaxInterval time.Duration `yaml:"max_interval"`
	// MaxElapsed is how long a request is retried before it is dropped; 0 (the default)
	// retries until shutdown, for sources whose files are the buffer.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
	// MaxRetryAfter caps the delay a backend may ask for with Retry-After; 0 means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// Retry defaults.
const (
	DefaultInitialInterval = 250 * time.Millisecond
	DefaultMaxInterval     = 30 * time.Second
	DefaultMaxRetryAfter   = 5 * time.Minute
)

// ApplyDefaults fills zero-valued fields.
func (c *RetryConfig) ApplyDefaults() {
	if c.InitialInterval == 0 {
		c.InitialInterval = DefaultInitialInterval
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = max(DefaultMaxInterval, c.InitialInterval)
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
}

// Validate reports problems with field paths relative to the retry block.
func (c *RetryConfig) Validate(p *confval.Problems) {
	if c.InitialInterval <= 0 {
		p.Addf("initial_interval", "must be positive, got %s", c.InitialInterval)
	}
	switch {
	case c.MaxInterval <= 0:
		p.Addf("max_interval", "must be positive, got %s", c.MaxInterval)
	case c.InitialInterval > 0 && c.MaxInterval < c.InitialInterval:
		p.Addf("max_interval", "%s is less than initial_interval (%s)", c.MaxInterval, c.InitialInterval)
	}
	if c.MaxElapsed < 0 {
		p.Addf("max_elapsed", "must not be negative, got %s; 0 retries until shutdown", c.MaxElapsed)
	}
	if c.MaxRetryAfter <= 0 {
		p.Addf("max_retry_after", "must be positive, got %s", c.MaxRetryAfter)
	}
}

// Config is the configuration of a whole Sender. Exporters embed its parts in their
// own configuration under the same keys.
type Config struct {
	Batch BatchConfig `yaml:"batch"`
	Retry RetryConfig `yaml:"retry"`
	// Concurrency is the number of requests pushed at once; 0 means
	// DefaultConcurrency.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds each push attempt; 0 means DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// Sender defaults.
const (
	DefaultConcurrency = 2
	DefaultTimeout     = 10 * time.Second
	// MaxConcurrency is the most workers a Sender accepts.
	MaxConcurrency = 64
)

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	c.Batch.ApplyDefaults()
	c.Retry.ApplyDefaults()
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate reports problems with field paths relative to the exporter's block.
func (c *Config) Validate(p *confval.Problems) {
	c.Batch.Validate(p.At("batch"))
	c.Retry.Validate(p.At("retry"))
	ValidateConcurrency(p, "concurrency", c.Concurrency)
	ValidateTimeout(p, "timeout", c.Timeout)
}

// ValidateConcurrency checks a concurrency setting, for exporters that keep it as a
// field of their own.
func ValidateConcurrency(p *confval.Problems, field string, n int) {
	if n < 1 || n > MaxConcurrency {
		p.Addf(field, "must be between 1 and %d, got %d", MaxConcurrency, n)
	}
}

// ValidateTimeout checks a per-attempt timeout, for exporters that keep it as a field
// of their own.
func ValidateTimeout(p *confval.Problems, field string, d time.Duration) {
	if d <= 0 {
		p.Addf(field, "must be positive, got %s", d)
	}
}
