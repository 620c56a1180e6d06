package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/agent"
	"github.com/outrider-dev/outrider/internal/backoff"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/secrets/audit"
	"github.com/outrider-dev/outrider/secrets/vault"
)

type renderOpts struct {
	config  string
	once    bool
	timeout time.Duration
}

func (o *renderOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "path of the YAML configuration file (required; - reads standard input)")
	fs.BoolVar(&o.once, "once", false, "render every file once and exit (required)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "keep retrying while Vault is unreachable, with backoff, for this long")
}

// runRender renders every secret file once, for init containers and scripts: exit 0
// when all were written, 1 when any failed (each named on stderr), 2 on usage or
// configuration errors. Failures worth retrying (Vault unreachable, 5xx) are retried
// with the configured backoff until --timeout.
func runRender(args []string, stdout, stderr io.Writer) int {
	var o renderOpts
	if !parseFlags("render", args, stderr, o.register) || !requireConfig("render", o.config, stderr) {
		return exitUsage
	}
	if !o.once {
		fmt.Fprintln(stderr, "outrider render: only --once is supported; run `outrider agent` to keep secrets fresh")
		return exitUsage
	}
	if o.timeout <= 0 {
		fmt.Fprintf(stderr, "outrider render: --timeout must be positive, got %s\n", o.timeout)
		return exitUsage
	}
	cfg, code := loadConfig(o.config, os.Stdin, stderr)
	if code != exitOK {
		return code
	}
	if !cfg.Secrets.Enabled() {
		fmt.Fprintf(stderr, "outrider render: %s has no secrets.files to render\n", o.config)
		return exitUsage
	}
	level := new(slog.LevelVar)
	level.Set(agent.LevelOf(cfg.Log.Level))
	logger := agent.NewLogger(os.Stderr, cfg.Log.Format, level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	sc := cfg.Secrets
	sc.ApplyDefaults()
	bo := backoff.Backoff{Initial: sc.Retry.InitialInterval, Max: sc.Retry.MaxInterval, Jitter: backoff.JitterFull}
	metrics := secrets.NewMetrics(nil)
	for attempt := 1; ; attempt++ {
		s, err := secrets.New(cfg.Secrets, secrets.Settings{
			Logger:    logger, // the syncer names its component itself
			Audit:     audit.SinkFunc(func(e audit.Event) { logger.LogAttrs(ctx, slog.LevelInfo, "audit", e.Attrs()...) }),
			Metrics:   metrics,
			StateFile: secrets.StateFile(cfg.DataDir),
		})
		if err != nil {
			fmt.Fprintf(stderr, "outrider render: %v\n", err)
			return exitUsage
		}
		err = s.RenderOnce(ctx)
		if err == nil {
			fmt.Fprintf(stdout, "rendered %d secret files\n", len(cfg.Secrets.Files))
			return exitOK
		}
		if !retryable(err) || ctx.Err() != nil {
			if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintf(stderr, "outrider render: gave up after %s (--timeout) and %d attempts: %v\n", o.timeout, attempt, err)
			} else {
				fmt.Fprintf(stderr, "outrider render: %v\n", err)
			}
			return exitFailed
		}
		d := bo.Next()
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			d = max(time.Until(dl), 0)
		}
		logger.Warn("secret files not rendered yet; retrying", "attempt", attempt, "retry_in", d.Round(time.Millisecond).String(), "error", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			fmt.Fprintf(stderr, "outrider render: gave up after %s (--timeout) and %d attempts: %v\n", o.timeout, attempt, err)
			return exitFailed
		case <-t.C:
		}
	}
}

// retryable reports whether every file RenderOnce could not render failed for a
// reason worth retrying (Vault unreachable or overloaded); a missing key or a denied
// path is not.
func retryable(err error) bool {
	var oe *secrets.OnceError
	if errors.As(err, &oe) {
		for _, f := range oe.Files {
			if !vault.IsRetryable(f.Err) {
				return false
			}
		}
		return len(oe.Files) > 0
	}
	return vault.IsRetryable(err)
}
