package vault

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/kubetest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
)

func sharedVault(t testing.TB) *vaulttest.Vault {
	t.Helper()
	return vaulttest.Shared(t)
}

func TestMain(m *testing.M) {
	vaulttest.ClearEnv()
	code := m.Run()
	vaulttest.StopShared(code == 0)
	kubetest.StopShared(code == 0)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
