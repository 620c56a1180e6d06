package diskqueue

import (
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Fsync policies, the values of Config.Fsync.
const (
	// FsyncAlways fsyncs before Append returns; concurrent appenders share one fsync.
	FsyncAlways = "always"
	// FsyncInterval fsyncs written segments every FsyncInterval in the background.
	FsyncInterval = "interval"
	// FsyncNever leaves writing back to the operating system.
	FsyncNever = "never"
)

// Defaults and limits of Config.
const (
	DefaultMaxSize           confval.ByteSize = 256 << 20
	DefaultSegmentSize       confval.ByteSize = 8 << 20
	DefaultFsync                              = FsyncInterval
	DefaultFsyncInterval                      = time.Second
	DefaultQuarantineMaxSize confval.ByteSize = 64 << 20

	// MinSegmentSize and MaxSegmentSize bound segment_size. The upper bound keeps
	// every length within the record's 32-bit length field.
	MinSegmentSize confval.ByteSize = 4 << 10
	MaxSegmentSize confval.ByteSize = 1 << 30
)

// Config is the configuration of one disk queue.
type Config struct {
	// MaxSize bounds the bytes of all segment files; an Append that would pass it
	// fails with ErrFull. 0 means DefaultMaxSize.
	MaxSize confval.ByteSize `yaml:"max_size"`
	// SegmentSize is the size at which the queue starts a new segment file, and so
	// also bounds the largest entry (SegmentSize minus 24 bytes of framing). 0 means
	// DefaultSegmentSize.
	SegmentSize confval.ByteSize `yaml:"segment_size"`
	// Fsync is FsyncAlways, FsyncInterval or FsyncNever; "" means DefaultFsync.
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the period of background fsyncs with FsyncInterval; 0 means
	// DefaultFsyncInterval.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// QuarantineMaxSize bounds the bytes of the entries set aside in the quarantine
	// directory (see Queue.Quarantine); past it the oldest are deleted. 0 means
	// DefaultQuarantineMaxSize.
	QuarantineMaxSize confval.ByteSize `yaml:"quarantine_max_size"`
}

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.Fsync == "" {
		c.Fsync = DefaultFsync
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = DefaultFsyncInterval
	}
	if c.QuarantineMaxSize == 0 {
		c.QuarantineMaxSize = DefaultQuarantineMaxSize
	}
}

// Validate reports problems with field paths relative to the queue's block.
func (c *Config) Validate(p *confval.Problems) {
	segOK := true
	switch {
	case c.SegmentSize < MinSegmentSize:
		p.Addf("segment_size", "%s is too small; use at least %s (the default is %s)", c.SegmentSize, MinSegmentSize, DefaultSegmentSize)
		segOK = false
	case c.SegmentSize > MaxSegmentSize:
		p.Addf("segment_size", "%s is too large; use at most %s (the default is %s)", c.SegmentSize, MaxSegmentSize, DefaultSegmentSize)
		segOK = false
	}
	switch {
	case c.MaxSize <= 0:
		p.Addf("max_size", "must be positive, got %d", int64(c.MaxSize))
	case segOK && c.MaxSize < 2*c.SegmentSize:
		p.Addf("max_size", "%s is less than twice segment_size (%s); raise max_size to at least %s or lower segment_size",
			c.MaxSize, c.SegmentSize, 2*c.SegmentSize)
	}
	switch c.Fsync {
	case FsyncAlways, FsyncInterval, FsyncNever:
	default:
		p.Addf("fsync", "unknown policy %q; use %q, %q or %q", c.Fsync, FsyncAlways, FsyncInterval, FsyncNever)
	}
	if c.FsyncInterval <= 0 {
		p.Addf("fsync_interval", "must be positive, got %s", c.FsyncInterval)
	}
	if c.QuarantineMaxSize < 0 {
		p.Addf("quarantine_max_size", "must be positive, got %d", int64(c.QuarantineMaxSize))
	}
}
