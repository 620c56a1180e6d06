package otlpexporter

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/secretfile"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

// Protocols, the values of Config.Protocol.
const (
	// ProtocolGRPC is OTLP over gRPC (Tempo's port 4317).
	ProtocolGRPC = "grpc"
	// ProtocolHTTP is OTLP/HTTP with protobuf bodies (Tempo's port 4318).
	ProtocolHTTP = "http"
)

// Compressions, the values of Config.Compression.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// TracesPath is appended to a trace exporter's OTLP/HTTP endpoint that has no path.
const TracesPath = "/v1/traces"

// MetricsPath is appended to a metrics exporter's OTLP/HTTP endpoint that has no
// path. Prometheus serves OTLP at /api/v1/otlp/v1/metrics and Mimir at
// /otlp/v1/metrics: give their URL in full.
const MetricsPath = "/v1/metrics"

// DefaultMaxSpans is the default of Config.MaxSpans.
const DefaultMaxSpans = 8192

// DefaultMaxDataPoints is the default of MetricsConfig.MaxDataPoints.
const DefaultMaxDataPoints = 8192

// Config is the configuration of one OTLP trace exporter.
type Config struct {
	// Endpoint is the backend's URL: http://host:port for plaintext, https://host:port
	// for TLS, with either protocol. For protocol grpc it has no path and needs a port
	// (e.g. http://tempo:4317); for protocol http a URL without a path gets TracesPath
	// appended (http://tempo:4318 posts to http://tempo:4318/v1/traces).
	Endpoint string `yaml:"endpoint"`
	// Protocol is "grpc" (the default) or "http" (OTLP/HTTP, protobuf).
	Protocol string `yaml:"protocol"`
	// Headers are sent with every request, e.g. X-Scope-OrgID for a multi-tenant
	// Tempo or Authorization. Their values are secrets: never logged or printed. For
	// gRPC the names are sent in lower case, as gRPC metadata requires.
	Headers map[string]confval.Secret `yaml:"headers"`
	// HeadersFromFiles are headers whose values are read from files, such as the keys
	// of a mounted Kubernetes Secret: {Authorization: /etc/outrider-creds/tempo/token}.
	// Each file is read again when it changes, so a rotated value is used without a
	// restart. A header is set either here or in headers.
	HeadersFromFiles map[string]string `yaml:"headers_from_files"`
	// Compression is "gzip" (the default) or "none".
	Compression string `yaml:"compression"`
	// TLS configures the connection to an https endpoint. The CA bundle and the client
	// certificate are read again when their files change.
	TLS tlsconfig.Config `yaml:"tls"`
	// CredentialSources says where the files of headers_from_files and tls come from,
	// such as {/etc/outrider-creds/tempo/token: 'Secret "tempo" key "token"'}; a
	// refusal by the backend names them. The injector writes it.
	CredentialSources secretfile.Sources `yaml:"credential_sources"`
	// Timeout bounds each export attempt; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Batch controls request size and buffering; defaults max_bytes 1MiB (of
	// uncompressed spans), max_wait 1s, max_pending_bytes 4MiB.
	Batch exporterhelper.BatchConfig `yaml:"batch"`
	// MaxSpans caps the spans of one request, alongside batch.max_bytes; default 8192.
	// A batch that arrived with more spans than this is sent alone, never split.
	MaxSpans int `yaml:"max_spans"`
	// Retry controls retries; defaults 250ms to 30s, until shutdown.
	Retry exporterhelper.RetryConfig `yaml:"retry"`
	// Concurrency is the number of requests in flight at once; default 2.
	Concurrency int `yaml:"concurrency"`
}

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	if c.Protocol == "" {
		c.Protocol = ProtocolGRPC
	}
	if c.Compression == "" {
		c.Compression = CompressionGzip
	}
	if c.Timeout == 0 {
		c.Timeout = exporterhelper.DefaultTimeout
	}
	if c.MaxSpans == 0 {
		c.MaxSpans = DefaultMaxSpans
	}
	if c.Concurrency == 0 {
		c.Concurrency = exporterhelper.DefaultConcurrency
	}
	c.Batch.ApplyDefaults()
	c.Retry.ApplyDefaults()
}

// Validate reports every problem with its field path relative to the exporter's block.
func (c *Config) Validate(p *confval.Problems) { c.validate(p, tracesSignal) }

