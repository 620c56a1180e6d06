package secrets

import (
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
	dir := t.TempDir()
	auth := approleAuth(t, c, dir, "web", policy, map[string]any{"token_ttl": "1m", "token_max_ttl": "5m"})
	secretID := strings.TrimSpace(readFile(t, auth.SecretIDFile))
	out := filepath.Join(dir, "web.json")
	cfg := Config{
		Vault:        vault.Config{Address: v.Addr, Auth: auth},
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
	if len(logins) != 1 || !strings.Contains(logins[0].Path, "auth/"+auth.MountPath+"/login") || !strings.Contains(logins[0].Detail, "approle") {
		t.Fatalf("auth events = %+v; want one approle login at auth/%s", logins, auth.MountPath)
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
