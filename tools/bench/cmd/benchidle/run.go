package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

// run is one start of a system: how long it took to be ready, and for the runs that
// went on, its memory idle and after a burst.
type run struct {
	// startup runs from exec to ready (outrider: /readyz answers 200 and the secret
	// file holds the value; Vault Agent: the file holds the value).
	startup time.Duration
	// vault is the time the agent spent in the Vault requests the render waited for
	// before it was ready, by its own outrider_vault_request_duration_seconds;
	// vaultRequests how many they were.
	vault         time.Duration
	vaultRequests int
	// idle is the memory after the idle time; zero when the run stopped at ready.
	idle procstat.Memory
	// burstPeak is the peak RSS (VmHWM) once the burst was delivered; afterBurst the
	// memory the settle time later.
	burstPeak  int64
	afterBurst procstat.Memory
	// delivered says what the burst's sinks counted.
	delivered string
}

// runOptions are the settings of every run.
type runOptions struct {
	workdir   string
	idle      time.Duration
	settle    time.Duration
	ready     time.Duration
	poll      time.Duration
	burst     burstSize
	stopGrace time.Duration
	out       io.Writer
}

// prepareVolumes empties the sidecar's volumes and writes what the pod would hold:
// the configuration, the service-account token, the upstream DSN, and an empty log
// file for the application.
func prepareVolumes(s *sidecar, b *backends) error {
	for _, d := range s.volumes {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range s.mounts {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		s.configPath(): s.config,
		s.tokenPath:    b.jwt,
		s.dsnFile:      b.sentry.DSN(s.sentryKey, 1),
		s.logFile():    "",
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// measureOutrider starts the sidecar once and measures it; with full, it also waits
// idle, sends the burst and waits for its memory to come back.
func measureOutrider(ctx context.Context, logger *slog.Logger, bin string, s *sidecar, b *backends, o runOptions, seq int, full bool) (r run, problem string, err error) {
	if err := prepareVolumes(s, b); err != nil {
		return r, "", fmt.Errorf("prepare the volumes: %w", err)
	}
	p, err := measure.StartEnv(logger, "outrider", bin, s.args, o.workdir, s.env)
	if err != nil {
		return r, "", err
	}
	defer func() {
		p.Stop(o.stopGrace)
		if problem != "" {
			p.ShowFailure(o.out, problem)
		}
	}()
	readyURL := "http://" + s.server + "/readyz"
	client := &http.Client{Timeout: time.Second}
	ready := func() bool {
		resp, err := client.Get(readyURL)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && holdsSecret(s.secretFiles[0])
	}
	if r.startup, problem = waitReady(ctx, p, ready, o.ready, o.poll); problem != "" {
		return r, problem, nil
	}
	if r.vault, r.vaultRequests, err = vaultTime(client, "http://"+s.server+"/metrics"); err != nil {
		return r, fmt.Sprintf("read the agent's Vault timings: %v", err), nil
	}
	if !full {
		return r, "", nil
	}
	healthz := "http://" + s.server + "/healthz"
	if r.idle, problem = idleMemory(ctx, logger, p, "outrider", o.idle, healthz); problem != "" {
		return r, problem, nil
	}
	if r.delivered, problem = sendBurst(ctx, s, b, o.burst, seq); problem != "" {
		return r, problem, nil
	}
	u, err := p.Usage()
	if err != nil {
		return r, err.Error(), nil
	}
	r.burstPeak = u.PeakRSS
	if problem = sleep(ctx, p, o.settle, healthz); problem != "" {
		return r, problem, nil
	}
	if r.afterBurst, err = procstat.ReadMemory(p.Pid()); err != nil {
		return r, err.Error(), nil
	}
	logger.Info("after the burst", "system", "outrider", "peak_MiB", mib(r.burstPeak), "rss_MiB", mib(r.afterBurst.RSS),
		"anon_MiB", mib(r.afterBurst.Anon), "file_MiB", mib(r.afterBurst.File), "delivered", r.delivered)
	return r, "", nil
}

// idleMemory waits d while p runs, probed at probe as sleep does, and then reads its
// memory; problem says why it could not.
func idleMemory(ctx context.Context, logger *slog.Logger, p *measure.Process, name string, d time.Duration, probe string) (procstat.Memory, string) {
	if problem := sleep(ctx, p, d, probe); problem != "" {
		return procstat.Memory{}, problem
	}
	m, err := procstat.ReadMemory(p.Pid())
	if err != nil {
		return m, err.Error()
	}
	logger.Info("idle", "system", name, "rss_MiB", mib(m.RSS), "anon_MiB", mib(m.Anon), "file_MiB", mib(m.File))
	return m, ""
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/measure.MiB, 'f', 1, 64) }

// holdsSecret reports whether the rendered file holds the secret's value.
func holdsSecret(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && bytes.Contains(data, []byte(secretValue))
}

// waitReady polls ready every poll until it reports true, and returns the time from
// the process's exec; problem says why it never did.
func waitReady(ctx context.Context, p *measure.Process, ready func() bool, timeout, poll time.Duration) (time.Duration, string) {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return time.Since(p.Started()), ""
		}
		select {
		case <-p.Done():
			return 0, fmt.Sprintf("the process exited (%v) before it was ready", p.Err())
		case <-ctx.Done():
			return 0, "interrupted before ready"
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Sprintf("not ready after %v", timeout)
		}
	}
}

// probeEvery is the period of the liveness probe the injector gives the sidecar.
const probeEvery = 10 * time.Second

// sleep waits d while p runs, asking probe (a URL; "" for none) every probeEvery as
// the kubelet would; problem says why it stopped.
func sleep(ctx context.Context, p *measure.Process, d time.Duration, probe string) string {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-p.Done():
			return fmt.Sprintf("the process exited (%v) while it should run", p.Err())
		case <-ctx.Done():
			return "interrupted"
		case <-end.C:
			return ""
		case <-tick.C:
			if probe == "" {
				continue
			}
			resp, err := client.Get(probe)
			if err != nil {
				return fmt.Sprintf("liveness probe: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Sprintf("liveness probe: %s", resp.Status)
			}
		}
	}
}

// vaultTime sums the agent's Vault request durations and counts from its metrics.
func vaultTime(client *http.Client, url string) (time.Duration, int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseVaultTime(resp.Body)
}

// parseVaultTime reads outrider_vault_request_duration_seconds' _sum and _count
// series from a Prometheus text exposition: the requests the first render waits for
// one after the other (login, mount lookup, read), without the token renewal that
// goes out beside them.
func parseVaultTime(r io.Reader) (time.Duration, int, error) {
	const name = "outrider_vault_request_duration_seconds"
	var sum float64
	var count int
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		var n float64
		if strings.Contains(line, `op="token_renew"`) {
			continue // the token watcher's renewal runs beside the render, not before it
		}
		switch {
		case strings.HasPrefix(line, name+"_sum"):
			dst = &sum
		case strings.HasPrefix(line, name+"_count"):
			dst = &n
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		*dst += v
		count += int(n)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("no %s series", name)
	}
	return time.Duration(sum * float64(time.Second)), count, nil
}

// configPath is the file after the sidecar's --config argument.
func (s *sidecar) configPath() string {
	for i, a := range s.args {
		if (a == "--config" || a == "-config") && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

func (s *sidecar) logFile() string { return filepath.Join(s.logDir, "app.log") }
