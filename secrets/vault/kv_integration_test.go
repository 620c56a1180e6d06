package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKVv2(t *testing.T) {
	t.Parallel()
	name := unique("kv2")
	for i, pw := range []string{"one", "two", "three"} {
		if v := kvPut(t, "secret", name, map[string]any{"password": pw}); v != i+1 {
			t.Fatalf("setup: version %d, want %d", v, i+1)
		}
	}
	cnt := &counter{}
	token := rootWrite(t, "auth/token/create", map[string]any{"policies": []string{"outrider-all"}, "ttl": "10m"}).Auth.ClientToken
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, Token: secretOf(token)}}, Settings{WrapTransport: cnt.wrap})
	ctx := ctxT(t)

	s, err := c.Read(ctx, "secret/"+name, nil)
	if err != nil {
		t.Fatalf("Read latest: %v", err)
	}
	if dataOf(t, s)["password"] != "three" || s.KV == nil || s.KV.Version != 3 || s.KV.Mount != "secret/" ||
		time.Since(s.KV.CreatedTime) > time.Minute {
		t.Fatalf("latest = %v data %v kv %+v", s, s.Data, s.KV)
	}
	if md, ok := s.Data["metadata"].(map[string]any); !ok || md["version"] == nil {
		t.Fatalf("metadata missing: %v", s.Data)
	}
	s, err = c.Read(ctx, "secret/"+name, map[string][]string{"version": {"1"}})
	if err != nil || dataOf(t, s)["password"] != "one" || s.KV.Version != 1 {
		t.Fatalf("Read version 1 = %v %v, %v", s, s.Data, err)
	}
	s, err = c.Read(ctx, "/secret/data/"+name+"/", nil)
	if err != nil || dataOf(t, s)["password"] != "three" {
		t.Fatalf("Read with data/ = %v, %v", s, err)
	}

	cnt.take()
	v, err := c.KVVersion(ctx, "secret/"+name)
	if err != nil || v != 3 {
		t.Fatalf("KVVersion = %d, %v", v, err)
	}
	if reqs := cnt.take(); len(reqs) != 1 || reqs[0].method != "GET" || reqs[0].path != "/v1/secret/metadata/"+name {
		t.Fatalf("KVVersion sent %+v; want exactly one GET of the metadata", reqs)
	}
	kvPut(t, "secret", name, map[string]any{"password": "four"})
	if v, err := c.KVVersion(ctx, "secret/data/"+name); err != nil || v != 4 {
		t.Fatalf("KVVersion after a write = %d, %v", v, err)
	}

	t.Run("not found", func(t *testing.T) {
		_, err := c.Read(ctx, "secret/"+name+"-missing", nil)
		wantErr(t, err, ErrNotFound, "secret not found at secret/"+name+"-missing: check the path and mount")
		if IsRetryable(err) {
			t.Error("not found is permanent")
		}
		_, err = c.KVVersion(ctx, "secret/"+name+"-missing")
		wantErr(t, err, ErrNotFound, "secret not found at secret/"+name+"-missing")
		_, err = c.Read(ctx, "secret/"+name, map[string][]string{"version": {"99"}})
		wantErr(t, err, ErrNotFound, "secret not found at secret/"+name+" (version 99)")
	})
	t.Run("deleted version", func(t *testing.T) {
		if err := root(t).KVv2("secret").DeleteVersions(context.Background(), name, []int{4}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Read(ctx, "secret/"+name, nil)
		wantErr(t, err, ErrNotFound, "secret at secret/"+name+" (version 4) was deleted or destroyed")
		if s, err := c.Read(ctx, "secret/"+name, map[string][]string{"version": {"3"}}); err != nil || dataOf(t, s)["password"] != "three" {
			t.Fatalf("older version = %v, %v", s, err)
		}
	})
	t.Run("mount itself", func(t *testing.T) {
		_, err := c.Read(ctx, "secret", nil)
		wantErr(t, err, nil, `path "secret" names the KV mount secret/ itself`)
	})
}

func TestKVv1(t *testing.T) {
	t.Parallel()
	mount := unique("kv1")
	mountEngine(t, "kv", mount, map[string]string{"version": "1"})
	rootWrite(t, mount+"/app", map[string]any{"password": "v1-pw", "ttl": "1h"})
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(t).Token())}}, Settings{})
	ctx := ctxT(t)
	s, err := c.Read(ctx, mount+"/app", nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if s.Data["password"] != "v1-pw" || s.KV != nil || s.LeaseDuration != time.Hour {
		t.Fatalf("KV v1 read = %v data %v", s, s.Data)
	}
	_, err = c.KVVersion(ctx, mount+"/app")
	wantErr(t, err, ErrNotKVv2, mount+"/app is on the KV v1 mount "+mount+"/, not KV v2")
	_, err = c.Read(ctx, mount+"/missing", nil)
	wantErr(t, err, ErrNotFound, "secret not found at "+mount+"/missing")
}

