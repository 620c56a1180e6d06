package secrets

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/vaulttest"
	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/render"
)

// TestVaultUnreachable freezes the Vault process with SIGSTOP (to the client it is a
// network partition: connections open, nothing answers) for a few seconds. The files
// must keep their content and the Syncer stay ready; retries must respect the
// request-rate cap although the backoff asks for more; after SIGCONT every secret is
// checked again and a new version written to Vault reaches its file (how soon is
// logged; make bench-secrets measures propagation latency).
func TestVaultUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := vaulttest.Start(ctx, t.TempDir()) // its own: the test freezes it
	if err != nil {
		t.Fatalf("real Vault: %v", err)
	}
	t.Cleanup(v.Stop)
	pid := vaultPID(t, v)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

	c := v.Client
	for _, name := range []string{"a", "b", "c"} {
		kvPut(t, c, "secret", name, map[string]any{"value": "before-outage-" + name})
	}
	dir := t.TempDir()
	const capPerSecond = 4
	cfg := Config{
		Vault:        tokenVault(v),
		PollInterval: time.Second,
		// The backoff alone would retry every 20-100ms: the cap must hold it back.
		Retry: RetryConfig{InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond},
	}
	cfg.Vault.MaxRequestsPerSecond = capPerSecond
	cfg.Vault.Timeout = 100 * time.Millisecond
	for _, name := range []string{"a", "b", "c"} {
		cfg.Files = append(cfg.Files, File{FileConfig: render.FileConfig{Path: filepath.Join(dir, name), Source: "secret/" + name, Key: "value"}})
	}
	h := newHarness(t, cfg)
	h.run(t)
	eventually(t, 10*time.Second, "the first render", h.s.Ready)
	before := map[string][]byte{}
	for _, name := range []string{"a", "b", "c"} {
		before[name], _ = os.ReadFile(filepath.Join(dir, name))
	}

	outage := *outageDuration
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()

	// A Syncer whose requests hang (30s timeout) still stops at once when cancelled.
	cfg2 := Config{Vault: tokenVault(v), Files: []File{{FileConfig: render.FileConfig{Path: filepath.Join(dir, "other"), Source: "secret/a", Key: "value"}}}}
	s2, err := New(cfg2, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- s2.Run(ctx2) }()
	time.Sleep(500 * time.Millisecond)
	cancel2()
	cancelled := time.Now()
	select {
	case err := <-done2:
		t.Logf("Run returned %v after cancel while its requests to the frozen Vault hung", time.Since(cancelled).Round(time.Millisecond))
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel while Vault hung")
	}

	time.Sleep(outage - time.Since(stopped))
	for name, want := range before {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Errorf("file %s changed while Vault was unreachable", name)
		}
	}
	if !h.s.Ready() {
		t.Error("not ready while Vault is unreachable, although every file was rendered")
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	kvPut(t, c, "secret", "b", map[string]any{"value": "after-outage-b"})
	written := time.Now()
	eventually(t, 10*time.Second, "the new version after the outage", func() bool { return fileHas(filepath.Join(dir, "b"), "after-outage-b") })
	fresh := time.Since(written)

	during := h.req.between(stopped, resumed)
	all := h.req.between(time.Time{}, time.Now())
	minGap := time.Hour
	for i := 1; i < len(all); i++ {
		minGap = min(minGap, all[i].at.Sub(all[i-1].at))
	}
	rate := float64(len(during)) / resumed.Sub(stopped).Seconds()
	t.Logf("Vault frozen %v: %d requests attempted (%.2f/s, cap %d/s; the backoff alone would try every 20-100ms); smallest gap between any two requests %v; new version fresh in the file %v after the write that followed SIGCONT (poll_interval %v)",
		resumed.Sub(stopped).Round(time.Millisecond), len(during), rate, capPerSecond, minGap.Round(time.Millisecond), fresh.Round(time.Millisecond), cfg.PollInterval)
	if len(during) < 4 {
		t.Errorf("only %d requests while Vault was unreachable: the Syncer is not retrying", len(during))
	}
	// The cap is checked as a rate over the whole outage (seconds long), with one
	// request of slack for the window's edges: the limiter spaces requests 1/cap apart,
	// but the recording transport sees each one after a scheduling delay, so a few
	// consecutive requests can look bunched on a busy machine although the limiter
	// held them apart. The backoff alone would make 40-200 requests in this window.
	if limit := resumed.Sub(stopped).Seconds()*capPerSecond + 1; float64(len(during)) > limit {
		t.Errorf("%d requests in %v: above the cap of %d/s", len(during), resumed.Sub(stopped), capPerSecond)
	}
	// How soon the new version arrives after Vault returns depends on the machine's
	// speed: it is logged above and measured by make bench-secrets, not asserted here
	// (eventually above already failed the test if it never arrived).
	if n := len(h.rec.find(audit.KindFetch, "error", "")); n == 0 || n > 3 {
		t.Errorf("%d failure events; want one per secret (the first failure of the outage)", n)
	}
	// Every secret was checked again within one interval of Vault's return.
	var recovered []string
	var lastRecovery time.Duration
	eventually(t, 5*time.Second, "every secret checked again", func() bool {
		recovered, lastRecovery = nil, 0
		for _, e := range h.rec.find(audit.KindFetch, "ok", "") {
			if strings.Contains(e.Detail, "answered again") {
				recovered = append(recovered, e.Path)
				lastRecovery = max(lastRecovery, e.Time.Sub(resumed))
			}
		}
		return len(recovered) >= 3
	})
	t.Logf("every secret checked again %v after Vault returned", lastRecovery.Round(time.Millisecond))
	if len(recovered) != 3 {
		t.Errorf("recovery events for %v; want one per secret", recovered)
	}
}

// vaultPID finds the process of a vaulttest Vault by its listen address.
func vaultPID(t *testing.T, v *vaulttest.Vault) int {
	t.Helper()
	u, err := url.Parse(v.Addr)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("-dev-listen-address=" + u.Host + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmdline, want) && bytes.HasPrefix(cmdline, []byte(vaulttest.Binary())) {
			return pid
		}
	}
	t.Fatalf("no process of the test Vault at %s", v.Addr)
	return 0
}
