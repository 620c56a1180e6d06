package secrets

import (
	"context"
	"slices"
	"strings"
)

// Vault revokes every lease a token created when the token expires or is revoked,
// and the Vault client replaces its token (a new login) before the token's max TTL,
// when renewal fails, and when Vault rejects it. Credentials fetched with the
// previous token — database users, cloud keys — are then dropped by Vault when that
// token ends, long before their lease's own TTL. The Syncer must not wait for the
// next renewal to notice: it rotates them as soon as the client reports a new token,
// while the previous token (and its leases) still live for a while.

// rotateReasonRelogin is the audited reason of those rotations.
const rotateReasonRelogin = "the Vault client logged in with a new token: Vault revokes this lease when the previous token ends"

// fetchedUnder returns the token generation a fetch made between the client
// generations before and after is tied to. A fetch that made the first login (before
// is 0) ran with the token after it; otherwise the older one is kept: if a login
// happened during the fetch, the lease may belong to the previous token, and an
// extra rotation is cheaper than a dropped credential.
func fetchedUnder(before, after uint64) uint64 {
	if before == 0 {
		return after
	}
	return before
}

// stale reports whether d holds a lease created with a token older than generation
// gen, that is not already being retried (a failed rotation is retried by refresh
// with backoff).
func (d *dep) stale(gen uint64) bool {
	return d.leaseID != "" && d.tokenGen != 0 && d.tokenGen < gen && d.failures == 0
}

// rotateStale rotates, through the usual rotation path (fetch, render, reload, then
// revoke the old lease after revoke_grace), every leased dependency fetched with a
// token the client has since replaced. The loop calls it on every iteration and as
// soon as the client signals a login.
func (s *Syncer) rotateStale(ctx context.Context) {
	gen := s.client.Generation()
	var stale []*dep
	for _, d := range s.deps {
		if d.stale(gen) {
			stale = append(stale, d)
		}
	}
	slices.SortFunc(stale, func(a, b *dep) int { return strings.Compare(a.key, b.key) })
	for _, d := range stale {
		if s.deps[d.key] != d || !d.stale(gen) {
			continue // dropped, or replaced by a render since
		}
		s.log.Info("rotating credentials created with the previous Vault token", "path", d.path, "lease_id", d.leaseID)
		s.rotate(ctx, d, rotateReasonRelogin)
		if ctx.Err() != nil {
			return
		}
	}
}
