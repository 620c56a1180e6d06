package sentryreceiver

import (
	"net"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/inflight"
)

// Config configures the local Sentry endpoint.
type Config struct {
	// Listen is host:port; default 127.0.0.1:4319.
	Listen string `yaml:"listen"`
	// PublicKey is the key applications put in their DSN
	// (http://<public_key>@127.0.0.1:4319/<project_id>); requests with another key,
	// or none, are refused. Default "outrider-local"; the injector generates one per
	// pod. Letters, digits and "-._~" only, so that it fits in a DSN as is.
	PublicKey confval.Secret `yaml:"public_key"`
	// ProjectID is the project ID accepted in the path; "" accepts any.
	ProjectID string `yaml:"project_id"`
	// MaxEnvelopeBytes bounds one request, compressed and decompressed; default 1MiB.
	// Each event or transaction is further limited to 1MiB (Sentry's own limit) and an
	// envelope to 100 items.
	MaxEnvelopeBytes confval.ByteSize `yaml:"max_envelope_bytes"`
	// MaxJSONDepth bounds the nesting of objects and arrays in the envelope's headers
	// and JSON items, and in a store request's event; default 64. Deeper requests
	// are refused with 400 before anything decodes them.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// Limits bound the load: max_inflight_bytes (default 8MiB), max_connections
	// (64), read_timeout (30s), idle_timeout (2m).
	inflight.Limits `yaml:",inline"`
}

// Defaults and limits.
const (
	DefaultListen                            = "127.0.0.1:4319"
	DefaultPublicKey        confval.Secret   = "outrider-local"
	DefaultMaxEnvelopeBytes confval.ByteSize = 1 << 20
	// DefaultMaxJSONDepth leaves an event's own structure (about 8 levels down to a
	// stack frame's variables) 56 levels for what the application puts in it; SDKs
	// cut their data far shallower (normalizeDepth 3 in JavaScript, 10 in Python).
	DefaultMaxJSONDepth = 64
	// DefaultMaxInflightBytes lets two envelopes of the default size be processed at
	// once (each estimated at about four times its size plus its JSON values).
	DefaultMaxInflightBytes confval.ByteSize = 8 << 20
	// MaxEventBytes bounds one event or transaction item, as Sentry does.
	MaxEventBytes = 1 << 20
	// MaxItems bounds the items of one envelope.
	MaxItems = 100

	minEnvelopeBytes confval.ByteSize = 4 << 10
	maxEnvelopeBytes confval.ByteSize = 100 << 20
)

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.PublicKey == "" {
		c.PublicKey = DefaultPublicKey
	}
	if c.MaxEnvelopeBytes == 0 {
		c.MaxEnvelopeBytes = DefaultMaxEnvelopeBytes
	}
	if c.MaxJSONDepth == 0 {
		c.MaxJSONDepth = DefaultMaxJSONDepth
	}
	c.Limits.ApplyDefaults(DefaultMaxInflightBytes, c.MaxEnvelopeBytes)
}

// Validate reports problems with field paths relative to the endpoint's block.
func (c *Config) Validate(p *confval.Problems) {
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		p.Addf("listen", "must be host:port (e.g. %s), got %q", DefaultListen, c.Listen)
	}
	switch key := c.PublicKey.Reveal(); {
	case key == "":
		p.Addf("public_key", "is empty; set the key applications use in their DSN (default %q)", DefaultPublicKey.Reveal())
	case len(key) > 128:
		p.Addf("public_key", "is %d characters long; use at most 128", len(key))
	case !dsnSafe(key):
		p.Addf("public_key", "may hold only letters, digits and \"-._~\" so that it fits in a DSN")
	}
	if c.ProjectID != "" && (len(c.ProjectID) > 64 || !dsnSafe(c.ProjectID)) {
		p.Addf("project_id", "must be a Sentry project ID such as \"42\" (letters, digits, \"-._~\"), got %q", c.ProjectID)
	}
	if c.MaxEnvelopeBytes < minEnvelopeBytes || c.MaxEnvelopeBytes > maxEnvelopeBytes {
		p.Addf("max_envelope_bytes", "must be between %s and %s, got %s", minEnvelopeBytes, maxEnvelopeBytes, c.MaxEnvelopeBytes)
	}
	if c.MaxJSONDepth < 8 || c.MaxJSONDepth > 1000 {
		p.Addf("max_json_depth", "must be between 8 and 1000, got %d", c.MaxJSONDepth)
	}
	c.Limits.Validate(p, c.MaxEnvelopeBytes, "max_envelope_bytes")
}

// dsnSafe reports whether s is made of URL-unreserved characters only.
func dsnSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}
