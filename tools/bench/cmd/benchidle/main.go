// Command benchidle measures what the injected sidecar costs a pod when little
// happens: how long it takes from exec until /readyz says the secrets are rendered
// (what the application's containers wait for in native-sidecar mode), its resident
// memory after it has been idle, and whether it gives memory back after a burst.
//
//	go run ./tools/bench/cmd/benchidle -outrider bin/outrider
//
// The sidecar runs as the injector makes it: a sample pod (a log file, errors to
// Sentry through the sidecar, traces, one KV secret from Vault with a JWT login) goes
// through the injector's own InjectObject, and benchidle runs the resulting
// container's arguments, environment and configuration with each of the pod's
// volumes a directory of the working directory and the listeners on free ports. Its
// backends are real: Vault and Loki (built by tools/backends/build.sh); Sentry and
// the OTLP trace endpoint are counting sinks in benchidle.
//
// Each of -starts runs starts the binary with empty volumes and times exec → /readyz
// answering 200 with the secret file holding the value; the agent's own Vault request
// timings (outrider_vault_request_duration_seconds) are read right after, so that the
// start-up without the Vault round trips can be judged. The first -idle-runs of them go
// on: -idle with no input but the liveness probe the injector sets (/healthz every
// 10 s), the memory read (/proc/PID/smaps_rollup), then a burst (log
// lines, OTLP trace requests, Sentry events) waited for until every part arrived, then
// -settle of nothing and the memory read again. The peer, Vault Agent from the same
// Vault build, renders the same secret with the same login and is measured the same
// way (start-up, idle memory).
//
// Gates apply to the median of the runs; the table prints the max beside it.
// Exit status: 0 when every gate holds, 1 otherwise or when a run failed, 2 for bad
// usage.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/internal/vaulttest"
	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/procstat"
)

type options struct {
	outrider, vaultAgent string
	workdir              string
	starts, idleRuns     int
	idle, settle         time.Duration
	burst                burstSize
	gates                gates
	peer                 bool
	// pprof turns the agent's /debug/pprof on, to look at what it holds while idle.
	pprof bool
}

// gates are the targets, each on the median of the runs.
type gates struct {
	// maxStartup bounds exec → ready minus the agent's Vault request time.
	maxStartup time.Duration
	// maxIdleMiB bounds the RSS after the idle time; maxAfterBurstMiB the RSS the
	// settle time after a burst.
	maxIdleMiB, maxAfterBurstMiB float64
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := cli.FlagSet("benchidle", stderr)
	fs.StringVar(&o.outrider, "outrider", "", "outrider binary (required; build it with `make build`)")
	fs.StringVar(&o.vaultAgent, "vault", vaulttest.Binary(), "the Vault binary built by tools/backends/build.sh vault: the server the sidecar talks to, and the peer (vault agent)")
	fs.StringVar(&o.workdir, "workdir", "", cli.WorkdirUsage)
	fs.IntVar(&o.starts, "starts", 5, "how many times each system is started and timed")
	fs.IntVar(&o.idleRuns, "idle-runs", 3, "how many of the starts go on to the idle and burst measurements")
	fs.DurationVar(&o.idle, "idle", 30*time.Second, "how long a system runs idle before its memory is read")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "how long after a burst was delivered the memory is read again")
	fs.IntVar(&o.burst.lines, "burst-lines", 20000, "log lines (~200 bytes) in a burst")
	fs.IntVar(&o.burst.traceRequests, "burst-trace-requests", 200, "OTLP/gRPC trace requests in a burst")
	fs.IntVar(&o.burst.spansPerRequest, "burst-spans", 100, "spans in each trace request")
	fs.IntVar(&o.burst.events, "burst-events", 50, "Sentry events in a burst, each of its own fingerprint (the agent sends at most errors.max_per_window, 100, per window)")
	fs.DurationVar(&o.gates.maxStartup, "max-startup", 150*time.Millisecond, "fail if exec → ready, less the agent's Vault request time, exceeds this (0: no check)")
	fs.Float64Var(&o.gates.maxIdleMiB, "max-idle-mb", 15, "fail if the idle RSS exceeds this many MB of 2^20 bytes (0: no check)")
	fs.Float64Var(&o.gates.maxAfterBurstMiB, "max-after-burst-mb", 18, "fail if the RSS after a burst has passed exceeds this many MB of 2^20 bytes (0: no check)")
	fs.BoolVar(&o.peer, "peer", true, "also measure Vault Agent rendering the same secret")
	fs.BoolVar(&o.pprof, "pprof", false, "turn on the agent's /debug/pprof (server.pprof), to profile it while it idles (with a long -idle)")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.outrider == "":
		return o, cli.Usagef("-outrider is required (build it with `make build`)")
	case o.starts <= 0:
		return o, cli.Usagef("-starts must be positive, got %d", o.starts)
	case o.idleRuns < 0 || o.idleRuns > o.starts:
		return o, cli.Usagef("-idle-runs must be between 0 and -starts (%d), got %d", o.starts, o.idleRuns)
	case o.idle < 0 || o.settle < 0:
		return o, cli.Usagef("-idle and -settle must not be negative")
	case o.burst.lines < 0 || o.burst.traceRequests < 0 || o.burst.spansPerRequest <= 0 || o.burst.events < 0:
		return o, cli.Usagef("the burst sizes must not be negative, and -burst-spans must be positive")
	}
	for _, b := range []*string{&o.outrider, &o.vaultAgent} {
		abs, err := filepath.Abs(*b)
		if err != nil {
			return o, err
		}
		if _, err := os.Stat(abs); err != nil {
			return o, fmt.Errorf("%w (build outrider with `make build`, Vault with tools/backends/build.sh vault)", err)
		}
		*b = abs
	}
	return o, nil
}

