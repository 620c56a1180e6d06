package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

// vaultAgentConfig has Vault Agent do what the sidecar's secrets part does: log in
// with the same JWT at the same role and render the same secret into a file.
const vaultAgentConfig = `vault {
  address = %[1]s
}
auto_auth {
  method "jwt" {
    mount_path = "auth/%[2]s"
    config = {
      path = %[3]s
      role = %[4]s
      remove_jwt_after_reading = false
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
template {
  destination = %[5]s
  contents    = "{{ with secret \"%[6]s/data/%[7]s\" }}password={{ .Data.data.password }}{{ end }}"
}
`

// measureVaultAgent starts `vault agent` once, the peer, and measures the time from
// exec to the rendered file; with full, also its memory after the idle time.
func measureVaultAgent(ctx context.Context, logger *slog.Logger, bin string, b *backends, o runOptions, full bool) (r run, problem string, err error) {
	dir := filepath.Join(o.workdir, "vault-agent")
	if err := os.RemoveAll(dir); err != nil {
		return r, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, "", err
	}
	token, dest, cfg := filepath.Join(dir, "token"), filepath.Join(dir, "db"), filepath.Join(dir, "agent.hcl")
	q := strconv.Quote
	files := map[string]string{
		token: b.jwt,
		cfg:   fmt.Sprintf(vaultAgentConfig, q(b.vault.Addr), jwtMount, q(token), q(jwtRole), q(dest), secretMount, secretName),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return r, "", err
		}
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	p, err := measure.StartEnv(logger, "vault-agent", bin, []string{"agent", "-config", cfg, "-log-level", "warn"}, dir, env)
	if err != nil {
		return r, "", err
	}
	defer func() {
		p.Stop(o.stopGrace)
		if problem != "" {
			p.ShowFailure(o.out, problem)
		}
	}()
	if r.startup, problem = waitReady(ctx, p, func() bool { return holdsSecret(dest) }, o.ready, o.poll); problem != "" {
		return r, problem, nil
	}
	if !full {
		return r, "", nil
	}
	r.idle, problem = idleMemory(ctx, logger, p, "vault-agent", o.idle, "")
	return r, problem, nil
}
