package secrets

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/render"
)

var connRE = regexp.MustCompile(`^postgresql://(\S+):(\S+)@postgres:5432/wizard$`)

// TestConsulTemplateEngineLeases renders the vault-k8s documentation's connection
// string template with the consul-template engine from Vault's database engine on a
// real PostgreSQL (default_ttl 3s, max_ttl 6s). The engine only reads what the
// syncer fetched, so the lease is the syncer's: renewed, then, at its max TTL,
// replaced by new credentials that are rendered, reloaded into the app and only then
// revoked (the old user still exists when the new one logs in); both passwords are
// registered for scrubbing.
func TestConsulTemplateEngineLeases(t *testing.T) {
	t.Parallel()
	pg := postgres(t)
	v := sharedVault(t)
	mnt := databaseEngine(t, v.Client, pg, "3s", "6s")

	dir := t.TempDir()
	a := startApp(t, dir)
	path := filepath.Join(dir, "database-config.txt")
	f := fileCfg(path, "{{- with secret \""+mnt+"/creds/app\" -}}\npostgresql://{{ .Data.username }}:{{ .Data.password }}@postgres:5432/wizard\n{{- end -}}\n")
	f.TemplateEngine = render.EngineConsulTemplate
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		RevokeGrace:  500 * time.Millisecond,
		Reload:       reload.Config{Method: reload.MethodSignal, PIDFile: a.pidFile, MinWait: 20 * time.Millisecond},
		Files:        []File{f},
	}
	h := newHarness(t, cfg)
	h.run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	m := connRE.FindStringSubmatch(readFile(t, path))
	if m == nil {
		t.Fatalf("the file is not the connection string of the template")
	}
	oldUser, oldPass := m[1], m[2]
	if err := pg.Login(ctx, oldUser, oldPass); err != nil {
		t.Fatalf("the rendered credentials do not work: %v", err)
	}
	var newUser, newPass string
	oldAtNewLogin := false
	eventually(t, 20*time.Second, "new credentials rendered and the old user dropped", func() bool {
		if newUser == "" {
			if m := connRE.FindStringSubmatch(readFile(t, path)); m != nil && m[1] != oldUser {
				newUser, newPass = m[1], m[2]
				if err := pg.Login(ctx, newUser, newPass); err != nil {
					t.Fatalf("the rotated credentials do not work: %v", err)
				}
				oldAtNewLogin, _ = pg.RoleExists(ctx, oldUser)
			}
			return false
		}
		exists, err := pg.RoleExists(ctx, oldUser)
		return err == nil && !exists
	})
	if !oldAtNewLogin {
		t.Error("the old user was gone when the new one first logged in: a credential gap")
	}
	if len(h.rec.find(audit.KindRenew, "ok", mnt+"/creds/app")) == 0 {
		t.Error("the lease was never renewed")
	}
	if revokes := h.rec.find(audit.KindRevoke, "ok", mnt+"/creds/app"); len(revokes) != 1 {
		t.Errorf("revocations = %+v; want the old lease revoked once", revokes)
	}
	if len(a.hups()) != 1 {
		t.Errorf("the app got %d SIGHUPs, want 1 (after the rotation)", len(a.hups()))
	}
	if got := h.red.values(mnt + "/creds/app"); !contains(got, oldPass) || !contains(got, newPass) {
		t.Errorf("the old and new passwords are not both registered for scrubbing (%d values)", len(got))
	}
	h.rec.noLeak(t, oldPass, newPass)
}
