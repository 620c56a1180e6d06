package secrets

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/vault"
)

func TestFetchedUnder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		before, after, want uint64
	}{
		{"the fetch made the first login", 0, 1, 1},
		{"no login during the fetch", 3, 3, 3},
		{"a login during the fetch keeps the older token", 3, 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fetchedUnder(tc.before, tc.after); got != tc.want {
				t.Errorf("fetchedUnder(%d, %d) = %d, want %d", tc.before, tc.after, got, tc.want)
			}
		})
	}
}

func TestDepStale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		d    dep
		want bool
	}{
		{"lease of an older token", dep{leaseID: "l", tokenGen: 1}, true},
		{"lease of the current token", dep{leaseID: "l", tokenGen: 2}, false},
		{"no lease", dep{tokenGen: 1}, false},
		{"never fetched", dep{leaseID: "l"}, false},
		{"rotation being retried with backoff", dep{leaseID: "l", tokenGen: 1, failures: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.stale(2); got != tc.want {
				t.Errorf("stale(2) = %t, want %t", got, tc.want)
			}
		})
	}
}

// TestDatabaseCredentialsSurviveRelogin: Vault revokes the leases a token created
// when the token ends. With an AppRole token of TTL 3s and max TTL 6s, the Vault
// client logs in again about every 5s and the previous token dies about a second
// later, taking its database users with it — long before their 60s lease would be
// renewed. The Syncer must rotate them as soon as the client has a new token: the
// user in the file must be able to log in to PostgreSQL at every moment but for
// short switches.
func TestDatabaseCredentialsSurviveRelogin(t *testing.T) {
	t.Parallel()
	pg := postgres(t)
	v := sharedVault(t)
	c := v.Client
	mnt := databaseEngine(t, c, pg, "60s", "120s")
	policy := unique("db-creds")
	if err := c.Sys().PutPolicy(policy, `path "`+mnt+`/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	auth := approleAuth(t, c, dir, "app", policy, map[string]any{"token_ttl": "3s", "token_max_ttl": "6s"})
	secretID := strings.TrimSpace(readFile(t, auth.SecretIDFile))

	a := startApp(t, dir)
	credFile := filepath.Join(dir, "db.env")
	cfg := Config{
		Vault:        vault.Config{Address: v.Addr, Auth: auth},
		PollInterval: time.Second,
		RevokeGrace:  300 * time.Millisecond,
		Reload:       a.signalReload(),
		Files: []File{fileCfg(credFile,
			`{{ with secret "`+mnt+`/creds/app" }}user={{ .Data.username }}`+"\n"+`password={{ .Data.password }}{{ end }}`)},
	}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)

	// Poll the file and PostgreSQL for 15s, recording each stretch during which the
	// user in the file could not log in.
	type outage struct{ from, to time.Time }
	var outages []outage
	var down time.Time
	users := map[string]bool{}
	var passes []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	polls := 0
	for time.Since(start) < 15*time.Second {
		polls++
		ok := false
		if m := credsRE.FindStringSubmatch(readFile(t, credFile)); m != nil {
			if !users[m[1]] {
				users[m[1]] = true
				passes = append(passes, m[2])
			}
			ok = pg.Login(ctx, m[1], m[2]) == nil
		}
		now := time.Now()
		switch {
		case !ok && down.IsZero():
			down = now
		case ok && !down.IsZero():
			outages = append(outages, outage{down, now})
			down = time.Time{}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !down.IsZero() {
		outages = append(outages, outage{down, time.Now()})
	}

	logins := h.rec.find(audit.KindAuth, "ok", "")
	if len(logins) < 3 {
		t.Fatalf("%d logins in %v, want at least 3 with a 6s max TTL; events:\n%s", len(logins), time.Since(start).Round(time.Second), h.rec.text())
	}
	var rotations []audit.Event
	for _, e := range h.rec.find(audit.KindRotate, "", mnt+"/creds/app") {
		if strings.Contains(e.Detail, rotateReasonRelogin) {
			rotations = append(rotations, e)
		}
	}
	var lags []time.Duration
	for _, l := range logins[1:] {
		if l.Time.After(time.Now().Add(-2 * time.Second)) {
			continue // too recent for its rotation to have been observed
		}
		var lag time.Duration = -1
		for _, r := range rotations {
			if !r.Time.Before(l.Time) && (lag < 0 || r.Time.Sub(l.Time) < lag) {
				lag = r.Time.Sub(l.Time)
			}
		}
		if lag < 0 || lag > time.Second {
			t.Errorf("re-login at %s: no rotation of the database credentials within 1s (first after it: %v)", l.Time.Format("15:04:05.000"), lag)
		}
		lags = append(lags, lag.Round(time.Microsecond))
	}
	for _, r := range rotations {
		if r.Outcome != ResultOK {
			t.Errorf("rotation after a re-login: %+v; want ok", r)
		}
	}
	var worst time.Duration
	var spans []time.Duration
	for _, o := range outages {
		d := o.to.Sub(o.from)
		spans = append(spans, d.Round(time.Millisecond))
		worst = max(worst, d)
	}
	if worst >= 2*time.Second {
		t.Errorf("the user in the file could not log in for %v (outages %v): a credential gap", worst.Round(time.Millisecond), spans)
	}
	var revokes []string
	for _, e := range h.rec.find(audit.KindRevoke, "", mnt+"/creds/app") {
		revokes = append(revokes, e.Outcome)
	}
	t.Logf("%d logins, %d rotations after re-logins (lag after each re-login %v), %d distinct users, %d polls over %v: outages %v; revocations %v; app got %d SIGHUP",
		len(logins), len(rotations), lags, len(users), polls, time.Since(start).Round(time.Millisecond), spans, revokes, len(a.hups()))
	h.rec.noLeak(t, append(passes, secretID)...)
}
