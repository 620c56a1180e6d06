package vault

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

// Auth methods, the values of auth.method.
const (
	MethodKubernetes = "kubernetes"
	MethodAppRole    = "approle"
	MethodJWT        = "jwt"
	MethodToken      = "token"
)

// Defaults used by ApplyDefaults.
const (
	DefaultMaxRequestsPerSecond = 10
	DefaultTimeout              = 30 * time.Second
	// DefaultKubernetesTokenPath is where Kubernetes mounts the pod's service-account
	// token.
	DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	// DefaultTokenSinkMode is the token sink's file mode: readable by its owner only.
	DefaultTokenSinkMode = "0400"
)

// Config is the configuration of the Vault client. Unset fields fall back to the
// environment variables the Vault CLI reads (VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT,
// VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY and,
// for the token method, VAULT_TOKEN) in ApplyDefaults.
type Config struct {
	// Address is Vault's URL, e.g. https://vault:8200; default $VAULT_ADDR.
	Address string `yaml:"address"`
	// Namespace is sent as X-Vault-Namespace (Vault Enterprise / HCP); default
	// $VAULT_NAMESPACE.
	Namespace string `yaml:"namespace"`
	// TLS configures HTTPS to Vault.
	TLS tlsconfig.Config `yaml:"tls"`
	// MaxRequestsPerSecond is a hard cap on HTTP requests to Vault from this client,
	// renewals, logins and retries included: requests are spaced at least
	// 1/MaxRequestsPerSecond apart, so retries can never become a storm; only a new
	// client's first 4 requests (its first login and render) go out at once. Default
	// 10.
	MaxRequestsPerSecond float64 `yaml:"max_requests_per_second"`
	// Timeout bounds each HTTP request to Vault (not the time spent waiting for the
	// rate cap); default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Auth says how to log in.
	Auth AuthConfig `yaml:"auth"`
	// TokenSink, when set, writes the client's Vault token to a file after every login,
	// for other tools in the pod. Without it the token is kept in memory only.
	TokenSink TokenSinkConfig `yaml:"token_sink"`
}

// AuthConfig says how the client logs in to Vault. Which fields apply depends on
// Method; setting a field the method does not use is a validation error.
type AuthConfig struct {
	// Method is kubernetes, approle, jwt or token.
	Method string `yaml:"method"`
	// MountPath is where the auth method is enabled, without the auth/ prefix: login
	// goes to auth/<mount_path>/login. Default: the method's name. Not used by token.
	MountPath string `yaml:"mount_path"`
	// Role is the Vault role to log in as: required for kubernetes, optional for jwt
	// (the mount's default_role otherwise), and only used in messages for approle
	// (whose role_id already names it).
	Role string `yaml:"role"`
	// TokenPath is the file holding the JWT to log in with, re-read at every login:
	// for kubernetes the service-account token (default DefaultKubernetesTokenPath),
	// for jwt required.
	TokenPath string `yaml:"token_path"`
	// RoleIDFile holds the AppRole role_id (approle, required).
	RoleIDFile string `yaml:"role_id_file"`
	// SecretIDFile holds the AppRole secret_id, re-read at every login (approle;
	// optional for roles with bind_secret_id=false).
	SecretIDFile string `yaml:"secret_id_file"`
	// SecretIDWrapped says SecretIDFile holds a response-wrapping token around the
	// secret_id (`vault write -wrap-ttl=… -f auth/approle/role/<role>/secret-id`).
	// It is unwrapped once, after checking that it was made by this mount's
	// secret-id endpoint, and the secret_id is kept in memory; a new wrapping token
	// written to the file is unwrapped at the next login.
	SecretIDWrapped bool `yaml:"secret_id_wrapped"`
	// TokenFile holds a Vault token (token method), re-read at every login so an
	// external rotation is picked up.
	TokenFile string `yaml:"token_file"`
	// Token is a Vault token (token method); default $VAULT_TOKEN when neither
	// token_file nor token is set.
	Token confval.Secret `yaml:"token"`
}

// TokenSinkConfig writes the client's Vault token to a file. The token is never
// written to disk unless Path is set.
type TokenSinkConfig struct {
	// Path is the absolute path of the file; it is replaced atomically after each
	// login.
	Path string `yaml:"path"`
	// Mode is the file's permission bits in octal, e.g. "0400" (the default) or
	// "0440". A world-accessible mode is refused.
	Mode string `yaml:"mode"`
}

