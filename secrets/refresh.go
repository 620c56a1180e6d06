package secrets

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/reload"
	"github.com/outrider-dev/outrider/secrets/vault"
)

// revokeAttempts bounds the attempts at revoking a rotated lease; if they all fail,
// the lease ends on its own at its TTL.
const revokeAttempts = 3

// refresh does what is due for d.
func (s *Syncer) refresh(ctx context.Context, d *dep) {
	switch d.kind {
	case kindKV2:
		s.pollKV2(ctx, d)
	case kindReread:
		s.reread(ctx, d)
	case kindRenew:
		s.renew(ctx, d)
	case kindRefetch:
		s.rotate(ctx, d, "the lease is not renewable: replacing it before it ends")
	case kindCert:
		s.rotate(ctx, d, "re-issuing the certificate before it expires")
	}
}

// pollKV2 asks for the current version of a KV v2 secret (one request) and reads it
// only when it changed.
func (s *Syncer) pollKV2(ctx context.Context, d *dep) {
	v, err := s.client.KVVersion(ctx, d.path)
	switch {
	case errors.Is(err, vault.ErrNotKVv2):
		d.kind = kindReread
		s.reread(ctx, d)
		return
	case errors.Is(err, vault.ErrPermissionDenied):
		// Policies often grant <mount>/data/<path> but not <mount>/metadata/<path>:
		// reading the data is also one request per interval.
		s.log.Info("no access to the secret's KV metadata; polling by reading it instead (grant read on the metadata path for cheaper polls)", "path", d.path)
		d.kind = kindReread
		s.reread(ctx, d)
		return
	case err != nil:
		s.depFailed(ctx, d, audit.KindFetch, "poll the KV version", err)
		return
	case v == d.version:
		s.depOK(d)
		d.next = time.Now().Add(s.cfg.PollInterval)
		return
	}
	sec, err := s.fetch(ctx, d, fmt.Sprintf("KV version %d → %d", d.version, v))
	if err != nil {
		s.depFailed(ctx, d, audit.KindFetch, "read the new version", err)
		return
	}
	s.depOK(d)
	s.install(d, sec, time.Now())
	s.rerenderDependents(ctx, d)
}

// reread reads a lease-less secret again and re-renders its dependents if it
// changed. Unchanged re-reads are not audited (they happen every poll_interval).
func (s *Syncer) reread(ctx context.Context, d *dep) {
	start := time.Now()
	sec, err := s.client.Read(ctx, d.path, nil)
	if err != nil {
		s.depFailed(ctx, d, audit.KindFetch, "read", err)
		return
	}
	s.depOK(d)
	if sec.LeaseID == d.sec.LeaseID && reflect.DeepEqual(sec.Data, d.sec.Data) {
		d.next = time.Now().Add(s.cfg.PollInterval)
		return
	}
	s.audit.Record(audit.Event{Time: start, Kind: audit.KindFetch, Path: d.path, Outcome: ResultOK, Duration: time.Since(start), Detail: "changed"})
	s.install(d, sec, time.Now())
	s.rerenderDependents(ctx, d)
}

// renew renews d's lease for its original duration. A renewal granted for less than
// asked means the lease reached its max TTL: it is rotated at once.
func (s *Syncer) renew(ctx context.Context, d *dep) {
	start := time.Now()
	sec, err := s.client.RenewLease(ctx, d.leaseID, d.increment)
	ev := audit.Event{Time: start, Kind: audit.KindRenew, Path: d.path, LeaseID: d.leaseID, Duration: time.Since(start)}
	switch {
	case ctx.Err() != nil:
		return
	case err == nil:
	case errors.Is(err, vault.ErrNotFound):
		s.met.renewals.WithLabelValues(ResultError).Inc()
		ev.Outcome, ev.Error = ResultError, err.Error()
		s.audit.Record(ev)
		// The credentials are gone already (Vault restarted, or the lease ended while
		// it was unreachable): there is nothing left to revoke.
		d.leaseID = ""
		s.rotate(ctx, d, "the lease expired or was revoked")
		return
	case errors.Is(err, vault.ErrNotRenewable):
		s.met.renewals.WithLabelValues(ResultError).Inc()
		ev.Outcome, ev.Error = ResultError, err.Error()
		s.audit.Record(ev)
		s.depOK(d)
		d.kind = kindRefetch
		now := time.Now()
		d.next = now
		if d.expires.After(now) {
			d.next = now.Add(time.Duration(float64(d.expires.Sub(now)) * renewAt()))
		}
		return
	default:
		s.met.renewals.WithLabelValues(ResultError).Inc()
		s.depFailed(ctx, d, audit.KindRenew, "renew the lease", err)
		return
	}
	s.met.renewals.WithLabelValues(ResultOK).Inc()
	s.depOK(d)
	now := time.Now()
	ttl := sec.LeaseDuration
	d.expires = now.Add(ttl)
	s.met.leaseTTL.WithLabelValues(d.path).Set(ttl.Seconds())
	ev.Outcome, ev.TTL = ResultOK, ttl
	capped := ttl < d.increment
	if capped {
		ev.Detail = fmt.Sprintf("granted %s of the %s asked: the lease reached its max TTL", ttl, d.increment)
	}
	s.audit.Record(ev)
	s.log.Debug("lease renewed", "path", d.path, "lease_id", d.leaseID, "ttl", ttl)
	if capped {
		s.rotate(ctx, d, fmt.Sprintf("max TTL reached (renewal granted %s of %s)", ttl, d.increment))
		return
	}
	d.next = now.Add(time.Duration(float64(ttl) * renewAt()))
}

