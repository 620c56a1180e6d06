package vault

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

// vaultEnv lists every environment variable ApplyDefaults reads.
var vaultEnv = []string{"VAULT_ADDR", "VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY",
	"VAULT_TLS_SERVER_NAME", "VAULT_SKIP_VERIFY", "VAULT_TOKEN"}

// clearVaultEnv unsets the Vault environment for the test, so the machine's
// environment cannot leak in.
func clearVaultEnv(t *testing.T) {
	t.Helper()
	for _, k := range vaultEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func problems(c Config) string {
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		return err.Error()
	}
	return ""
}

func TestApplyDefaultsFromEnvironment(t *testing.T) {
	clearVaultEnv(t)
	t.Setenv("VAULT_ADDR", "https://vault.example:8200")
	t.Setenv("VAULT_NAMESPACE", "team-a")
	t.Setenv("VAULT_CACERT", "/etc/ca.pem")
	t.Setenv("VAULT_CLIENT_CERT", "/etc/c.pem")
	t.Setenv("VAULT_CLIENT_KEY", "/etc/k.pem")
	t.Setenv("VAULT_TLS_SERVER_NAME", "vault.internal")
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_TOKEN", "s.envtoken")

	var c Config
	c.Auth.Method = MethodToken
	c.ApplyDefaults()
	if c.Address != "https://vault.example:8200" || c.Namespace != "team-a" {
		t.Errorf("address/namespace = %q/%q", c.Address, c.Namespace)
	}
	if c.TLS.CAFile != "/etc/ca.pem" || c.TLS.CertFile != "/etc/c.pem" || c.TLS.KeyFile != "/etc/k.pem" ||
		c.TLS.ServerName != "vault.internal" || !c.TLS.InsecureSkipVerify {
		t.Errorf("tls = %+v", c.TLS)
	}
	if c.Auth.Token.Reveal() != "s.envtoken" {
		t.Errorf("token method did not take $VAULT_TOKEN")
	}
	if c.MaxRequestsPerSecond != DefaultMaxRequestsPerSecond || c.Timeout != DefaultTimeout {
		t.Errorf("rate/timeout = %v/%v", c.MaxRequestsPerSecond, c.Timeout)
	}
	if c.Auth.MountPath != "" {
		t.Errorf("token method got mount_path %q", c.Auth.MountPath)
	}

	// Explicit values win over the environment.
	c = Config{Address: "http://127.0.0.1:8200", Namespace: "mine", Auth: AuthConfig{Method: MethodToken, TokenFile: "/t"}}
	c.ApplyDefaults()
	if c.Address != "http://127.0.0.1:8200" || c.Namespace != "mine" || c.Auth.Token != "" {
		t.Errorf("explicit values overridden: %q %q token set=%t", c.Address, c.Namespace, c.Auth.Token != "")
	}
}

func TestApplyDefaultsPerMethod(t *testing.T) {
	clearVaultEnv(t)
	for _, tc := range []struct {
		method, mount, tokenPath string
	}{
		{MethodKubernetes, "kubernetes", DefaultKubernetesTokenPath},
		{MethodAppRole, "approle", ""},
		{MethodJWT, "jwt", ""},
	} {
		t.Run(tc.method, func(t *testing.T) {
			c := Config{Auth: AuthConfig{Method: tc.method}}
			c.ApplyDefaults()
			if c.Auth.MountPath != tc.mount || c.Auth.TokenPath != tc.tokenPath {
				t.Errorf("mount_path %q token_path %q; want %q %q", c.Auth.MountPath, c.Auth.TokenPath, tc.mount, tc.tokenPath)
			}
		})
	}
	c := Config{TokenSink: TokenSinkConfig{Path: "/vault/token"}}
	c.ApplyDefaults()
	if c.TokenSink.Mode != "0400" {
		t.Errorf("token sink mode default %q", c.TokenSink.Mode)
	}
}