func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	name := unique("denied")
	kvPut(t, "secret", name+"-ok", map[string]any{"k": "allowed"})
	kvPut(t, "secret", name+"-no", map[string]any{"k": "forbidden"})
	policy := unique("reader")
	if err := root(t).Sys().PutPolicy(policy, `
path "secret/data/`+name+`-ok" { capabilities = ["read"] }
path "secret/metadata/`+name+`-ok" { capabilities = ["read"] }
`); err != nil {
		t.Fatal(err)
	}
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", map[string]any{"token_policies": policy})
	dir := t.TempDir()
	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, rec.settings())
	ctx := ctxT(t)
	if _, err := c.Read(ctx, "secret/"+name+"-ok", nil); err != nil {
		t.Fatalf("Read allowed: %v", err)
	}

	// A policy denial costs a token lookup, not a login, and is permanent.
	_, err := c.Read(ctx, "secret/"+name+"-no", nil)
	wantErr(t, err, ErrPermissionDenied, "permission denied: read secret/"+name+"-no: the token from approle login at auth/"+mount+` (role "web") may not read secret/data/`+name+`-no; check that its policies grant "read" on secret/data/`+name+"-no")
	if IsRetryable(err) {
		t.Error("permission denied is permanent")
	}
	// On a mount the token cannot see at all, the mount lookup itself is denied.
	other := unique("kvhidden")
	mountEngine(t, "kv", other, map[string]string{"version": "2"})
	_, err = c.Read(ctx, other+"/app", nil)
	wantErr(t, err, ErrPermissionDenied, "permission denied: read "+other+"/app: the token from approle login at auth/"+mount)
	if n := len(rec.find("auth", "ok")); n != 1 {
		t.Fatalf("%d logins after policy denials, want 1", n)
	}

	// A revoked token: the next read logs in again, once, and succeeds.
	rootWrite(t, "auth/token/revoke", map[string]any{"token": c.api.Token()})
	s, err := c.Read(ctx, "secret/"+name+"-ok", nil)
	if err != nil || dataOf(t, s)["k"] != "allowed" {
		t.Fatalf("Read after revocation = %v, %v", s, err)
	}
	logins := rec.find("auth", "ok")
	if len(logins) != 2 || !strings.Contains(logins[1].Detail, "reason=token rejected") {
		t.Fatalf("logins = %+v", logins)
	}
	if v, err := c.KVVersion(ctx, "secret/"+name+"-ok"); err != nil || v != 1 {
		t.Fatalf("KVVersion = %d, %v", v, err)
	}
}

func TestNamespaceHeader(t *testing.T) {
	t.Parallel()
	cnt := &counter{}
	c := newClient(t, Config{Namespace: "team-a", Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(t).Token())}}, Settings{WrapTransport: cnt.wrap})
	_ = c.Login(ctxT(t)) // Vault CE has no namespaces; only the header is checked here
	reqs := cnt.take()
	if len(reqs) == 0 {
		t.Fatal("no request sent")
	}
	for _, r := range reqs {
		if got := r.header.Get("X-Vault-Namespace"); got != "team-a" {
			t.Fatalf("%s %s sent X-Vault-Namespace %q, want team-a", r.method, r.path, got)
		}
	}
}

// TestDeniedWithoutDefaultPolicy: a token without the default policy cannot look
// itself up, so a denial looks like a rejected token. The client may log in again for
// that once, but must not mint a token per denied request.
func TestDeniedWithoutDefaultPolicy(t *testing.T) {
	t.Parallel()
	name := unique("nodefault")
	kvPut(t, "secret", name+"-no", map[string]any{"k": "forbidden"})
	policy := unique("nothing")
	if err := root(t).Sys().PutPolicy(policy, `path "secret/data/`+name+`-ok" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", map[string]any{"token_policies": policy, "token_no_default_policy": true})
	dir := t.TempDir()
	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, rec.settings())
	ctx := ctxT(t)
	for i := 0; i < 5; i++ {
		if _, err := c.Read(ctx, "secret/data/"+name+"-no", nil); !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("read %d: %v, want permission denied", i, err)
		}
	}
	if n := len(rec.find("auth", "ok")); n > 2 {
		t.Fatalf("%d logins for 5 denied reads; want at most 2 (the first, one retry)", n)
	}
}
