package vaulttest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMissingBinary(t *testing.T) {
	t.Setenv("OUTRIDER_VAULT_BIN", filepath.Join(t.TempDir(), "no-vault"))
	_, err := Start(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "run `make backends`") || !strings.Contains(err.Error(), "OUTRIDER_VAULT_BIN") {
		t.Fatalf("Start = %v, want the command that builds Vault", err)
	}
}

func TestBinaryPath(t *testing.T) {
	t.Setenv("OUTRIDER_VAULT_BIN", "")
	t.Setenv("OUTRIDER_CACHE", "/cache")
	if got := Binary(); got != "/cache/bin/vault-"+Version {
		t.Fatalf("Binary = %s", got)
	}
	t.Setenv("OUTRIDER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := Binary(); got != "/xdg/outrider/bin/vault-"+Version {
		t.Fatalf("Binary = %s", got)
	}
}

func TestStartRestartStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	t.Setenv("VAULT_TOKEN", "not-the-root-token") // must not reach the server or the root client
	v, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	if !strings.HasPrefix(v.Addr, "http://127.0.0.1:") || v.RootToken != "root" || v.Client.Token() != "root" {
		t.Fatalf("addr %s root %s client token %q", v.Addr, v.RootToken, v.Client.Token())
	}
	if _, err := v.Client.KVv2("secret").Put(ctx, "x", map[string]any{"k": "v"}); err != nil {
		t.Fatalf("dev server has no KV v2 at secret/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".vault-token")); !os.IsNotExist(err) {
		t.Fatalf("the root token was stored in the server's home: %v", err)
	}
	addr := v.Addr
	if err := v.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if v.Addr != addr {
		t.Fatalf("Restart moved Vault from %s to %s", addr, v.Addr)
	}
	if h, err := v.Client.Sys().Health(); err != nil || h.Sealed {
		t.Fatalf("after Restart: %+v, %v", h, err)
	}
	v.Stop()
	if _, err := v.Client.Sys().Health(); err == nil {
		t.Fatal("Vault still answers after Stop")
	}
	v.Stop() // twice is safe
}
