package vault

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/secrets/audit"
)

func TestAppRoleLogin(t *testing.T) {
	t.Parallel()
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", nil)
	dir := t.TempDir()
	name := unique("app")
	kvPut(t, "secret", name, map[string]any{"password": "approle-pw"})

	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID+"\n"), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, rec.settings())
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	s, err := c.Read(ctxT(t), "secret/"+name, nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got := dataOf(t, s)["password"]; got != "approle-pw" {
		t.Fatalf("password = %v", got)
	}
	ev := rec.find(audit.KindAuth, "ok")
	if len(ev) != 1 || ev[0].Path != "auth/"+mount+"/login" || !strings.Contains(ev[0].Detail, "method=approle") ||
		!strings.Contains(ev[0].Detail, "role=web") || ev[0].TTL <= 0 {
		t.Fatalf("auth events = %+v", ev)
	}
	if got := value(t, c.metrics.logins.WithLabelValues(LoginSuccess)); got != 1 {
		t.Fatalf("logins{success} = %v", got)
	}
}

func TestAppRoleWrappedSecretID(t *testing.T) {
	t.Parallel()
	mount := unique("approle")
	roleID, _ := approle(t, mount, "web", nil)
	dir := t.TempDir()

	// A wrapped secret_id, as `vault write -wrap-ttl=5m -f auth/<mount>/role/web/secret-id` makes.
	wrapped := wrappedWrite(t, "auth/"+mount+"/role/web/secret-id", nil)
	cfg := Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", wrapped), SecretIDWrapped: true}}
	c := newClient(t, cfg, Settings{})
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	// A wrapping token can be unwrapped once: a second login reuses the secret_id.
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatalf("second Login: %v", err)
	}

	t.Run("already unwrapped", func(t *testing.T) {
		err := newClient(t, cfg, Settings{}).Login(ctxT(t))
		wantErr(t, err, ErrAuth, "vault auth failed: approle at auth/"+mount, "holds a response-wrapping token Vault does not know", "write a freshly wrapped secret_id")
	})
	t.Run("wrapping something else", func(t *testing.T) {
		forged := wrappedWrite(t, "sys/wrapping/wrap", map[string]any{"secret_id": "forged"})
		cfg := cfg
		cfg.Auth.SecretIDFile = writeFile(t, t.TempDir(), "secret-id", forged)
		err := newClient(t, cfg, Settings{}).Login(ctxT(t))
		wantErr(t, err, ErrAuth, `refusing to unwrap auth.secret_id_file: its wrapping token was created by "sys/wrapping/wrap", not by auth/`+mount+"/role/web/secret-id")
	})
}

func TestAppRoleWrongCredentials(t *testing.T) {
	t.Parallel()
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", nil)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, roleID, secretID string
	}{
		{"wrong secret_id", roleID, "00000000-0000-0000-0000-000000000000"},
		{"wrong role_id", "00000000-0000-0000-0000-000000000001", secretID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
				RoleIDFile: writeFile(t, dir, "role-id", tc.roleID), SecretIDFile: writeFile(t, dir, "secret-id", tc.secretID)}}, rec.settings())
			err := c.Login(ctxT(t))
			wantErr(t, err, ErrAuth, `vault auth failed: approle login at auth/`+mount+` (role "web") rejected the role_id or secret_id`,
				"check that auth.role_id_file and auth.secret_id_file hold current credentials")
			if IsRetryable(err) {
				t.Error("a rejected secret_id is not retryable")
			}
			if ev := rec.find(audit.KindAuth, "error"); len(ev) != 1 || ev[0].Error != err.Error() {
				t.Errorf("audit = %+v", ev)
			}
			if strings.Contains(err.Error()+rec.text(), tc.secretID) || strings.Contains(err.Error()+rec.text(), tc.roleID) {
				t.Error("a credential leaked into the error, logs or audit")
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, RoleIDFile: "/nonexistent/role-id"}}, Settings{})
		wantErr(t, c.Login(ctxT(t)), ErrAuth, "auth.role_id_file: cannot read /nonexistent/role-id: no such file or directory")
	})
	t.Run("mount not enabled", func(t *testing.T) {
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: "nothing-here",
			RoleIDFile: writeFile(t, dir, "r2", roleID), SecretIDFile: writeFile(t, dir, "s2", secretID)}}, Settings{})
		wantErr(t, c.Login(ctxT(t)), ErrAuth, "approle login at auth/nothing-here was denied", "check auth.mount_path: is an auth method enabled at auth/nothing-here")
	})
}