// command is the whole program.
var command = cli.Command[options, result]{Name: "benchidle", Parse: parseFlags, Bench: bench, Print: printTable, Check: check}

func main() { command.Main() }

// result is one system's runs, or why they stopped.
type result struct {
	name    string
	runs    []run
	problem string
	// load is the load average when the system's runs began and ended.
	loadBefore, loadAfter string
}

// Systems' names in the table.
const (
	nameOutrider   = "outrider"
	nameVaultAgent = "vault agent"
)

// bench starts the backends, injects the sample pod, and measures outrider, then the
// peer.
func bench(ctx context.Context, logger *slog.Logger, o options, stderr io.Writer) ([]result, error) {
	workdir, cleanup, err := cli.Workdir(o.workdir, "benchidle")
	defer cleanup()
	if err != nil {
		return nil, err
	}
	b, err := startBackends(ctx, workdir)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	free, err := backendtest.FreePorts(4)
	if err != nil {
		return nil, err
	}
	s, err := injectSidecar(filepath.Join(workdir, "pod"), backendAddrs{vault: b.vault.Addr, loki: b.loki.URL, otlp: b.otlp.url()},
		ports{server: free[0], otlpGRPC: free[1], otlpHTTP: free[2], sentry: free[3]}, o.pprof)
	if err != nil {
		return nil, err
	}
	b.startSentry(s.sentryKey)
	logger.Info("injected sidecar", "args", s.args, "env", s.env)
	logger.Info("injected configuration\n" + s.config)

	ro := runOptions{
		workdir: workdir, idle: o.idle, settle: o.settle, ready: time.Minute, poll: 5 * time.Millisecond,
		burst: o.burst, stopGrace: 30 * time.Second, out: stderr,
	}
	systems := []struct {
		name    string
		measure func(seq int, full bool) (run, string, error)
	}{
		{nameOutrider, func(seq int, full bool) (run, string, error) {
			return measureOutrider(ctx, logger, o.outrider, s, b, ro, seq, full)
		}},
	}
	if o.peer {
		systems = append(systems, struct {
			name    string
			measure func(seq int, full bool) (run, string, error)
		}{nameVaultAgent, func(_ int, full bool) (run, string, error) {
			return measureVaultAgent(ctx, logger, o.vaultAgent, b, ro, full)
		}})
	}
	var results []result
	for _, sys := range systems {
		res := result{name: sys.name, loadBefore: procstat.LoadAverage()}
		for i := range o.starts {
			r, problem, err := sys.measure(i+1, i < o.idleRuns)
			if err != nil {
				return append(results, res), err
			}
			if problem != "" {
				res.problem = fmt.Sprintf("start %d: %s", i+1, problem)
				break
			}
			logger.Info("run", "system", sys.name, "start", i+1, "startup", r.startup.Round(time.Millisecond),
				"vault", r.vault.Round(time.Millisecond), "vault_requests", r.vaultRequests)
			res.runs = append(res.runs, r)
		}
		res.loadAfter = procstat.LoadAverage()
		results = append(results, res)
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}
