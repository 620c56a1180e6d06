package secrets

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
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

func sharedVault(t *testing.T) *vaulttest.Vault {
	t.Helper()
	return vaulttest.Shared(t)
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
	vaulttest.ClearEnv()
	// The stand-in apps are shells that trap SIGHUP, and a shell cannot trap a
	// signal that was ignored when it started (as under nohup). Handled here, it
	// starts at its default action in every process this test starts.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	code := m.Run()
	vaulttest.StopShared(code == 0)
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
