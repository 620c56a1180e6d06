package vault

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/outrider-dev/outrider/internal/vaulttest"
)

func TestRateCap(t *testing.T) {
	t.Parallel()
	const perSecond, workers, each = 10, 5, 6
	name := unique("rate")
	kvPut(t, "secret", name, map[string]any{"k": "v"})
	cnt := &counter{}
	c := newClient(t, Config{MaxRequestsPerSecond: perSecond, Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(t).Token())}},
		Settings{WrapTransport: cnt.wrap})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := c.Read(ctxT(t), "secret/"+name, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	reqs := cnt.take()
	if len(reqs) < workers*each {
		t.Fatalf("%d requests sent for %d reads", len(reqs), workers*each)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].at.Before(reqs[j].at) })
	// No window of one second holds more than the cap (plus the request at its edge),
	// but for the client's first startBurst requests, which go out at once.
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].at.Sub(reqs[i].at) < time.Second; j++ {
			n++
		}
		limit := perSecond + 1
		if i < startBurst {
			limit += startBurst - 1
		}
		if n > limit {
			t.Fatalf("%d requests within one second from request %d; the cap is %d/s after a start burst of %d", n, i, perSecond, startBurst)
		}
	}
	if span, min := reqs[len(reqs)-1].at.Sub(reqs[0].at), time.Duration(len(reqs)-startBurst)*time.Second/perSecond; span < min-50*time.Millisecond {
		t.Fatalf("%d requests in %v; the cap allows no less than %v", len(reqs), span, min)
	}
}

// TestNoSecretsLeak runs logins (good and bad) and reads (good and denied) with every
// log line, audit event, metric and error recorded, and checks that no token,
// secret_id, role_id or secret value appears in any of them.
func TestNoSecretsLeak(t *testing.T) {
	t.Parallel()
	const value1 = "leak-canary-password-7f3a9c"
	name := unique("leak")
	kvPut(t, "secret", name, map[string]any{"password": value1})
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", nil)
	dir := t.TempDir()
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	set := rec.settings()
	set.Metrics = NewMetrics(reg)
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, set)
	ctx := ctxT(t)
	var outputs []string
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	token := c.api.Token()
	s, err := c.Read(ctx, "secret/"+name, nil)
	if err != nil || dataOf(t, s)["password"] != value1 {
		t.Fatalf("Read = %v, %v", s, err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("read", "secret", s, "secret_value", *s)
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, *s), buf.String())
	if !strings.Contains(buf.String(), `"kv_version":1`) {
		t.Errorf("Secret's log value lacks its metadata: %s", buf.String())
	}
	for _, p := range []string{"secret/" + name + "-missing", "sys/raw/x"} {
		if _, err := c.Read(ctx, p, nil); err != nil {
			outputs = append(outputs, err.Error())
		}
	}
	// A revoked token forces a re-login; a bad secret_id, a failed one.
	rootWrite(t, "auth/token/revoke", map[string]any{"token": token})
	if _, err := c.Read(ctx, "secret/"+name, nil); err != nil {
		t.Fatal(err)
	}
	token2 := c.api.Token()
	bad := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id2", roleID), SecretIDFile: writeFile(t, dir, "secret-id2", secretID+"x")}}, set)
	if err := bad.Login(ctx); err != nil {
		outputs = append(outputs, err.Error())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&mb, mf)
	}
	outputs = append(outputs, rec.text(), mb.String())
	all := strings.Join(outputs, "\n")
	if len(rec.find("auth", "")) < 3 || !strings.Contains(all, "outrider_vault_logins_total") {
		t.Fatalf("too little recorded to check:\n%s", all)
	}
	for what, secret := range map[string]string{"token": token, "new token": token2, "secret_id": secretID, "role_id": roleID, "secret value": value1} {
		if secret == "" {
			t.Fatalf("%s is empty", what)
		}
		if strings.Contains(all, secret) {
			t.Errorf("the %s appears in logs, audit events, metrics or errors", what)
		}
	}
}

// TestTokenNeverOnDisk logs in and reads with HOME and TMPDIR pointing at a fresh
// directory and checks that no file there, in the credential directory or in the
// working directory holds the token; with token_sink set, exactly the sink does.
func TestTokenNeverOnDisk(t *testing.T) {
	home := t.TempDir()
	for _, k := range []string{"HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"} {
		t.Setenv(k, home)
	}
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", nil)
	creds := t.TempDir()
	name := unique("disk")
	kvPut(t, "secret", name, map[string]any{"k": "v"})
	cfg := Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, creds, "role-id", roleID), SecretIDFile: writeFile(t, creds, "secret-id", secretID)}}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	holding := func(token string) []string {
		var found []string
		for _, dir := range []string{home, creds, wd, sharedVault(t).Dir} {
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(token)) {
					found = append(found, p)
				}
				return nil
			})
		}
		return found
	}

	c := newClient(t, cfg, Settings{})
	if _, err := c.Read(ctxT(t), "secret/"+name, nil); err != nil {
		t.Fatal(err)
	}
	if files := holding(c.api.Token()); len(files) != 0 {
		t.Fatalf("the token was written to %v", files)
	}

	sink := filepath.Join(home, "sink", "token")
	if err := os.MkdirAll(filepath.Dir(sink), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.TokenSink = TokenSinkConfig{Path: sink}
	c = newClient(t, cfg, Settings{})
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := c.api.Token()
	if files := holding(first); len(files) != 1 || files[0] != sink {
		t.Fatalf("with token_sink the token is in %v, want only %s", files, sink)
	}
	st, err := os.Stat(sink)
	if err != nil || st.Mode().Perm() != 0o400 {
		t.Fatalf("sink mode = %v, %v; want 0400", st.Mode(), err)
	}
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(sink); string(b) != c.api.Token() || c.api.Token() == first {
		t.Fatal("the sink does not hold the new token after a second login")
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	v, err := vaulttest.Start(ctx, t.TempDir(), vaulttest.WithTLS())
	if err != nil {
		t.Fatalf("real Vault with TLS: %v", err)
	}
	t.Cleanup(v.Stop)
	if !strings.HasPrefix(v.Addr, "https://") {
		t.Fatalf("addr %s", v.Addr)
	}
	base := Config{Address: v.Addr, Auth: AuthConfig{Method: MethodToken, Token: secretOf(v.RootToken)}}

	t.Run("unknown CA", func(t *testing.T) {
		err := newClient(t, base, Settings{}).Login(ctx)
		wantErr(t, err, ErrAuth, "TLS to Vault at "+v.Addr+" failed", "check tls.ca_file (or VAULT_CACERT)")
		if IsRetryable(err) {
			t.Error("an unverifiable certificate is not retryable")
		}
	})
	t.Run("ca_file", func(t *testing.T) {
		cfg := base
		cfg.TLS.CAFile = v.CACert
		c := newClient(t, cfg, Settings{})
		if _, err := c.Read(ctx, "sys/mounts/secret", nil); err != nil {
			t.Fatalf("Read over TLS: %v", err)
		}
	})
	t.Run("server_name", func(t *testing.T) {
		cfg := base
		cfg.TLS.CAFile, cfg.TLS.ServerName = v.CACert, "localhost"
		if err := newClient(t, cfg, Settings{}).Login(ctx); err != nil {
			t.Fatalf("server_name localhost: %v", err)
		}
		cfg.TLS.ServerName = "wrong.example"
		wantErr(t, newClient(t, cfg, Settings{}).Login(ctx), ErrAuth, "TLS to Vault at", "tls.server_name (or VAULT_TLS_SERVER_NAME)")
	})
}
