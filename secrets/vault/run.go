package vault

import (
	"context"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// Login retry delays in Run, jittered; the request-rate cap bounds them further.
const (
	loginRetryInitial = time.Second
	loginRetryMax     = time.Minute
)

// Run keeps the client's token alive until ctx is done, then returns nil (within the
// request timeout, if a renewal is in flight). It logs in
// if nobody has yet; renews a renewable token with api.LifetimeWatcher (at about two
// thirds of its TTL); and logs in again before the token's max TTL (once half of the
// last, capped TTL has passed), shortly before a non-renewable token expires, and
// when renewal fails. Failed logins are retried with
// jittered exponential backoff (1s to 1m) under the request-rate cap, and logged; the
// old token stays in use while it is valid. A login made elsewhere — by a request
// that got "permission denied" — is picked up. Every renewal and expiry is an audit
// event.
//
// Run must be called at most once at a time.
func (c *Client) Run(ctx context.Context) error {
	bo := backoff.Backoff{Initial: loginRetryInitial, Max: loginRetryMax, Jitter: backoff.JitterFull}
	needLogin := c.generation() == 0
	reason := "startup"
	for {
		if ctx.Err() != nil {
			return nil
		}
		if needLogin {
			gen := c.generation()
			if err := c.relogin(ctx, gen, reason); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d := bo.Next()
				c.log.Warn("vault login failed; retrying", "error", err, "retry_in", d.Round(time.Millisecond))
				if !sleep(ctx, d) {
					return nil
				}
				continue
			}
			bo.Reset()
		}
		needLogin, reason = c.watch(ctx)
	}
}

// watch follows the current token until it must be replaced (it returns true and why)
// or a login elsewhere replaced it, or ctx is done (it returns false).
func (c *Client) watch(ctx context.Context) (needLogin bool, reason string) {
	c.mu.Lock()
	auth, gen := *c.auth, c.gen
	c.mu.Unlock()

	// A token without a TTL (a root token) never expires: only a login elsewhere
	// replaces it.
	var done <-chan error
	var renewed <-chan *api.RenewOutput
	if auth.LeaseDuration > 0 {
		w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{
			Secret:        &api.Secret{Auth: &auth},
			RenewBehavior: api.RenewBehaviorIgnoreErrors,
		})
		if err != nil {
			return true, "lifetime watcher: " + err.Error()
		}
		go w.Start()
		done, renewed = w.DoneCh(), w.RenewCh()
		defer func() {
			if done != nil { // the watcher is still running: stop it and wait for it
				w.Stop()
				<-w.DoneCh()
			}
		}()
	}
	// When a renewal grants less than the TTL before it, the token has hit its max
	// TTL and will die when this shorter TTL runs out. The watcher would hold it until
	// 10-20% of the last full TTL remains, and with whole-second TTLs near the end it
	// can overshoot; log in again once half of the capped TTL has passed instead. (The
	// token method has no fresh token to log in for, so it relies on the watcher.)
	lastTTL := auth.LeaseDuration
	var capped <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return false, ""
		case <-c.loggedIn:
			if c.generation() != gen {
				return false, ""
			}
		case out := <-renewed:
			ttl := c.renewed(out, gen)
			if ttl > 0 && ttl < lastTTL && capped == nil && c.cfg.Auth.Method != MethodToken {
				t := time.NewTimer(time.Duration(ttl) * time.Second / 2)
				defer t.Stop()
				capped = t.C
			}
			lastTTL = ttl
		case <-capped:
			c.audit.Record(audit.Event{Time: time.Now(), Kind: audit.KindToken, Path: "auth/token/renew-self", Outcome: "ok",
				Detail: c.authDetail() + " expiring: max TTL reached; logging in again"})
			c.log.Info("vault token reaches its max TTL; logging in again")
			return true, "token expiring"
		case err := <-done:
			done = nil
			ev := audit.Event{Time: time.Now(), Kind: audit.KindToken, Path: "auth/token/renew-self", Detail: c.authDetail()}
			if err != nil {
				ev.Outcome, ev.Error = "error", "token renewal failed: "+c.describe(err)
				c.audit.Record(ev)
				c.log.Warn("vault token renewal failed; logging in again", "error", ev.Error)
				return true, "renewal failed"
			}
			ev.Outcome, ev.Detail = "ok", ev.Detail+" expiring: max TTL reached or not renewable; logging in again"
			c.audit.Record(ev)
			c.log.Info("vault token expiring; logging in again")
			return true, "token expiring"
		}
	}
}

// renewed records a successful token renewal by the lifetime watcher and returns the
// granted TTL in seconds.
func (c *Client) renewed(out *api.RenewOutput, gen uint64) int {
	if out == nil || out.Secret == nil || out.Secret.Auth == nil {
		return 0
	}
	ttl := time.Duration(out.Secret.Auth.LeaseDuration) * time.Second
	c.mu.Lock()
	if c.gen == gen {
		c.auth.LeaseDuration = out.Secret.Auth.LeaseDuration
		c.auth.Renewable = out.Secret.Auth.Renewable
	}
	c.mu.Unlock()
	c.metrics.tokenTTL.Set(ttl.Seconds())
	c.audit.Record(audit.Event{Time: time.Now(), Kind: audit.KindToken, Path: "auth/token/renew-self", Outcome: "ok", TTL: ttl, Detail: c.authDetail() + " renewed"})
	c.log.Debug("vault token renewed", "ttl", ttl)
	return out.Secret.Auth.LeaseDuration
}

// sleep waits for d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