// rotate replaces d with a fresh answer from Vault — new credentials, a new
// certificate — renders every dependent file, has them reloaded, and revokes the old
// lease only once every reload succeeded and revoke_grace has passed.
func (s *Syncer) rotate(ctx context.Context, d *dep, reason string) {
	start := time.Now()
	oldLease := d.leaseID
	d.kind = kindRefetch // until the rotation succeeds, a retry rotates again
	if d.sec != nil && d.sec.LeaseID == "" {
		d.kind = kindCert
	}
	sec, err := s.fetch(ctx, d, "rotation: "+reason)
	if err != nil {
		if ctx.Err() == nil {
			s.met.rotations.WithLabelValues(ResultError).Inc()
		}
		s.depFailed(ctx, d, audit.KindRotate, "fetch new credentials", err)
		return
	}
	s.depOK(d)
	s.install(d, sec, time.Now())
	waits, failed := s.rerenderDependents(ctx, d)
	if ctx.Err() != nil {
		return
	}
	ev := audit.Event{Time: start, Kind: audit.KindRotate, Path: d.path, LeaseID: sec.LeaseID, Duration: time.Since(start), Detail: reason}
	if sec.LeaseID != "" {
		ev.TTL = sec.LeaseDuration
	}
	if oldLease != "" {
		ev.Detail += "; replaces lease " + oldLease
	}
	if len(failed) > 0 {
		ev.Outcome = ResultError
		ev.Error = fmt.Sprintf("%d file(s) could not be rendered with the new credentials (%s); see their render events", len(failed), strings.Join(failed, ", "))
		if oldLease != "" {
			ev.Error += "; the old lease is not revoked and ends on its own"
			s.met.revocations.WithLabelValues(ResultSkipped).Inc()
		}
		s.met.rotations.WithLabelValues(ResultError).Inc()
		s.audit.Record(ev)
		s.log.Warn("secret rotated, but not every file was updated", "path", d.path, "old_lease", oldLease, "lease_id", sec.LeaseID, "failed_files", failed)
		return
	}
	ev.Outcome = ResultOK
	s.met.rotations.WithLabelValues(ResultOK).Inc()
	s.audit.Record(ev)
	s.log.Info("secret rotated", "path", d.path, "reason", reason, "old_lease", oldLease, "lease_id", sec.LeaseID, "reloads", len(waits))
	if oldLease != "" && s.g != nil {
		s.g.Go(func() error {
			s.revokeAfter(ctx, d.path, oldLease, waits)
			return nil
		})
	}
}

// revokeAfter waits until every reload in waits succeeded, then revoke_grace, then
// revokes leaseID. If a reload fails, the lease is not revoked: the application may
// still use the old credentials, which end on their own at the lease's TTL.
func (s *Syncer) revokeAfter(ctx context.Context, path, leaseID string, waits []wait) {
	leases := []leaseRef{{Path: path, LeaseID: leaseID}}
	if !s.reloadedFor(ctx, leases, waits) {
		return
	}
	if !sleep(ctx, s.cfg.RevokeGrace) {
		s.log.Info("stopping before the rotated lease was revoked; it ends on its own", "path", path, "lease_id", leaseID)
		return
	}
	s.revokeLease(ctx, path, leaseID, fmt.Sprintf("after the reload and %s grace", s.cfg.RevokeGrace))
}

// revokeOrphans revokes the leases an earlier run left (see leaseState) once this
// run's first render is reloaded and revoke_grace has passed, and forgets them.
func (s *Syncer) revokeOrphans(ctx context.Context, orphans []leaseRef, waits []wait) {
	if !s.reloadedFor(ctx, orphans, waits) {
		if ctx.Err() == nil {
			for _, l := range orphans {
				_ = s.leases.drop(l.LeaseID) // left to expire: nothing more to do
			}
		}
		return
	}
	if !sleep(ctx, s.cfg.RevokeGrace) {
		return
	}
	for _, l := range orphans {
		s.revokeLease(ctx, l.Path, l.LeaseID, fmt.Sprintf("a lease of an earlier run, replaced by this run's credentials; after the reload and %s grace", s.cfg.RevokeGrace))
		if ctx.Err() != nil {
			return
		}
		if err := s.leases.drop(l.LeaseID); err != nil {
			s.log.Warn("cannot save the lease state", "error", err)
		}
	}
}