// ApplyDefaults fills zero-valued fields from the environment and the defaults above.
func (c *Config) ApplyDefaults() {
	setFromEnv(&c.Address, "VAULT_ADDR")
	setFromEnv(&c.Namespace, "VAULT_NAMESPACE")
	setFromEnv(&c.TLS.CAFile, "VAULT_CACERT")
	setFromEnv(&c.TLS.CertFile, "VAULT_CLIENT_CERT")
	setFromEnv(&c.TLS.KeyFile, "VAULT_CLIENT_KEY")
	setFromEnv(&c.TLS.ServerName, "VAULT_TLS_SERVER_NAME")
	if v := os.Getenv("VAULT_SKIP_VERIFY"); v != "" && !c.TLS.InsecureSkipVerify {
		c.TLS.InsecureSkipVerify, _ = strconv.ParseBool(v) // Validate reports a bad value
	}
	if c.MaxRequestsPerSecond == 0 {
		c.MaxRequestsPerSecond = DefaultMaxRequestsPerSecond
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	a := &c.Auth
	if a.MountPath == "" && a.Method != MethodToken {
		a.MountPath = a.Method
	}
	switch a.Method {
	case MethodKubernetes:
		if a.TokenPath == "" {
			a.TokenPath = DefaultKubernetesTokenPath
		}
	case MethodToken:
		if a.TokenFile == "" && a.Token == "" {
			a.Token = confval.Secret(os.Getenv("VAULT_TOKEN"))
		}
	}
	if c.TokenSink.Path != "" && c.TokenSink.Mode == "" {
		c.TokenSink.Mode = DefaultTokenSinkMode
	}
}

func setFromEnv(field *string, name string) {
	if *field == "" {
		*field = os.Getenv(name)
	}
}

// Validate reports every problem with its field path relative to the vault block.
func (c *Config) Validate(p *confval.Problems) {
	if v := os.Getenv("VAULT_SKIP_VERIFY"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			p.Addf("tls.insecure_skip_verify", "VAULT_SKIP_VERIFY=%q is not a boolean; use true or false", v)
		}
	}
	if err := checkAddress(c.Address); err != nil {
		p.Addf("address", "%v", err)
	}
	if strings.ContainsAny(c.Namespace, "\r\n") {
		p.Addf("namespace", "must be a single line")
	}
	c.TLS.Validate(p.At("tls"))
	if !(c.MaxRequestsPerSecond > 0) || c.MaxRequestsPerSecond > 1e6 {
		p.Addf("max_requests_per_second", "must be a positive number of requests per second (at most 1e6), e.g. 10")
	}
	if c.Timeout <= 0 {
		p.Addf("timeout", "must be positive, e.g. 30s")
	}
	c.Auth.validate(p.At("auth"))
	c.TokenSink.validate(p.At("token_sink"))
}

func checkAddress(raw string) error {
	if raw == "" {
		return fmt.Errorf("required (or set VAULT_ADDR), e.g. https://vault:8200")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://, e.g. https://vault:8200", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials; configure auth instead")
	}
	return nil
}

// fieldUse lists, for each method-specific field, the methods that use it.
var fieldUse = []struct {
	field   string
	methods []string
	isSet   func(*AuthConfig) bool
}{
	{"mount_path", []string{MethodKubernetes, MethodAppRole, MethodJWT}, func(a *AuthConfig) bool { return a.MountPath != "" }},
	{"role", []string{MethodKubernetes, MethodAppRole, MethodJWT}, func(a *AuthConfig) bool { return a.Role != "" }},
	{"token_path", []string{MethodKubernetes, MethodJWT}, func(a *AuthConfig) bool { return a.TokenPath != "" }},
	{"role_id_file", []string{MethodAppRole}, func(a *AuthConfig) bool { return a.RoleIDFile != "" }},
	{"secret_id_file", []string{MethodAppRole}, func(a *AuthConfig) bool { return a.SecretIDFile != "" }},
	{"secret_id_wrapped", []string{MethodAppRole}, func(a *AuthConfig) bool { return a.SecretIDWrapped }},
	{"token_file", []string{MethodToken}, func(a *AuthConfig) bool { return a.TokenFile != "" }},
	{"token", []string{MethodToken}, func(a *AuthConfig) bool { return a.Token != "" }},
}