func (c *Config) validate(p *confval.Problems, sig *signal) {
	protocolOK := true
	switch c.Protocol {
	case ProtocolGRPC, ProtocolHTTP:
	default:
		protocolOK = false
		p.Addf("protocol", "must be %q or %q (OTLP/HTTP with protobuf), got %q", ProtocolGRPC, ProtocolHTTP, c.Protocol)
	}
	if protocolOK {
		ep, err := parseEndpoint(c.Endpoint, c.Protocol, sig)
		switch {
		case err != nil:
			p.Addf("endpoint", "%v", err)
		case !ep.tls && !c.TLS.IsZero():
			p.Addf("tls", "is set but endpoint %s is plaintext; use https:// to connect with TLS", c.Endpoint)
		}
	}
	switch c.Compression {
	case CompressionGzip, CompressionNone:
	default:
		p.Addf("compression", "must be %q or %q, got %q", CompressionGzip, CompressionNone, c.Compression)
	}
	validateHeaders(p.At("headers"), c.Headers)
	validateHeaderFiles(p.At("headers_from_files"), c.HeadersFromFiles, c.Headers)
	c.TLS.Validate(p.At("tls"))
	c.CredentialSources.Validate(p.At("credential_sources"), c.credentialFiles())
	exporterhelper.ValidateTimeout(p, "timeout", c.Timeout)
	exporterhelper.ValidateConcurrency(p, "concurrency", c.Concurrency)
	if c.MaxSpans <= 0 {
		p.Addf(sig.maxField, "must be positive, got %d", c.MaxSpans)
	}
	c.Batch.Validate(p.At("batch"))
	c.Retry.Validate(p.At("retry"))
}

// reservedHeaders are set by the exporter or the transport and cannot be configured.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true,
	"transfer-encoding": true, "connection": true, "host": true, "te": true,
	"user-agent": true, "upgrade": true, "keep-alive": true,
}

// validateHeaders checks names and values; values are secrets and never appear in a
// message.
func validateHeaders(p *confval.Problems, headers map[string]confval.Secret) {
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		lower := strings.ToLower(name)
		switch {
		case !validHeaderName(name):
			p.Addf("", "invalid header name %q; use letters, digits, '-', '_' and '.'", name)
			continue
		case reservedHeaders[lower] || strings.HasPrefix(lower, "grpc-"):
			p.Addf("", "header %q is set by the exporter itself and cannot be configured", name)
			continue
		}
		if prev, ok := seen[lower]; ok {
			p.Addf("", "headers %q and %q differ only in case; header names are case-insensitive, keep one", prev, name)
			continue
		}
		seen[lower] = name
		if !validHeaderValue(headers[name].Reveal()) {
			p.Addf("", "the value of header %q holds a line break or another control character", name)
		}
	}
}

// validHeaderName reports whether s is an HTTP token (RFC 9110), which is also a valid
// gRPC metadata key once lower-cased, except for the characters gRPC disallows.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// endpoint is a parsed Config.Endpoint.
type endpoint struct {
	tls bool
	// target is host:port, for gRPC.
	target string
	// url is the full POST URL, for OTLP/HTTP.
	url string
}

// parseEndpoint checks a configured endpoint of sig for protocol and returns where
// to send.
func parseEndpoint(raw, protocol string, sig *signal) (endpoint, error) {
	example := sig.exampleGRPC
	if protocol == ProtocolHTTP {
		example = sig.exampleHTTP
	}
	if raw == "" {
		return endpoint{}, fmt.Errorf("is required, e.g. %s (https:// for TLS)", example)
	}
	lower := strings.ToLower(raw)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		return endpoint{}, fmt.Errorf("%q must start with http:// (plaintext) or https:// (TLS), e.g. %s", raw, example)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL: report only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return endpoint{}, fmt.Errorf("invalid URL: %v", err)
	}
	if u.User != nil {
		return endpoint{}, errors.New("must not carry credentials; set them in headers (e.g. Authorization)")
	}
	if u.Hostname() == "" {
		return endpoint{}, fmt.Errorf("%q has no host, e.g. %s", raw, example)
	}
	ep := endpoint{tls: u.Scheme == "https"}
	if protocol == ProtocolGRPC {
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return endpoint{}, fmt.Errorf("%q has a path; a gRPC endpoint is only scheme, host and port (e.g. %s), or set protocol: http for an OTLP/HTTP URL", raw, example)
		}
		if u.Port() == "" {
			return endpoint{}, fmt.Errorf("%q has no port; OTLP gRPC listens on 4317 by default, e.g. %s (or https://host:443)", raw, example)
		}
		ep.target = u.Host
		return ep, nil
	}
	if u.Fragment != "" {
		return endpoint{}, fmt.Errorf("%q has a #fragment; remove it", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = sig.path
	}
	ep.url = u.String()
	return ep, nil
}

