package secrets

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
)

// TestRestartRevokesTheLeasesOfTheEarlierRun: `render --once` (an init container) and
// then two agent runs each fetch their own database credentials. Each new run, once
// its first render is done and the application reloaded, revokes the leases the
// earlier run left behind (their PostgreSQL users are dropped), so restarts do not
// leave credentials valid until their TTL; the state file never holds a value.
func TestRestartRevokesTheLeasesOfTheEarlierRun(t *testing.T) {
	t.Parallel()
	pg := postgres(t)
	v := sharedVault(t)
	c := v.Client
	mnt := databaseEngine(t, c, pg, "10m", "1h")
	write(t, c, mnt+"/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "10m",
		"max_ttl":             "1h",
	})
	dir := t.TempDir()
	a := startApp(t, dir)
	credFile := filepath.Join(dir, "db.env")
	state := filepath.Join(dir, "data", "secrets-leases.json")
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		RevokeGrace:  300 * time.Millisecond,
		Reload:       reload.Config{Method: reload.MethodSignal, PIDFile: a.pidFile, MinWait: 20 * time.Millisecond},
		Files: []File{fileCfg(credFile,
			`{{ with secret "`+mnt+`/creds/app" }}user={{ .Data.username }}`+"\n"+`password={{ .Data.password }}{{ end }}`)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user := func() string {
		m := credsRE.FindStringSubmatch(readFile(t, credFile))
		if m == nil {
			t.Fatalf("db.env holds no credentials")
		}
		return m[1]
	}

	once := newHarnessState(t, cfg, state)
	if err := once.s.RenderOnce(ctx); err != nil {
		t.Fatal(err)
	}
	prevUser := user()
	for run := 1; run <= 2; run++ {
		h := newHarnessState(t, cfg, state)
		stop := h.start(t)
		eventually(t, 10*time.Second, "the first render", h.s.Ready)
		cur := user()
		if cur == prevUser {
			t.Fatalf("run %d: kept the earlier run's user", run)
		}
		eventually(t, 10*time.Second, "the earlier run's user to be dropped", func() bool {
			exists, err := pg.RoleExists(ctx, prevUser)
			return err == nil && !exists
		})
		if err := pg.Login(ctx, cur, credsRE.FindStringSubmatch(readFile(t, credFile))[2]); err != nil {
			t.Fatalf("run %d: the new credentials do not work: %v", run, err)
		}
		revs := h.rec.find(audit.KindRevoke, "ok", mnt+"/creds/app")
		if len(revs) != 1 {
			t.Fatalf("run %d: revoke events %+v, want one for the earlier run's lease", run, revs)
		}
		if len(a.hups()) < run {
			t.Errorf("run %d: the app was not reloaded before the revocation", run)
		}
		eventually(t, 5*time.Second, "the state file to forget the revoked lease", func() bool {
			var st leaseState
			data, _ := os.ReadFile(state)
			return json.Unmarshal(data, &st) == nil && len(st.Orphans) == 0 && len(st.Current) == 1
		})
		data, _ := os.ReadFile(state)
		if pw := credsRE.FindStringSubmatch(readFile(t, credFile))[2]; json.Valid(data) && strings.Contains(string(data), pw) {
			t.Fatal("the state file holds a password")
		}
		stop() // a stop never revokes: the next run does, after its reload
		if exists, _ := pg.RoleExists(ctx, cur); !exists {
			t.Fatalf("run %d: stopping revoked the current credentials", run)
		}
		prevUser = cur
	}
}
