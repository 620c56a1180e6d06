// Command outrider is a sidecar that carries secrets in and telemetry out.
//
//	outrider agent --config FILE          run the agent
//	outrider render --config FILE --once  render every secret file once and exit
//	outrider validate --config FILE       check a configuration file and exit
//	outrider inject [flags]               run the Kubernetes admission webhook
//	outrider version                  print the version
//
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/agent"
	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/loki"
	otlpexp "github.com/outrider-dev/outrider/exporters/otlp"
	sentryexp "github.com/outrider-dev/outrider/exporters/sentry"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const usage = `usage: outrider <command> [flags]

commands:
  agent --config FILE          run the sidecar agent
  render --config FILE --once  render every secret file once and exit (init containers)
  validate --config FILE       check a configuration file; print every problem
  inject [flags]               run the Kubernetes mutating webhook that injects the sidecar
  inject --self-signed ...     make the webhook's CA and certificate; print the caBundle
  version                  print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "agent":
		return runAgent(args[1:], stderr)
	case "validate":
		return runValidate(args[1:], stdout, stderr)
	case "render":
		return runRender(args[1:], stdout, stderr)
	case "inject":
		return runInject(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "outrider %s\n", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "outrider: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// configFlag parses the --config flag of a subcommand; more adds the subcommand's own
// flags.
func configFlag(name string, args []string, stderr io.Writer, more ...func(*flag.FlagSet)) (string, bool) {
	fs := flag.NewFlagSet("outrider "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path of the YAML configuration file")
	for _, m := range more {
		m(fs)
	}
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outrider %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "outrider %s: --config FILE is required\n", name)
		return "", false
	}
	return *path, true
}

func loadConfig(path string, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "outrider: invalid configuration %s: %v\n", path, err)
		if confval.IsConfigError(err) {
			return nil, exitUsage
		}
		return nil, exitFailed
	}
	return cfg, exitOK
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return exitUsage
	}
	if _, code := loadConfig(path, stderr); code != exitOK {
		return code
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", path)
	return exitOK
}

// runRender renders every secret file once, for init containers and scripts: exit 0
// when all were written, 1 when any failed (each named on stderr), 2 on usage or
// configuration errors.
func runRender(args []string, stdout, stderr io.Writer) int {
	var once bool
	var timeout time.Duration
	path, ok := configFlag("render", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&once, "once", false, "render every file once and exit (required)")
		fs.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	})
	if !ok {
		return exitUsage
	}
	if !once {
		fmt.Fprintln(stderr, "outrider render: only --once is supported; run `outrider agent` to keep secrets fresh")
		return exitUsage
	}
	cfg, code := loadConfig(path, stderr)
	if code != exitOK {
		return code
	}
	if !cfg.Secrets.Enabled() {
		fmt.Fprintf(stderr, "outrider render: %s has no secrets.files to render\n", path)
		return exitUsage
	}
	level := new(slog.LevelVar)
	level.Set(agent.LevelOf(cfg.Log.Level))
	logger := agent.NewLogger(os.Stderr, cfg.Log.Format, level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := secrets.New(cfg.Secrets, secrets.Settings{
		Logger:    logger.With("component", "secrets"),
		Audit:     audit.SinkFunc(func(e audit.Event) { logger.LogAttrs(ctx, slog.LevelInfo, "audit", e.Attrs()...) }),
		Metrics:   secrets.NewMetrics(nil),
		StateFile: secrets.StateFile(cfg.DataDir),
	})
	if err != nil {
		fmt.Fprintf(stderr, "outrider render: %v\n", err)
		return exitUsage
	}
	if err := s.RenderOnce(ctx); err != nil {
		fmt.Fprintf(stderr, "outrider render: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "rendered %d secret files\n", len(cfg.Secrets.Files))
	return exitOK
}

func runAgent(args []string, stderr io.Writer) int {
	path, ok := configFlag("agent", args, stderr)
	if !ok {
		return exitUsage
	}
	cfg, code := loadConfig(path, stderr)
	if code != exitOK {
		return code
	}
	level := new(slog.LevelVar)
	level.Set(agent.LevelOf(cfg.Log.Level))
	logger := agent.NewLogger(os.Stderr, cfg.Log.Format, level)
	loki.UserAgent = "outrider/" + version
	otlpexp.UserAgent = "outrider/" + version
	sentryexp.UserAgent = "outrider/" + version

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()

	a := agent.New(agent.Options{
		ConfigPath: path,
		Config:     cfg,
		Logger:     logger,
		LogLevel:   level,
		Version:    version,
		Reload:     reload,
	})
	if err := a.Run(ctx); err != nil {
		logger.Error("agent failed", "error", err)
		if confval.IsConfigError(err) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
}