// MetricsConfig is the configuration of the OTLP metrics exporter
// (exporters.otlp_metrics): metrics the application pushed to the receiver, sent to a
// Prometheus or Mimir OTLP endpoint, or to anything else that takes OTLP metrics.
type MetricsConfig struct {
	// Endpoint is the backend's URL, used as it is when it has a path: for
	// Prometheus (started with --web.enable-otlp-receiver)
	// http://prometheus:9090/api/v1/otlp/v1/metrics, for Mimir
	// http://mimir:8080/otlp/v1/metrics. A URL without a path gets MetricsPath
	// appended (an OpenTelemetry Collector). https:// for TLS.
	Endpoint string `yaml:"endpoint"`
	// Protocol is "http" (OTLP/HTTP with protobuf, the default: Prometheus and Mimir
	// take only that) or "grpc" (a Collector).
	Protocol string `yaml:"protocol"`
	// Headers are sent with every request, e.g. X-Scope-OrgID for a multi-tenant
	// Mimir, or Authorization. Their values are secrets: never logged or printed.
	Headers map[string]confval.Secret `yaml:"headers"`
	// HeadersFromFiles are headers whose values are read from files, such as the keys
	// of a mounted Kubernetes Secret: {Authorization: /etc/outrider-creds/tempo/token}.
	// Each file is read again when it changes, so a rotated value is used without a
	// restart. A header is set either here or in headers.
	HeadersFromFiles map[string]string `yaml:"headers_from_files"`
	// Compression is "gzip" (the default) or "none".
	Compression string `yaml:"compression"`
	// TLS configures the connection to an https endpoint. The CA bundle and the client
	// certificate are read again when their files change.
	TLS tlsconfig.Config `yaml:"tls"`
	// CredentialSources says where the files of headers_from_files and tls come from,
	// such as {/etc/outrider-creds/tempo/token: 'Secret "tempo" key "token"'}; a
	// refusal by the backend names them. The injector writes it.
	CredentialSources secretfile.Sources `yaml:"credential_sources"`
	// Timeout bounds each export attempt; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Batch controls request size and buffering; defaults max_bytes 1MiB (of
	// uncompressed metrics), max_wait 1s, max_pending_bytes 4MiB.
	Batch exporterhelper.BatchConfig `yaml:"batch"`
	// MaxDataPoints caps the data points of one request, alongside batch.max_bytes;
	// default 8192. A request the application sent with more is sent alone.
	MaxDataPoints int `yaml:"max_data_points"`
	// Retry controls retries; defaults 250ms to 30s, until shutdown.
	Retry exporterhelper.RetryConfig `yaml:"retry"`
	// Concurrency is the number of requests in flight at once; default 2.
	Concurrency int `yaml:"concurrency"`
}

// ApplyDefaults fills zero-valued fields.
func (c *MetricsConfig) ApplyDefaults() {
	if c.Protocol == "" {
		c.Protocol = ProtocolHTTP
	}
	if c.MaxDataPoints == 0 {
		c.MaxDataPoints = DefaultMaxDataPoints
	}
	tc := c.config()
	tc.ApplyDefaults()
	*c = metricsConfigOf(tc)
}

// Validate reports every problem with its field path relative to the exporter's block.
func (c *MetricsConfig) Validate(p *confval.Problems) {
	tc := c.config()
	tc.validate(p, metricsSignal)
}

// config is c as the exporter's shared Config, MaxSpans holding MaxDataPoints.
func (c *MetricsConfig) config() Config {
	return Config{
		Endpoint: c.Endpoint, Protocol: c.Protocol, Headers: c.Headers, Compression: c.Compression,
		TLS: c.TLS, Timeout: c.Timeout, Batch: c.Batch, MaxSpans: c.MaxDataPoints, Retry: c.Retry,
		Concurrency: c.Concurrency, HeadersFromFiles: c.HeadersFromFiles, CredentialSources: c.CredentialSources,
	}
}

func metricsConfigOf(c Config) MetricsConfig {
	return MetricsConfig{
		Endpoint: c.Endpoint, Protocol: c.Protocol, Headers: c.Headers, Compression: c.Compression,
		TLS: c.TLS, Timeout: c.Timeout, Batch: c.Batch, MaxDataPoints: c.MaxSpans, Retry: c.Retry,
		Concurrency: c.Concurrency, HeadersFromFiles: c.HeadersFromFiles, CredentialSources: c.CredentialSources,
	}
}
