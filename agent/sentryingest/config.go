package sentryingest

import (
	"net"

	"github.com/outrider-dev/outrider/internal/confval"
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
}

// Defaults and limits.
const (
	DefaultListen                            = "127.0.0.1:4319"
	DefaultPublicKey        confval.Secret   = "outrider-local"
	DefaultMaxEnvelopeBytes confval.ByteSize = 1 << 20
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
