package vault

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
)

func TestRunRenewsAndLogsInAgain(t *testing.T) {
	t.Parallel()
	const ttl, maxTTL = 4 * time.Second, 10 * time.Second
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "short", map[string]any{"token_ttl": "4s", "token_max_ttl": "10s"})
	dir := t.TempDir()
	rec := &recorder{}
	set := rec.settings()
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "short",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, set)
	name := unique("renew")
	kvPut(t, "secret", name, map[string]any{"k": "v"})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(rec.find(audit.KindAuth, "ok")) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// The new token works.
	if _, err := c.Read(ctxT(t), "secret/"+name, nil); err != nil {
		t.Errorf("Read after the new login: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}

	logins := rec.find(audit.KindAuth, "ok")
	if len(logins) < 2 {
		t.Fatalf("%d logins in 30s; want a second one before the %v max TTL", len(logins), maxTTL)
	}
	var renewals, expiring []audit.Event
	for _, e := range rec.find(audit.KindToken, "ok") {
		switch {
		case strings.Contains(e.Detail, "renewed"):
			renewals = append(renewals, e)
		case strings.Contains(e.Detail, "expiring"):
			expiring = append(expiring, e)
		}
	}
	first, second := logins[0].Time, logins[1].Time
	if len(renewals) == 0 || renewals[0].Time.After(second) || renewals[0].TTL <= 0 {
		t.Fatalf("no renewal before the second login: %+v", renewals)
	}
	if len(expiring) == 0 || !strings.Contains(logins[1].Detail, "reason=token expiring") {
		t.Fatalf("second login not caused by expiry: %+v / %+v", expiring, logins[1])
	}
	// Renewal kept the first token beyond its TTL, and the new login came before its
	// max TTL ran out.
	if lived := second.Sub(first); lived <= ttl || lived >= maxTTL {
		t.Fatalf("first token used for %v; want between its TTL %v and max TTL %v", lived, ttl, maxTTL)
	}
	if got := value(t, set.Metrics.requests.WithLabelValues(OpTokenRenew, ResultSuccess)); got < 1 {
		t.Errorf("requests{token_renew,success} = %v", got)
	}
	if got := value(t, set.Metrics.tokenTTL); got <= 0 || got > ttl.Seconds() {
		t.Errorf("token ttl gauge = %v", got)
	}
}

func TestRunRetriesLoginWithBackoff(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	rec := &recorder{}
	c := newClient(t, Config{Address: addr, Auth: AuthConfig{Method: MethodJWT, TokenPath: writeFile(t, t.TempDir(), "jwt", "a.b.c")}}, rec.settings())
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	// Backoff starts at 1s, so 2.5s hold the first attempt, one after 1s and at most
	// one more.
	fails := rec.find(audit.KindAuth, "error")
	if len(fails) < 2 || len(fails) > 3 {
		t.Fatalf("%d login attempts in 2.5s, want 2 or 3", len(fails))
	}
	if !strings.Contains(fails[0].Error, "cannot reach Vault at "+addr) || !strings.Contains(rec.text(), "vault login failed; retrying") {
		t.Fatalf("failure not explained: %+v", fails[0])
	}
}

func TestRunNonExpiringToken(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(t).Token())}}, rec.settings())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.find(audit.KindAuth, "ok")); n != 1 {
		t.Fatalf("%d logins for a root token, want 1", n)
	}
	if ev := rec.find(audit.KindToken, ""); len(ev) != 0 {
		t.Fatalf("token events for a token without TTL: %+v", ev)
	}
}

// A login made by a request (after Vault rejected a revoked token) replaces the token
// Run follows: Run renews the new token instead of waiting out the old one.
func TestRunFollowsLoginElsewhere(t *testing.T) {
	t.Parallel()
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", map[string]any{"token_ttl": "3s", "token_max_ttl": "1h"})
	dir := t.TempDir()
	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, rec.settings())
	name := unique("follow")
	kvPut(t, "secret", name, map[string]any{"k": "v"})
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	rootWrite(t, "auth/token/revoke", map[string]any{"token": c.api.Token()})
	if _, err := c.Read(ctxT(t), "secret/"+name, nil); err != nil {
		t.Fatalf("Read after revocation: %v", err)
	}
	second := c.api.Token()
	// The new 3s token lives only if Run renews it.
	deadline := time.Now().Add(15 * time.Second)
	renewed := func() bool {
		for _, e := range rec.find(audit.KindToken, "ok") {
			if strings.Contains(e.Detail, "renewed") && e.Time.After(rec.find(audit.KindAuth, "ok")[1].Time) {
				return true
			}
		}
		return false
	}
	for !renewed() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // past the new token's first TTL
	if _, err := c.Read(ctxT(t), "secret/"+name, nil); err != nil {
		t.Errorf("Read with the renewed token: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	logins := rec.find(audit.KindAuth, "ok")
	if !renewed() || len(logins) != 2 || c.api.Token() != second {
		t.Fatalf("renewed %t, %d logins (want 2: the first and the one after the revocation)", renewed(), len(logins))
	}
}