func TestValidate(t *testing.T) {
	clearVaultEnv(t)
	base := func() Config {
		return Config{Address: "https://vault:8200", Auth: AuthConfig{Method: MethodKubernetes, Role: "web"}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the problems; none means valid
	}{
		{"valid kubernetes", func(*Config) {}, nil},
		{"valid approle", func(c *Config) {
			c.Auth = AuthConfig{Method: MethodAppRole, RoleIDFile: "/r", SecretIDFile: "/s", SecretIDWrapped: true, Role: "web"}
		}, nil},
		{"valid jwt without role", func(c *Config) { c.Auth = AuthConfig{Method: MethodJWT, TokenPath: "/jwt"} }, nil},
		{"valid token file", func(c *Config) { c.Auth = AuthConfig{Method: MethodToken, TokenFile: "/t"} }, nil},
		{"missing address", func(c *Config) { c.Address = "" }, []string{"address: required (or set VAULT_ADDR)"}},
		{"bad scheme", func(c *Config) { c.Address = "vault:8200" }, []string{"address: ", "http:// or https://"}},
		{"credentials in address", func(c *Config) { c.Address = "https://u:p@vault:8200" }, []string{"address: must not carry credentials"}},
		{"missing method", func(c *Config) { c.Auth = AuthConfig{} }, []string{"auth.method: required: one of kubernetes, approle, jwt, token"}},
		{"unknown method", func(c *Config) { c.Auth.Method = "ldap" }, []string{`auth.method: unknown method "ldap"`}},
		{"kubernetes without role", func(c *Config) { c.Auth.Role = "" }, []string{"auth.role: required by the kubernetes method"}},
		{"mount with auth prefix", func(c *Config) { c.Auth.MountPath = "auth/k8s" }, []string{`auth.mount_path: "auth/k8s": write the mount path without the auth/ prefix, e.g. "k8s"`}},
		{"mount with slash", func(c *Config) { c.Auth.MountPath = "k8s/" }, []string{"auth.mount_path: ", "without leading or trailing slashes"}},
		{"field of another method", func(c *Config) { c.Auth.RoleIDFile = "/r"; c.Auth.Token = "x" }, []string{
			"auth.role_id_file: not used by the kubernetes method (used by approle); remove it",
			"auth.token: not used by the kubernetes method (used by token)"}},
		{"relative token path", func(c *Config) { c.Auth.TokenPath = "token" }, []string{`auth.token_path: "token" must be an absolute path`}},
		{"jwt without token path", func(c *Config) { c.Auth = AuthConfig{Method: MethodJWT, MountPath: "jwt"} }, []string{"auth.token_path: required by the jwt method"}},
		{"approle without role_id", func(c *Config) { c.Auth = AuthConfig{Method: MethodAppRole, MountPath: "approle"} }, []string{"auth.role_id_file: required by the approle method"}},
		{"wrapped without file", func(c *Config) {
			c.Auth = AuthConfig{Method: MethodAppRole, MountPath: "approle", RoleIDFile: "/r", SecretIDWrapped: true}
		}, []string{"auth.secret_id_file: required when secret_id_wrapped is true"}},
		{"token without token", func(c *Config) { c.Auth = AuthConfig{Method: MethodToken} }, []string{"auth.token_file: the token method needs token_file, token or $VAULT_TOKEN"}},
		{"token both", func(c *Config) { c.Auth = AuthConfig{Method: MethodToken, TokenFile: "/t", Token: "x"} }, []string{"auth.token_file: set either token_file or token, not both"}},
		{"token with mount", func(c *Config) { c.Auth = AuthConfig{Method: MethodToken, TokenFile: "/t", MountPath: "token"} }, []string{"auth.mount_path: not used by the token method"}},
		{"rate", func(c *Config) { c.MaxRequestsPerSecond = -1 }, []string{"max_requests_per_second: must be a positive number"}},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"timeout: must be positive"}},
		{"sink world readable", func(c *Config) { c.TokenSink = TokenSinkConfig{Path: "/vault/token", Mode: "0644"} }, []string{`token_sink.mode: mode "0644" gives other users access`}},
		{"sink relative", func(c *Config) { c.TokenSink = TokenSinkConfig{Path: "token", Mode: "0400"} }, []string{`token_sink.path: "token" must be an absolute path`}},
		{"sink mode without path", func(c *Config) { c.TokenSink = TokenSinkConfig{Mode: "0400"} }, []string{"token_sink.path: required when token_sink is set"}},
		{"tls key without cert", func(c *Config) { c.TLS.KeyFile = "/nonexistent/key.pem" }, []string{"tls.cert_file: key_file is set but cert_file is not", "tls.key_file: cannot read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			c.ApplyDefaults()
			got := problems(c)
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("unexpected problems:\n%s", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems lack %q; got:\n%s", w, got)
				}
			}
		})
	}
}

