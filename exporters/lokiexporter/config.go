package lokiexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/secretfile"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

// PushPath is appended to a configured URL that has no path.
const PushPath = "/loki/api/v1/push"

// Config is the configuration of one Loki exporter.
type Config struct {
	// URL is Loki's base or push URL, e.g. http://127.0.0.1:3100. PushPath is appended
	// when the URL has no path.
	URL string `yaml:"url"`
	// TenantID is sent as X-Scope-OrgID, for multi-tenant Loki.
	TenantID string `yaml:"tenant_id"`
	// BasicAuth authenticates with HTTP basic auth.
	BasicAuth BasicAuth `yaml:"basic_auth"`
	// BearerToken authenticates with "Authorization: Bearer".
	BearerToken confval.Secret `yaml:"bearer_token"`
	// BearerTokenFile holds the bearer token; it is re-read when it changes, so a
	// rotated token is used without a restart.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// TLS configures the connection to an https URL. The CA bundle and the client
	// certificate are read again when their files change.
	TLS tlsconfig.Config `yaml:"tls"`
	// CredentialSources says where the credential and tls files come from, such as
	// {/etc/outrider-creds/loki-auth/password: 'Secret "loki-auth" key "password"'};
	// a 401 or 403 from Loki names them. The injector writes it.
	CredentialSources secretfile.Sources `yaml:"credential_sources"`
	// Labels are static labels added to every stream. A stream's own label of the same
	// name wins.
	Labels map[string]string `yaml:"labels"`
	// Timeout bounds each push request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Batch controls request size and buffering; defaults max_bytes 512KiB
	// (DefaultBatchMaxBytes), max_wait 1s, max_pending_bytes 2MiB
	// (DefaultMaxPendingBytes, or twice max_bytes when that is more).
	Batch exporterhelper.BatchConfig `yaml:"batch"`
	// Retry controls retries; defaults 250ms to 30s, until shutdown.
	Retry exporterhelper.RetryConfig `yaml:"retry"`
	// Concurrency is the number of pushes in flight at once; default 2.
	Concurrency int `yaml:"concurrency"`
	// StructuredMetadata says whether trace_id, span_id, request_id and the other
	// record metadata are sent as Loki structured metadata: StructuredMetadataAuto
	// (default), StructuredMetadataOn or StructuredMetadataOff. Without it, the IDs are
	// written into the line (see lineWithIDs).
	StructuredMetadata string `yaml:"structured_metadata"`
}

// Values of Config.StructuredMetadata.
const (
	// StructuredMetadataAuto sends structured metadata until Loki answers that it is
	// disallowed (Loki 2.x, or 3.x with limits_config.allow_structured_metadata
	// false); the refused entries are then sent again with the IDs in the line, and
	// so is everything after, until Loki is asked again (ReprobeInterval) or the
	// exporter is rebuilt by a reload.
	StructuredMetadataAuto = "auto"
	// StructuredMetadataOn always sends structured metadata: entries Loki refuses for
	// it are dropped and counted (reason metadata_disallowed).
	StructuredMetadataOn = "on"
	// StructuredMetadataOff never sends structured metadata: the IDs go in the line.
	StructuredMetadataOff = "off"
)

// BasicAuth is HTTP basic authentication. Username and UsernameFile are exclusive, as
// are Password and PasswordFile; the files are re-read when they change.
type BasicAuth struct {
	Username     string         `yaml:"username"`
	UsernameFile string         `yaml:"username_file"`
	Password     confval.Secret `yaml:"password"`
	PasswordFile string         `yaml:"password_file"`
}

func (b *BasicAuth) isSet() bool { return *b != BasicAuth{} }

