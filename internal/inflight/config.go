package inflight

import (
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Limits are a push receiver's load limits, inlined in its configuration block.
type Limits struct {
	// MaxInflightBytes bounds the memory of the requests being read, decoded and
	// stored at once, as the receiver estimates it from their sizes. Requests past it
	// wait up to Wait, then are answered 429 / RESOURCE_EXHAUSTED with a retry delay.
	MaxInflightBytes confval.ByteSize `yaml:"max_inflight_bytes"`
	// MaxConnections bounds the open connections of each endpoint; further
	// connections are closed at once.
	MaxConnections int `yaml:"max_connections"`
	// ReadTimeout bounds reading one request: HTTP headers and body, or a gRPC message.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a connection without requests for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Defaults shared by the receivers.
const (
	// DefaultMaxConnections is far more than one application opens to its sidecar,
	// and small enough that their buffers and goroutines stay within a few MiB.
	DefaultMaxConnections = 64
	DefaultReadTimeout    = 30 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	// Wait is how long a request waits for room in the limiter before it is refused.
	Wait = 5 * time.Second
	// CostFactor estimates a request's memory from its size: the body, the strings
	// decoding copies out of it, what is re-encoded from it, and the queue entry.
	// Decoding adds per-value estimates.
	CostFactor = 4
)

// ApplyDefaults fills zero-valued fields; maxRequest is the receiver's request size
// limit, of which MaxInflightBytes holds at least CostFactor times.
func (l *Limits) ApplyDefaults(inflight, maxRequest confval.ByteSize) {
	if l.MaxInflightBytes == 0 {
		l.MaxInflightBytes = max(inflight, CostFactor*maxRequest)
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
}

// Validate reports problems with field paths relative to the receiver's block;
// maxRequest and requestField name its request size limit.
func (l *Limits) Validate(p *confval.Problems, maxRequest confval.ByteSize, requestField string) {
	if l.MaxInflightBytes < CostFactor*maxRequest || l.MaxInflightBytes > 4<<30 {
		p.Addf("max_inflight_bytes", "must be at least %d times %s (%s), so that one request fits, and at most 4GiB; got %s",
			CostFactor, requestField, CostFactor*maxRequest, l.MaxInflightBytes)
	}
	if l.MaxConnections < 1 || l.MaxConnections > 100000 {
		p.Addf("max_connections", "must be between 1 and 100000, got %d", l.MaxConnections)
	}
	if l.ReadTimeout < time.Second || l.ReadTimeout > 10*time.Minute {
		p.Addf("read_timeout", "must be between 1s and 10m, got %s", l.ReadTimeout)
	}
	if l.IdleTimeout < time.Second {
		p.Addf("idle_timeout", "must be at least 1s, got %s", l.IdleTimeout)
	}
}

// WriteTimeout is the HTTP write timeout that goes with l: writing the answer may
// wait for room in the limiter and for the queue.
func (l *Limits) WriteTimeout() time.Duration { return l.ReadTimeout + Wait + 30*time.Second }

// HeaderTimeout is the time allowed for a request's headers (HTTP) or a
// connection's handshake (gRPC).
func (l *Limits) HeaderTimeout() time.Duration { return min(10*time.Second, l.ReadTimeout) }
