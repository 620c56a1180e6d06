package vault

import (
	"testing"
	"time"
)

// Leases: Vault's dev server offers no renewable lease without an outside system (the
// database engine needs PostgreSQL, which arrives with the secrets syncer's tests). A
// PKI certificate issued with generate_lease=true has a real, non-renewable lease:
// renewing it must fail with ErrNotRenewable, revoking it must work, and afterwards
// the lease is gone.
func TestPKILease(t *testing.T) {
	t.Parallel()
	mount := unique("pki")
	mountEngine(t, "pki", mount, nil)
	rootWrite(t, mount+"/root/generate/internal", map[string]any{"common_name": "outrider test CA", "ttl": "2h"})
	rootWrite(t, mount+"/roles/app", map[string]any{"allow_any_name": true, "generate_lease": true, "ttl": "10m", "max_ttl": "1h"})
	rec := &recorder{}
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(t).Token())}}, rec.settings())
	ctx := ctxT(t)

	s, err := c.Write(ctx, mount+"/issue/app", map[string]any{"common_name": "app.test", "ttl": "5m"})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	if s.LeaseID == "" || s.Renewable || s.LeaseDuration <= 0 || s.LeaseDuration > 5*time.Minute || s.Data["certificate"] == nil {
		t.Fatalf("issued %v", s)
	}
	_, err = c.RenewLease(ctx, s.LeaseID, time.Minute)
	wantErr(t, err, ErrNotRenewable, "lease "+s.LeaseID+" is not renewable", "fetch a new secret before it expires")
	if IsRetryable(err) {
		t.Error("a non-renewable lease is a permanent error")
	}
	if err := c.RevokeLease(ctx, s.LeaseID); err != nil {
		t.Fatalf("RevokeLease: %v", err)
	}
	if _, err := root(t).Logical().Write("sys/leases/lookup", map[string]any{"lease_id": s.LeaseID}); err == nil {
		t.Fatal("the lease still exists after RevokeLease")
	}
	_, err = c.RenewLease(ctx, s.LeaseID, 0)
	wantErr(t, err, ErrNotFound, "lease "+s.LeaseID+" not found", "fetch a new secret")
	if err := c.RevokeLease(ctx, s.LeaseID); err != nil {
		t.Fatalf("revoking a revoked lease = %v, want success", err)
	}
	if _, err := c.RenewLease(ctx, "", 0); err == nil {
		t.Fatal("RenewLease accepted an empty lease id")
	}
}