// Defaults of the Loki exporter's batching, smaller than the shared ones: what is
// pending (the records, and the request being encoded and compressed) is most of the
// agent's heap while it ships a backlog, and a sidecar's memory is paid in every pod.
// A request of 512KiB costs no more CPU per line than one of 1MiB; the pending budget
// keeps both workers busy while the next request fills.
const (
	DefaultBatchMaxBytes   confval.ByteSize = 512 << 10
	DefaultMaxPendingBytes confval.ByteSize = 2 << 20
)

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	if c.Batch.MaxBytes == 0 {
		c.Batch.MaxBytes = DefaultBatchMaxBytes
	}
	if c.Batch.MaxPendingBytes == 0 {
		c.Batch.MaxPendingBytes = max(DefaultMaxPendingBytes, 2*c.Batch.MaxBytes)
	}
	if c.Timeout == 0 {
		c.Timeout = exporterhelper.DefaultTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = exporterhelper.DefaultConcurrency
	}
	if c.StructuredMetadata == "" {
		c.StructuredMetadata = StructuredMetadataAuto
	}
	c.Batch.ApplyDefaults()
	c.Retry.ApplyDefaults()
}

// Validate reports every problem with its field path relative to the exporter's block.
func (c *Config) Validate(p *confval.Problems) {
	if _, err := pushURL(c.URL); err != nil {
		p.Addf("url", "%v", err)
	}
	if c.BasicAuth.isSet() {
		ba := p.At("basic_auth")
		switch {
		case c.BasicAuth.Username == "" && c.BasicAuth.UsernameFile == "":
			ba.Addf("username", "is required with basic_auth (or username_file)")
		case c.BasicAuth.Username != "" && c.BasicAuth.UsernameFile != "":
			ba.Addf("username_file", "set either username or username_file, not both")
		case c.BasicAuth.UsernameFile != "":
			checkFile(ba, "username_file", c.BasicAuth.UsernameFile)
		}
		switch {
		case c.BasicAuth.Password != "" && c.BasicAuth.PasswordFile != "":
			ba.Addf("password_file", "set either password or password_file, not both")
		case c.BasicAuth.PasswordFile != "":
			checkFile(ba, "password_file", c.BasicAuth.PasswordFile)
		}
		if c.BearerToken != "" || c.BearerTokenFile != "" {
			p.Addf("bearer_token", "set either basic_auth or a bearer token, not both")
		}
	}
	switch {
	case c.BearerToken != "" && c.BearerTokenFile != "":
		p.Addf("bearer_token_file", "set either bearer_token or bearer_token_file, not both")
	case c.BearerTokenFile != "":
		checkFile(p, "bearer_token_file", c.BearerTokenFile)
	}
	if strings.ContainsAny(c.TenantID, "\r\n") {
		p.Addf("tenant_id", "must be a single line")
	}
	c.TLS.Validate(p.At("tls"))
	c.CredentialSources.Validate(p.At("credential_sources"), c.credentialFiles())
	for name, value := range c.Labels {
		switch {
		case value == "":
			p.Addf("labels", "label %q has an empty value; Loki treats an empty label as absent, so remove it or give it a value", name)
		case !validLabelName(name):
			p.Addf("labels", "invalid label name %q; use letters, digits and '_', not starting with a digit", name)
		case strings.HasPrefix(name, "__"):
			p.Addf("labels", "label name %q starts with \"__\", which Loki reserves", name)
		}
	}
	switch c.StructuredMetadata {
	case StructuredMetadataAuto, StructuredMetadataOn, StructuredMetadataOff:
	default:
		p.Addf("structured_metadata", "must be auto, on or off; got %q", c.StructuredMetadata)
	}
	exporterhelper.ValidateTimeout(p, "timeout", c.Timeout)
	exporterhelper.ValidateConcurrency(p, "concurrency", c.Concurrency)
	c.Batch.Validate(p.At("batch"))
	c.Retry.Validate(p.At("retry"))
}

func checkFile(p *confval.Problems, field, path string) {
	secretfile.CheckReadable(p, field, path)
}

// credentialFiles lists the files the exporter reads credentials and certificates
// from.
func (c *Config) credentialFiles() []string {
	return []string{c.BasicAuth.UsernameFile, c.BasicAuth.PasswordFile, c.BearerTokenFile, c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile}
}

// pushURL returns the push endpoint for a configured URL.
func pushURL(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("is required, e.g. http://127.0.0.1:3100")
	}
	if l := strings.ToLower(raw); !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
		return "", fmt.Errorf("URL must start with http:// or https://, e.g. http://127.0.0.1:3100")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, which may hold a password: report only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("invalid URL: %v", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("URL %q has no host", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("URL must not carry credentials; use basic_auth")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = PushPath
	}
	return u.String(), nil
}
