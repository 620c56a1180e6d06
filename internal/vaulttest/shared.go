package vaulttest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// shared is one dev-mode Vault per test binary; tests work under their own mounts and
// roles, so they can share it and run in parallel.
var shared struct {
	once sync.Once
	dir  string
	v    *Vault
	err  error
}

// Shared returns the test binary's Vault, starting it on first use. A missing binary
// fails the test with the command that builds it: integration tests never skip. Call
// StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Vault {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "outrider-vault-test-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		shared.v, shared.err = Start(ctx, shared.dir)
	})
	if shared.err != nil {
		t.Fatalf("real Vault: %v", shared.err)
	}
	return shared.v
}

// StopShared stops the shared Vault, if one was started. Its directory (with the
// server's log) is removed after passing tests and kept, with a message, otherwise.
func StopShared(passed bool) {
	if shared.v == nil {
		return
	}
	shared.v.Stop()
	if passed {
		os.RemoveAll(shared.dir)
	} else {
		fmt.Fprintf(os.Stderr, "vault server log kept in %s\n", shared.dir)
	}
}

// ClearEnv unsets every VAULT_* variable of this process, so that the machine's Vault
// settings cannot leak into tests that configure the client explicitly.
func ClearEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") {
			os.Unsetenv(k)
		}
	}
}
