package secrets

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/pgtest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// Flags for the acceptance runs (make bench-secrets and the 60s outage): the
// defaults keep the package's tests short.
var (
	propagationChanges = flag.Int("propagation-changes", 10, "KV changes measured by TestKVChangeReloadsApp (propagation latency p50/p99)")
	outageDuration     = flag.Duration("outage", 4*time.Second, "how long TestVaultUnreachable freezes Vault")
)

// shared is the real dev-mode Vault most integration tests share; each test works
// under its own mounts, so they run in parallel. The outage test starts its own.
var shared struct {
	once sync.Once
	dir  string
	v    *vaulttest.Vault
	err  error
}

// sharedVault returns the package's Vault, starting it on first use. A missing
// binary fails the test with the command that builds it: integration tests never
// skip.
func sharedVault(t *testing.T) *vaulttest.Vault {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "outrider-secrets-vault-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		shared.v, shared.err = vaulttest.Start(ctx, shared.dir)
	})
	if shared.err != nil {
		t.Fatalf("real Vault: %v", shared.err)
	}
	return shared.v
}

// sharedPG is the real PostgreSQL the database tests share.
var sharedPG struct {
	once sync.Once
	s    *pgtest.Server
	err  error
}

func postgres(t *testing.T) *pgtest.Server {
	t.Helper()
	sharedPG.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		sharedPG.s, sharedPG.err = pgtest.Start(ctx)
	})
	if sharedPG.err != nil {
		t.Fatalf("real PostgreSQL: %v", sharedPG.err)
	}
	return sharedPG.s
}

func TestMain(m *testing.M) {
	// The tests configure the client explicitly; the machine's Vault environment must
	// not leak into them.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") {
			os.Unsetenv(k)
		}
	}
	code := m.Run()
	if shared.v != nil {
		shared.v.Stop()
		if code == 0 {
			os.RemoveAll(shared.dir)
		} else {
			fmt.Fprintf(os.Stderr, "vault server log kept in %s\n", shared.dir)
		}
	}
	if sharedPG.s != nil {
		sharedPG.s.Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