func TestValidateBadSkipVerifyEnv(t *testing.T) {
	clearVaultEnv(t)
	t.Setenv("VAULT_SKIP_VERIFY", "maybe")
	c := Config{Address: "https://vault:8200", Auth: AuthConfig{Method: MethodJWT, TokenPath: "/jwt"}}
	c.ApplyDefaults()
	if got := problems(c); !strings.Contains(got, `tls.insecure_skip_verify: VAULT_SKIP_VERIFY="maybe" is not a boolean`) {
		t.Fatalf("problems: %s", got)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	clearVaultEnv(t)
	_, err := New(Config{Auth: AuthConfig{Method: MethodKubernetes}}, Settings{})
	if err == nil || !confval.IsConfigError(err) {
		t.Fatalf("New = %v, want a configuration error", err)
	}
	for _, w := range []string{"address: required (or set VAULT_ADDR)", "auth.role: required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
}

func TestYAMLKeys(t *testing.T) {
	clearVaultEnv(t)
	const doc = `
address: https://vault:8200
namespace: team-a
tls: {ca_file: /ca.pem, server_name: vault, insecure_skip_verify: false}
max_requests_per_second: 5
auth:
  method: approle
  mount_path: approle-prod
  role: web
  role_id_file: /etc/vault/role-id
  secret_id_file: /etc/vault/secret-id
  secret_id_wrapped: true
token_sink:
  path: /vault/token
  mode: 0440
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Address: "https://vault:8200", Namespace: "team-a", MaxRequestsPerSecond: 5,
		Auth: AuthConfig{Method: MethodAppRole, MountPath: "approle-prod", Role: "web", RoleIDFile: "/etc/vault/role-id",
			SecretIDFile: "/etc/vault/secret-id", SecretIDWrapped: true},
		TokenSink: TokenSinkConfig{Path: "/vault/token", Mode: "0440"},
	}
	want.TLS.CAFile, want.TLS.ServerName = "/ca.pem", "vault"
	if c.Address != want.Address || c.Namespace != want.Namespace || c.MaxRequestsPerSecond != want.MaxRequestsPerSecond ||
		c.Auth != want.Auth || c.TokenSink != want.TokenSink || c.TLS != want.TLS {
		t.Fatalf("decoded %+v\nwant %+v", c, want)
	}
	if m, err := ParseMode(c.TokenSink.Mode); err != nil || m != 0o440 {
		t.Fatalf("mode %q = %o, %v", c.TokenSink.Mode, m, err)
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want os.FileMode
		err  string
	}{
		{"0400", 0o400, ""},
		{"400", 0o400, ""},
		{"0o440", 0o440, ""},
		{"0600", 0o600, ""},
		{"0640", 0o640, ""},
		{"0644", 0, "gives other users access"},
		{"0402", 0, "gives other users access"},
		{"0040", 0, "does not let the owner read"},
		{"1400", 0, "bits beyond 0777"},
		{"0800", 0, "invalid mode"},
		{"rw", 0, "invalid mode"},
		{"", 0, "empty mode"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMode(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseMode(%q) = %o, %v; want error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMode(%q) = %o, %v; want %o", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"0400", "440", "0o440", "0644", "0777", "1400", "", "x", "-1", "0O600", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			return
		}
		if m&0o007 != 0 || m > 0o777 || m&0o400 == 0 {
			t.Fatalf("ParseMode(%q) accepted %o", s, m)
		}
	})
}
