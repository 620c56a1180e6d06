package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/render"
	"github.com/outrider-dev/outrider/secrets/vault"
)

// TestAppRoleEndToEnd: a Syncer configured with approle (role_id and secret_id
// files) and a token limited to one policy logs in and renders a file.
func TestAppRoleEndToEnd(t *testing.T) {
	t.Parallel()
	v := sharedVault(t)
	c := v.Client
	mnt := unique("kv")
	mount(t, c, "kv", mnt, map[string]string{"version": "2"})
	kvPut(t, c, mnt, "web", map[string]any{"api_key": "approle-api-key-1", "port": 8080})
	kvPut(t, c, mnt, "nometa", map[string]any{"k": "no-metadata-1"})
	policy := unique("web-read")
	if err := c.Sys().PutPolicy(policy, `path "`+mnt+`/data/web" { capabilities = ["read"] }
path "`+mnt+`/metadata/web" { capabilities = ["read"] }
path "`+mnt+`/data/nometa" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	authMount := unique("approle")
	if err := c.Sys().EnableAuth(authMount, "approle", ""); err != nil {
		t.Fatal(err)
	}
	write(t, c, "auth/"+authMount+"/role/web", map[string]any{"token_policies": policy, "token_ttl": "1m", "token_max_ttl": "5m"})
	roleID, err := c.Logical().Read("auth/" + authMount + "/role/web/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID := write(t, c, "auth/"+authMount+"/role/web/secret-id", nil).Data["secret_id"].(string)

	dir := t.TempDir()
	roleFile, secretFile := filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	for p, v := range map[string]string{roleFile: roleID.Data["role_id"].(string), secretFile: secretID} {
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "web.json")
	cfg := Config{
		Vault: vault.Config{Address: v.Addr, Auth: vault.AuthConfig{
			Method: vault.MethodAppRole, MountPath: authMount, Role: "web", RoleIDFile: roleFile, SecretIDFile: secretFile,
		}},
		PollInterval: time.Second,
		Files: []File{
			shortCfg(out, mnt+"/web", render.FormatJSON),
			// The policy allows reading this secret but not its metadata: it is
			// polled by reading it.
			{FileConfig: render.FileConfig{Path: filepath.Join(dir, "nometa"), Source: mnt + "/nometa", Key: "k"}},
		},
	}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	want := "{\n  \"api_key\": \"approle-api-key-1\",\n  \"port\": 8080\n}\n"
	if got := readFile(t, out); got != want {
		t.Fatalf("web.json = %q, want %q", got, want)
	}
	logins := h.rec.find(audit.KindAuth, "ok", "")
	if len(logins) != 1 || !strings.Contains(logins[0].Path, "auth/"+authMount+"/login") || !strings.Contains(logins[0].Detail, "approle") {
		t.Fatalf("auth events = %+v; want one approle login at auth/%s", logins, authMount)
	}
	// The approle token can poll the secret: a change arrives.
	kvPut(t, c, mnt, "web", map[string]any{"api_key": "approle-api-key-2", "port": 8080})
	eventually(t, 5*time.Second, "the new version", func() bool { return fileHas(out, "approle-api-key-2") })
	kvPut(t, c, mnt, "nometa", map[string]any{"k": "no-metadata-2"})
	eventually(t, 5*time.Second, "the new version of a secret without metadata access", func() bool {
		return fileHas(filepath.Join(dir, "nometa"), "no-metadata-2")
	})
	if n := len(h.rec.find(audit.KindFetch, "error", "")); n != 0 {
		t.Errorf("%d fetch failures; a denied metadata poll must fall back to reading, quietly", n)
	}
	h.rec.noLeak(t, secretID, "approle-api-key-1", "approle-api-key-2", "no-metadata-1", "no-metadata-2")
}
