package otlpreceiver

import (
	"net"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/inflight"
)

// Config configures the OTLP receiver.
type Config struct {
	// GRPC is the OTLP/gRPC endpoint; default listen 127.0.0.1:4317.
	GRPC Endpoint `yaml:"grpc"`
	// HTTP is the OTLP/HTTP endpoint; default listen 127.0.0.1:4318.
	HTTP Endpoint `yaml:"http"`
	// MaxRequestBytes bounds one request, compressed and decompressed; default 4MiB.
	// Larger requests are refused (HTTP 413, gRPC RESOURCE_EXHAUSTED) without being
	// read further.
	MaxRequestBytes confval.ByteSize `yaml:"max_request_bytes"`
	// MaxValueDepth bounds how deeply maps and lists nest in attribute values and log
	// bodies (a list of strings is 1, a map holding a list is 2); default 32. Deeper
	// requests are refused (HTTP 400, gRPC INVALID_ARGUMENT) before they are decoded.
	MaxValueDepth int `yaml:"max_value_depth"`
	// Limits bound the load: max_inflight_bytes (default 16MiB, both endpoints
	// together), max_connections (64 per endpoint), read_timeout (30s),
	// idle_timeout (2m).
	inflight.Limits `yaml:",inline"`
	// Resource configures the resource attributes added to what the application sends.
	Resource ResourceConfig `yaml:"resource"`
}

// Endpoint is one listener.
type Endpoint struct {
	// Listen is host:port. "off" disables the endpoint.
	Listen string `yaml:"listen"`
}

// ResourceConfig configures enrichment. The agent's identity (service, namespace, pod,
// pod UID, container, node, environment) is always offered; Attributes adds more.
type ResourceConfig struct {
	// Attributes are extra resource attributes, e.g. {"cloud.region": "eu-west-1"}.
	Attributes map[string]string `yaml:"attributes"`
	// Overwrite replaces attributes the application set itself. By default the
	// application's values win (an unset service.name, or the SDK's
	// "unknown_service" placeholder, counts as not set).
	Overwrite bool `yaml:"overwrite"`
}

// Defaults.
const (
	DefaultGRPCListen                       = "127.0.0.1:4317"
	DefaultHTTPListen                       = "127.0.0.1:4318"
	DefaultMaxRequestBytes confval.ByteSize = 4 << 20
	// DefaultMaxValueDepth is far deeper than SDKs and log libraries nest values (a
	// structured log body is rarely more than a few levels), and shallow enough that
	// every recursive walk over values stays small.
	DefaultMaxValueDepth = 32
	// DefaultMaxInflightBytes holds one request of the default size (estimated at
	// about four times its size) or several smaller ones: with 64 concurrent 4 MB
	// requests the agent's peak RSS measured 67-76 MiB, within a 96 MiB sidecar.
	DefaultMaxInflightBytes confval.ByteSize = 16 << 20
	// Off disables an endpoint.
	Off = "off"
)

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	if c.GRPC.Listen == "" {
		c.GRPC.Listen = DefaultGRPCListen
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxValueDepth == 0 {
		c.MaxValueDepth = DefaultMaxValueDepth
	}
	c.Limits.ApplyDefaults(DefaultMaxInflightBytes, c.MaxRequestBytes)
}

// Validate reports problems with field paths relative to the receiver block.
func (c *Config) Validate(p *confval.Problems) {
	for _, e := range []struct {
		field string
		ep    Endpoint
	}{{"grpc.listen", c.GRPC}, {"http.listen", c.HTTP}} {
		if e.ep.Listen == Off {
			continue
		}
		if _, port, err := net.SplitHostPort(e.ep.Listen); err != nil || port == "" {
			p.Addf(e.field, "must be host:port (e.g. 127.0.0.1:4317) or %q, got %q", Off, e.ep.Listen)
		}
	}
	if c.GRPC.Listen == Off && c.HTTP.Listen == Off {
		p.Addf("", "both grpc and http are off; remove the receiver instead")
	}
	if c.GRPC.Listen != Off && c.GRPC.Listen == c.HTTP.Listen && !AnyPort(c.GRPC.Listen) {
		p.Addf("http.listen", "is the same address as grpc.listen (%s); give each its own port", c.GRPC.Listen)
	}
	if c.MaxRequestBytes < 1024 || c.MaxRequestBytes > 64<<20 {
		p.Addf("max_request_bytes", "must be between 1KiB and 64MiB, got %s", c.MaxRequestBytes)
	}
	if c.MaxValueDepth < 1 || c.MaxValueDepth > 1000 {
		p.Addf("max_value_depth", "must be between 1 and 1000, got %d", c.MaxValueDepth)
	}
	c.Limits.Validate(p, c.MaxRequestBytes, "max_request_bytes")
	for k := range c.Resource.Attributes {
		if k == "" {
			p.Addf("resource.attributes", "has an empty attribute name")
		}
	}
}

// AnyPort reports whether addr asks for any free port (port 0), which two listeners
// may share in configuration.
func AnyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