// reloadedFor waits for every reload in waits and reports whether leases may be
// revoked: every reload succeeded and told the application. Otherwise it records why
// they are not revoked (they end on their own at their TTL).
func (s *Syncer) reloadedFor(ctx context.Context, leases []leaseRef, waits []wait) bool {
	skip := func(outcome, msg string) {
		for _, l := range leases {
			s.met.revocations.WithLabelValues(ResultSkipped).Inc()
			ev := audit.Event{Time: time.Now(), Kind: audit.KindRevoke, Path: l.Path, LeaseID: l.LeaseID, Outcome: outcome}
			if outcome == ResultOK {
				ev.Detail = msg
			} else {
				ev.Error = msg
			}
			s.audit.Record(ev)
		}
	}
	for _, w := range waits {
		out, err := w.r.Wait(ctx, w.t)
		if ctx.Err() != nil {
			s.log.Info("stopping before the replaced leases were revoked; they end on their own", "leases", len(leases))
			return false
		}
		if err == nil && out.OK && out.Method == reload.MethodNone {
			// Nobody told the application: it may still hold the old credentials
			// (a connection pool, a served certificate). Let the leases run out.
			skip(ResultOK, "not revoked: reload method is none, so the application was not told about the new credentials; the old lease ends on its own")
			s.log.Info("rotated lease left to expire: no reload is configured", "leases", len(leases))
			return false
		}
		if err == nil && out.OK {
			continue
		}
		if err == nil {
			err = out.Err
		}
		skip(ResultError, fmt.Sprintf("not revoked: the application did not reload with the new credentials (%v); the old credentials stay valid until the lease ends", err))
		s.log.Warn("rotated lease not revoked: the reload failed", "leases", len(leases), "error", err)
		return false
	}
	return true
}

// revokeLease revokes leaseID, retrying what is worth retrying, and records the
// outcome.
func (s *Syncer) revokeLease(ctx context.Context, path, leaseID, detail string) {
	bo := s.backoff()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := s.client.RevokeLease(ctx, leaseID)
		ev := audit.Event{Time: start, Kind: audit.KindRevoke, Path: path, LeaseID: leaseID, Duration: time.Since(start), Detail: detail}
		if err == nil {
			ev.Outcome = ResultOK
			s.met.revocations.WithLabelValues(ResultOK).Inc()
			s.audit.Record(ev)
			s.log.Info("lease revoked", "path", path, "lease_id", leaseID)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == revokeAttempts || !vault.IsRetryable(err) {
			ev.Outcome, ev.Error = ResultError, err.Error()+"; the lease ends on its own at its TTL"
			s.met.revocations.WithLabelValues(ResultError).Inc()
			s.audit.Record(ev)
			s.log.Warn("lease not revoked", "path", path, "lease_id", leaseID, "error", err)
			return
		}
		if !sleep(ctx, bo.Next()) {
			return
		}
	}
}

// depFailed records a failed request for d and schedules the retry: jittered
// backoff, never longer than poll_interval. The first failure of a streak is logged
// as a warning and audited; the rest until a success are logged at debug level.
func (s *Syncer) depFailed(ctx context.Context, d *dep, kind audit.Kind, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	d.failures++
	delay := s.retryDelay(&d.bo)
	d.next = time.Now().Add(delay)
	msg := err.Error()
	if d.failures > 1 {
		s.log.Debug("vault request still failing", "op", what, "path", d.path, "attempts", d.failures, "error", msg, "retry_in", delay.Round(time.Millisecond))
		return
	}
	s.audit.Record(audit.Event{Time: time.Now(), Kind: kind, Path: d.path, LeaseID: d.leaseID, Outcome: ResultError, Error: msg,
		Detail: "could not " + what + "; retrying with backoff, the files keep their last good content"})
	s.log.Warn("vault request failed; retrying", "op", what, "path", d.path, "error", msg, "retry_in", delay.Round(time.Millisecond))
}

// depOK ends a failure streak of d.
func (s *Syncer) depOK(d *dep) {
	if d.failures > 0 {
		s.audit.Record(audit.Event{Time: time.Now(), Kind: audit.KindFetch, Path: d.path, Outcome: ResultOK,
			Detail: fmt.Sprintf("vault answered again after %d failed attempt(s)", d.failures)})
		s.log.Info("vault answered again", "path", d.path, "failed_attempts", d.failures)
	}
	d.failures = 0
	d.bo.Reset()
}