func TestTokenLogin(t *testing.T) {
	name := unique("tok")
	kvPut(t, "secret", name, map[string]any{"k": "token-value"})
	token := rootWrite(t, "auth/token/create", map[string]any{"policies": []string{"outrider-all"}, "ttl": "10m"}).Auth.ClientToken

	read := func(t *testing.T, c *Client) {
		t.Helper()
		s, err := c.Read(ctxT(t), "secret/"+name, nil)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if dataOf(t, s)["k"] != "token-value" {
			t.Fatalf("data = %v", s.Data)
		}
	}
	t.Run("file", func(t *testing.T) {
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, TokenFile: writeFile(t, t.TempDir(), "token", token+"\n")}}, Settings{})
		if err := c.Login(ctxT(t)); err != nil {
			t.Fatalf("Login: %v", err)
		}
		c.mu.Lock()
		ttl, renewable := c.auth.LeaseDuration, c.auth.Renewable
		c.mu.Unlock()
		if ttl <= 0 || ttl > 600 || !renewable {
			t.Fatalf("token ttl %d renewable %t", ttl, renewable)
		}
		read(t, c)
	})
	t.Run("VAULT_TOKEN", func(t *testing.T) {
		t.Setenv("VAULT_TOKEN", token)
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken}}, Settings{})
		read(t, c) // logs in on first use
	})
	t.Run("VAULT_TOKEN is not used by other methods", func(t *testing.T) {
		t.Setenv("VAULT_TOKEN", token)
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, RoleIDFile: "/nonexistent/role-id"}}, Settings{})
		if c.api.Token() != "" {
			t.Fatal("the api client picked up $VAULT_TOKEN")
		}
		if _, err := c.Read(ctxT(t), "secret/"+name, nil); !errors.Is(err, ErrAuth) {
			t.Fatalf("Read without a login = %v, want a login error", err)
		}
	})
	t.Run("invalid token", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "token", "hvs.not-a-token")
		c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, TokenFile: path}}, Settings{})
		err := c.Login(ctxT(t))
		wantErr(t, err, ErrAuth, "vault auth failed: Vault rejected the token from auth.token_file "+path, "permission denied", "it may be expired or revoked: provide a valid token")
		if strings.Contains(err.Error(), "hvs.not-a-token") {
			t.Error("the token leaked into the error")
		}
	})
}

func TestVaultDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	rec := &recorder{}
	c := newClient(t, Config{Address: addr, Auth: AuthConfig{Method: MethodKubernetes, Role: "web", TokenPath: writeFile(t, t.TempDir(), "jwt", "x.y.z")}}, rec.settings())
	err = c.Login(ctxT(t))
	wantErr(t, err, ErrAuth, `vault auth failed: kubernetes login at auth/kubernetes (role "web"): cannot reach Vault at `+addr,
		"connection refused", "check address (or VAULT_ADDR), DNS and network policy")
	if !IsRetryable(err) {
		t.Error("Vault down must be retryable")
	}
	_, err = c.Read(ctxT(t), "secret/app", nil)
	if !IsRetryable(err) || !strings.Contains(err.Error(), "cannot reach Vault") {
		t.Fatalf("Read with Vault down = %v", err)
	}
	if got := value(t, c.metrics.requests.WithLabelValues(OpLogin, ResultRetryable)); got != 2 {
		t.Errorf("requests{login,retryable} = %v, want 2", got)
	}
}

// wantErr fails unless err wraps kind and its message holds every part.
func wantErr(t *testing.T, err error, kind error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one with %q", parts)
	}
	t.Logf("message: %v", err)
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q does not wrap %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\nlacks %q", err, p)
		}
	}
}
