package vault

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/vaulttest"
)

// shared is the real dev-mode Vault the integration tests share; each test works
// under its own mounts and roles, so they can run in parallel.
var shared struct {
	once sync.Once
	dir  string
	v    *vaulttest.Vault
	err  error
}

// sharedVault returns the package's Vault, starting it on first use. A missing
// binary fails the test with the command that builds it: integration tests never
// skip.
func sharedVault(t testing.TB) *vaulttest.Vault {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "outrider-vault-test-")
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
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
