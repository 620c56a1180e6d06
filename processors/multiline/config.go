package multiline

import (
	"regexp"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Defaults applied by Config.ApplyDefaults.
const (
	DefaultMaxLines   = 500
	DefaultMaxBytes   = 256 << 10
	DefaultFlushAfter = 300 * time.Millisecond
)

// Config says how lines are joined into records.
//
// With StackTraces on (the default), crash output and stack traces of Go, Java, Python,
// Node.js, Ruby, PHP, .NET and Dart are joined, each with the logger's header line
// above it when that line has a level of warning or worse (and java.util.logging's
// two-line records); every other line is a record of its own. When Start is set too,
// a line continuing the pending trace is joined first, then a line beginning crash
// output begins a record, then a line matching Start begins one, and any other line
// continues the pending record. With StackTraces off, Start alone decides. A line that
// is a JSON object is never joined.
type Config struct {
	// Start is a regular expression matching the first line of a record.
	Start string `yaml:"start"`
	// StackTraces turns the built-in stack trace joining on; nil means true. It works
	// together with Start (see Config).
	StackTraces *bool `yaml:"stack_traces"`
	// MaxLines caps the lines of one record; a longer record is cut into several.
	MaxLines int `yaml:"max_lines"`
	// MaxBytes caps the size of one joined record (a single longer line is still
	// passed whole; the file reader caps lines).
	MaxBytes confval.ByteSize `yaml:"max_bytes"`
	// FlushAfter is how long a pending record waits for a continuation line before
	// it is emitted as it is. The joiner itself has no clock; its user applies it.
	FlushAfter time.Duration `yaml:"flush_after"`
}

// ApplyDefaults fills zero-valued fields with their defaults.
func (c *Config) ApplyDefaults() {
	if c.StackTraces == nil {
		t := true
		c.StackTraces = &t
	}
	if c.MaxLines == 0 {
		c.MaxLines = DefaultMaxLines
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.FlushAfter == 0 {
		c.FlushAfter = DefaultFlushAfter
	}
}

// Validate records every problem of c in p, with field paths relative to the
// multiline block. Call it after ApplyDefaults.
func (c *Config) Validate(p *confval.Problems) {
	if c.Start != "" {
		if _, err := regexp.Compile(c.Start); err != nil {
			p.Addf("start", "invalid regular expression: %v; write a Go (RE2) regular expression such as '^\\d{4}-\\d{2}-\\d{2}'", err)
		}
	}
	if c.MaxLines <= 0 {
		p.Addf("max_lines", "must be positive; got %d", c.MaxLines)
	}
	if c.MaxBytes <= 0 {
		p.Addf("max_bytes", "must be positive; got %s", c.MaxBytes)
	}
	if c.FlushAfter <= 0 {
		p.Addf("flush_after", "must be a positive duration such as \"300ms\"; got %s", c.FlushAfter)
	}
}

// Enabled reports whether c joins anything at all; when it does not, every line is a
// record of its own.
func (c *Config) Enabled() bool {
	return c.Start != "" || c.StackTraces == nil || *c.StackTraces
}
