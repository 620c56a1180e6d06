package secrets

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
)

var credsRE = regexp.MustCompile(`(?m)^user=(\S+)\npassword=(\S+)$`)

// TestDatabaseCredentialsRenewedThenRotated runs Vault's database engine on a real
// PostgreSQL with a role of default_ttl 4s and max_ttl 10s. The Syncer must renew the
// lease (same lease id, later expiry) at about 2/3 of its TTL; when a renewal comes
// back capped by the max TTL it must fetch new credentials, render them, have the app
// reloaded, and only then — after revoke_grace — revoke the old lease, which drops
// the old PostgreSQL user. The new user must be able to log in while the old one
// still exists: no credential gap.
func TestDatabaseCredentialsRenewedThenRotated(t *testing.T) {
	t.Parallel()
	pg := postgres(t)
	v := sharedVault(t)
	c := v.Client
	mnt := databaseEngine(t, c, pg, "4s", "10s")
	prefix := "v-" + mnt + "-"
	write(t, c, mnt+"/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "4s",
		"max_ttl":             "10s",
	})

	dir := t.TempDir()
	a := startApp(t, dir)
	credFile := filepath.Join(dir, "db.env")
	// Long enough for this test to see the new credentials and log in with them
	// before the old user is dropped, short enough to revoke before the max TTL.
	grace := time.Second
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		RevokeGrace:  grace,
		Reload:       reload.Config{Method: reload.MethodSignal, PIDFile: a.pidFile, MinWait: 20 * time.Millisecond},
		Files: []File{fileCfg(credFile,
			`{{ with secret "`+mnt+`/creds/app" }}user={{ .Data.username }}`+"\n"+`password={{ .Data.password }}{{ end }}`)},
	}
	h := newHarness(t, cfg)
	h.run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	m := credsRE.FindStringSubmatch(readFile(t, credFile))
	if m == nil {
		t.Fatalf("db.env does not hold user= and password= lines")
	}
	oldUser, oldPass := m[1], m[2]
	if err := pg.Login(ctx, oldUser, oldPass); err != nil {
		t.Fatalf("the rendered credentials do not work: %v", err)
	}
	fetched := h.rec.find(audit.KindFetch, "ok", mnt+"/creds/app")
	if len(fetched) != 1 || fetched[0].LeaseID == "" || fetched[0].TTL != 4*time.Second {
		t.Fatalf("first fetch events = %+v; want one with a 4s lease", fetched)
	}
	oldLease := fetched[0].LeaseID
	maxEnd := fetched[0].Time.Add(10 * time.Second)

	// Watch the file and PostgreSQL until the rotation is over, recording when each
	// step happened as seen from outside.
	var newUser, newPass string
	var newSeen, newLogin, oldGone time.Time
	oldExistedAtNewLogin := false
	deadline := time.Now().Add(20 * time.Second)
	for oldGone.IsZero() && time.Now().Before(deadline) {
		if newUser == "" {
			if m := credsRE.FindStringSubmatch(readFile(t, credFile)); m != nil && m[1] != oldUser {
				newSeen = time.Now()
				newUser, newPass = m[1], m[2]
				if err := pg.Login(ctx, newUser, newPass); err != nil {
					t.Fatalf("the rotated credentials do not work: %v", err)
				}
				newLogin = time.Now()
				exists, err := pg.RoleExists(ctx, oldUser)
				if err != nil {
					t.Fatal(err)
				}
				oldExistedAtNewLogin = exists
			}
		}
		exists, err := pg.RoleExists(ctx, oldUser)
		if err != nil {
			t.Fatal(err)
		}
		if !exists {
			oldGone = time.Now()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if newUser == "" || oldGone.IsZero() {
		t.Fatalf("no rotation within 20s (new user seen: %t, old user dropped: %t); events:\n%s", newUser != "", !oldGone.IsZero(), h.rec.text())
	}

	renewals := h.rec.find(audit.KindRenew, "ok", mnt+"/creds/app")
	rotations := h.rec.find(audit.KindRotate, "", mnt+"/creds/app")
	revokes := h.rec.find(audit.KindRevoke, "", mnt+"/creds/app")
	if len(renewals) < 2 {
		t.Fatalf("%d renewals before the rotation, want at least 2: %+v", len(renewals), renewals)
	}
	for i, r := range renewals {
		if r.LeaseID != oldLease {
			t.Errorf("renewal %d renewed lease %s, want the original %s (a renewal keeps the lease)", i, r.LeaseID, oldLease)
		}
		// Renewed at about 2/3 of the 4s TTL after the previous fetch or renewal.
		prev := fetched[0].Time
		if i > 0 {
			prev = renewals[i-1].Time
		}
		if gap := r.Time.Sub(prev); gap < 2*time.Second || gap > 3500*time.Millisecond {
			t.Errorf("renewal %d came %v after the previous fetch or renewal; want about 2/3 of the 4s TTL", i, gap)
		}
	}
	if first := renewals[0]; first.TTL != 4*time.Second {
		t.Errorf("first renewal TTL = %v, want 4s (extended by the full default TTL)", first.TTL)
	}
	if last := renewals[len(renewals)-1]; last.TTL >= 4*time.Second {
		t.Errorf("the last renewal before the rotation granted %v; a rotation should follow a capped renewal", last.TTL)
	}
	if len(rotations) != 1 || rotations[0].Outcome != "ok" || rotations[0].LeaseID == oldLease {
		t.Fatalf("rotations = %+v; want one ok with a new lease", rotations)
	}
	rotated := rotations[0].Time
	if !rotated.Before(maxEnd) {
		t.Errorf("rotated at %v, after the old lease's max TTL (%v)", rotated, maxEnd)
	}
	if len(revokes) != 1 || revokes[0].Outcome != "ok" || revokes[0].LeaseID != oldLease {
		t.Fatalf("revocations = %+v; want the old lease revoked once", revokes)
	}
	revoked := revokes[0].Time
	var reloaded time.Time
	for _, e := range h.rec.find(audit.KindReload, "ok", "all") {
		if e.Time.After(rotated) {
			reloaded = e.Time.Add(e.Duration)
			break
		}
	}
	hups := a.hups()
	if reloaded.IsZero() || len(hups) != 1 {
		t.Fatalf("after the rotation: reload ok at %v, the app got %d SIGHUP; want one reload", reloaded, len(hups))
	}
	if !reloaded.Before(revoked) || revoked.Sub(reloaded) < grace {
		t.Errorf("revoked %v after the reload; want after it, at least revoke_grace (%v) later", revoked.Sub(reloaded), grace)
	}
	if !hups[0].Before(oldGone) {
		t.Errorf("the old PostgreSQL user was dropped before the app got SIGHUP")
	}
	if !oldExistedAtNewLogin || !newLogin.Before(oldGone) {
		t.Errorf("the old user was gone when the new one first logged in: a credential gap")
	}
	if ok, _ := pg.RoleExists(ctx, newUser); !ok {
		t.Errorf("the new user %s does not exist", newUser)
	}
	if roles, _ := pg.Roles(ctx, prefix); len(roles) != 1 || roles[0] != newUser {
		t.Errorf("PostgreSQL roles %s*: %v; want only the new user %s (old %s)", prefix, roles, newUser, oldUser)
	}
	if got := h.red.values(mnt + "/creds/app"); !contains(got, oldPass) || !contains(got, newPass) || !contains(got, newUser) {
		t.Errorf("registered values after the rotation: %d; want the new and the previous credentials", len(got))
	}
	t.Logf("lease %s: fetched %s; renewals at %v (TTL %v); rotated %v after the fetch (%v before its max TTL); new file seen %v, new user logged in %v later; app SIGHUP at +%v; reload done +%v; revoked +%v; old PostgreSQL user gone +%v (times after the rotation)",
		oldLease, fetched[0].Time.Format("15:04:05.000"), offsets(fetched[0].Time, renewals), ttls(renewals),
		rotated.Sub(fetched[0].Time).Round(time.Millisecond), maxEnd.Sub(rotated).Round(time.Millisecond),
		newSeen.Sub(rotated).Round(time.Millisecond), newLogin.Sub(newSeen).Round(time.Millisecond),
		hups[0].Sub(rotated).Round(time.Millisecond), reloaded.Sub(rotated).Round(time.Millisecond),
		revoked.Sub(rotated).Round(time.Millisecond), oldGone.Sub(rotated).Round(time.Millisecond))
	h.rec.noLeak(t, oldPass, newPass)
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}

func offsets(from time.Time, evs []audit.Event) []time.Duration {
	out := make([]time.Duration, len(evs))
	for i, e := range evs {
		out[i] = e.Time.Sub(from).Round(time.Millisecond)
	}
	return out
}

func ttls(evs []audit.Event) []time.Duration {
	out := make([]time.Duration, len(evs))
	for i, e := range evs {
		out[i] = e.TTL
	}
	return out
}