// validate checks the auth block. Credential files are not opened here: they are
// read at every login (and often mounted only when the pod starts), and a missing
// file fails the login with the field's name.
func (a *AuthConfig) validate(p *confval.Problems) {
	switch a.Method {
	case MethodKubernetes, MethodAppRole, MethodJWT, MethodToken:
	case "":
		p.Addf("method", "required: one of kubernetes, approle, jwt, token (for development, method: token with VAULT_TOKEN set)")
		return
	default:
		p.Addf("method", "unknown method %q: use kubernetes, approle, jwt or token", a.Method)
		return
	}
	for _, f := range fieldUse {
		if f.isSet(a) && !slices.Contains(f.methods, a.Method) {
			p.Addf(f.field, "not used by the %s method (used by %s); remove it", a.Method, strings.Join(f.methods, ", "))
		}
	}
	if a.Method != MethodToken {
		switch m := a.MountPath; {
		case strings.HasPrefix(m, "auth/"):
			p.Addf("mount_path", "%q: write the mount path without the auth/ prefix, e.g. %q", m, strings.TrimPrefix(m, "auth/"))
		case strings.HasPrefix(m, "/") || strings.HasSuffix(m, "/"):
			p.Addf("mount_path", "%q: write it without leading or trailing slashes, e.g. %q", m, strings.Trim(m, "/"))
		case strings.ContainsAny(m, " \t\r\n?#"):
			p.Addf("mount_path", "%q is not a valid mount path", m)
		}
	}
	switch a.Method {
	case MethodKubernetes:
		if a.Role == "" {
			p.Addf("role", "required by the kubernetes method: the Vault role bound to this pod's service account")
		}
		checkAbs(p, "token_path", a.TokenPath)
	case MethodJWT:
		if a.TokenPath == "" {
			p.Addf("token_path", "required by the jwt method: the file holding the JWT to log in with")
		}
		checkAbs(p, "token_path", a.TokenPath)
	case MethodAppRole:
		if a.RoleIDFile == "" {
			p.Addf("role_id_file", "required by the approle method: the file holding the role_id")
		}
		if a.SecretIDWrapped && a.SecretIDFile == "" {
			p.Addf("secret_id_file", "required when secret_id_wrapped is true: the file holding the wrapping token")
		}
		checkAbs(p, "role_id_file", a.RoleIDFile)
		checkAbs(p, "secret_id_file", a.SecretIDFile)
	case MethodToken:
		switch {
		case a.TokenFile != "" && a.Token != "":
			p.Addf("token_file", "set either token_file or token, not both")
		case a.TokenFile == "" && a.Token == "":
			p.Addf("token_file", "the token method needs token_file, token or $VAULT_TOKEN")
		}
		checkAbs(p, "token_file", a.TokenFile)
	}
}

func checkAbs(p *confval.Problems, field, path string) {
	if path != "" && !filepath.IsAbs(path) {
		p.Addf(field, "%q must be an absolute path", path)
	}
}

func (s *TokenSinkConfig) validate(p *confval.Problems) {
	if s.Path == "" {
		if s.Mode != "" {
			p.Addf("path", "required when token_sink is set")
		}
		return
	}
	if !filepath.IsAbs(s.Path) {
		p.Addf("path", "%q must be an absolute path", s.Path)
	}
	if _, err := ParseMode(s.Mode); err != nil {
		p.Addf("mode", "%v", err)
	}
}

// ParseMode parses a file mode written in octal ("0400", "440", "0o440") and refuses
// modes that give others (the last digit) any access, or set bits beyond 0777.
func ParseMode(s string) (os.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0o"), "0O")
	if t == "" {
		return 0, fmt.Errorf("empty mode; write it in octal, e.g. \"0400\"")
	}
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid mode %q; write it in octal, e.g. \"0400\"", s)
	}
	if n > 0o777 {
		return 0, fmt.Errorf("mode %q has bits beyond 0777; use permission bits only, e.g. \"0400\"", s)
	}
	if n&0o007 != 0 {
		return 0, fmt.Errorf("mode %q gives other users access to the Vault token; use \"0400\" or \"0440\"", s)
	}
	if n&0o400 == 0 {
		return 0, fmt.Errorf("mode %q does not let the owner read the token; use \"0400\"", s)
	}
	return os.FileMode(n), nil
}
