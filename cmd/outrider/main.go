// Command outrider is a sidecar that carries secrets in and telemetry out.
//
//	outrider agent --config FILE             run the agent
//	outrider render --config FILE --once     render every secret file once and exit
//	outrider validate --config FILE|-        check a configuration and exit
//	outrider status [--addr HOST:PORT]       show a running agent's units and why it is not ready
//	outrider inject [flags]                  run the Kubernetes admission webhook
//	outrider inject -f FILE|-                print FILE's objects with their pods injected
//	outrider logs test --config FILE < SAMPLE show what the pipeline would ship (dry run)
//	outrider completion bash|zsh|fish        print a shell completion script
//	outrider version                         print the version, commit, build date and Go version
//	outrider help [COMMAND]                  show help
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
	"strings"
	"syscall"

	"github.com/outrider-dev/outrider/agent"
	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/exporters/lokiexporter"
	"github.com/outrider-dev/outrider/exporters/otlpexporter"
	"github.com/outrider-dev/outrider/exporters/sentryexporter"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/memtrim"
)

// version, commit and date are set at build time with
// -ldflags "-X main.version=... -X main.commit=... -X main.date=..."; commit and date
// default to what the Go toolchain stamped into the binary (vcs.revision, vcs.time).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// command is one subcommand: its usage line, what it does, an example, and its flags
// (registered on a FlagSet for parsing, help and shell completion alike).
type command struct {
	name    string
	args    string // what follows the name in the usage line
	summary string // one line, for the command list
	long    string // what it does, for `outrider help NAME`
	example string
	// flags registers the command's flags with fresh variables (for help and
	// completion); the command's run registers its own.
	flags func(fs *flag.FlagSet)
	run   func(args []string, stdout, stderr io.Writer) int
	// words are the values completed after the command (completion's shells).
	words []string
}

var commands []*command

func init() {
	commands = []*command{
		{
			name: "agent", args: "--config FILE [--overlay FILE]...", summary: "run the sidecar agent",
			long: `Runs the agent: renders the secret files and keeps them fresh, ships logs, traces and
errors, and serves /metrics, /healthz and /readyz on server.listen. The configuration
file and its overlays (merged over it in order, see docs/configuration.md,
"Overlays") are watched; SIGHUP reloads them too. An invalid change is refused:
the agent keeps its last good configuration and /readyz says what is wrong.
SIGTERM drains and stops.`,
			example: "outrider agent --config /etc/outrider/outrider.yaml",
			flags: func(fs *flag.FlagSet) {
				fs.String("config", "", "path of the YAML configuration file (required)")
				new(overlayFlags).register(fs)
			},
			run: runAgent,
		},
		{
			name: "render", args: "--config FILE --once [--timeout D]", summary: "render every secret file once and exit (init containers)",
			long: `Renders every secret file once and exits: 0 when all were written, 1 when any failed
(each named on stderr). While Vault is unreachable it retries with backoff until
--timeout.`,
			example: "outrider render --config /etc/outrider/outrider.yaml --once --timeout 5m",
			flags:   func(fs *flag.FlagSet) { new(renderOpts).register(fs) },
			run:     runRender,
		},
		{
			name: "validate", args: "--config FILE|- [--overlay FILE]... [--offline]", summary: "check a configuration; print every problem",
			long: `Checks a configuration file ("-" reads standard input) and prints every problem with
its field path. It also checks the host: listeners that collide (server.listen
included), files the configuration names (template_file, tls files), whether
data_dir is writable, and receivers that can only refuse what they get. --offline
skips the checks of the host, for a file meant for another machine.`,
			example: "outrider validate --config outrider.yaml\n  kubectl get cm outrider -o jsonpath='{.data.outrider\\.yaml}' | outrider validate --config - --offline",
			flags:   func(fs *flag.FlagSet) { new(validateOpts).register(fs) },
			run:     runValidate,
		},
		{
			name: "status", args: "[--addr HOST:PORT | --config FILE]", summary: "show a running agent's units and why it is not ready",
			long: `Asks a running agent (its /readyz) whether it is ready and healthy, and prints each
unit's state and last error. Exit 0 when ready, 1 when not (or unreachable).`,
			example: "outrider status --addr 127.0.0.1:8686",
			flags:   func(fs *flag.FlagSet) { new(statusOpts).register(fs) },
			run:     runStatus,
		},
		{
			name: "inject", args: "[flags] [-f FILE|-]", summary: "run the Kubernetes mutating webhook that injects the sidecar",
			long: `Runs the HTTPS admission webhook that injects the outrider sidecar into annotated
pods. With --self-signed it makes the webhook's CA and certificate, prints the
caBundle, and exits. With -f it prints the objects of a YAML file with their pods
injected, as the webhook would inject them with the same defaults, and exits 1
(printing nothing) when a pod is denied.`,
			example: "outrider inject --tls-cert /tls/tls.crt --tls-key /tls/tls.key --vault-addr https://vault:8200\n  outrider inject --self-signed --out-dir /tls --namespace outrider\n  outrider inject --config injector.yaml -f deployment.yaml | kubectl apply -f -",
			flags:   func(fs *flag.FlagSet) { new(injectFlags).register(fs) },
			run:     runInject,
		},
		logsCommand,
		{
			name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script",
			long:    `Prints a completion script for bash, zsh or fish.`,
			example: "source <(outrider completion bash)\n  outrider completion zsh > \"${fpath[1]}/_outrider\"\n  outrider completion fish > ~/.config/fish/completions/outrider.fish",
			run:     runCompletion,
			words:   []string{"bash", "zsh", "fish"},
		},
		{
			name: "version", summary: "print the version, commit, build date and Go version",
			long:    `Prints the version, the commit and date it was built from, and the Go version.`,
			example: "outrider version",
			run:     runVersion,
		},
		{
			name: "help", args: "[COMMAND]", summary: "show help for outrider or a command",
			long:    `Shows the list of commands, or a command's usage, flags and example.`,
			example: "outrider help render",
			run:     runHelp,
		},
	}
	for _, c := range commands {
		if c.name == "help" {
			for _, o := range commands {
				c.words = append(c.words, o.name)
			}
		}
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return runHelp(args[1:], stdout, stderr)
	case "--version", "-version":
		return runVersion(nil, stdout, stderr)
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "outrider: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	if c.name != "help" && wantsHelp(args[1:]) {
		printHelp(stdout, c)
		return exitOK
	}
	return c.run(args[1:], stdout, stderr)
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: outrider <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "outrider help COMMAND" or "outrider COMMAND --help" for a command's flags and an example.`)
}

func printHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: outrider %s %s\n\n%s\n", c.name, c.args, c.long)
	if c.flags != nil {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs)
		fmt.Fprintln(w, "\nflags:")
		fs.VisitAll(func(f *flag.Flag) {
			kind, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s %s\n      %s", f.Name, kind, usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
	fmt.Fprintf(w, "\nexample:\n  %s\n", c.example)
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "outrider help: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	printHelp(stdout, c)
	return exitOK
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "outrider version: unexpected argument %q\n", args[0])
		return exitUsage
	}
	bi := agent.ReadBuildInfo(version, commit, date)
	modified := ""
	if bi.Modified {
		modified = " (modified)"
	}
	fmt.Fprintf(stdout, "outrider %s\ncommit:  %s%s\nbuilt:   %s\ngo:      %s\n", bi.Version, bi.Revision, modified, bi.BuildDate, bi.GoVersion)
	return exitOK
}

// parseFlags parses a subcommand's flags; it reports usage errors on stderr.
func parseFlags(name string, args []string, stderr io.Writer, register func(*flag.FlagSet)) bool {
	fs := flag.NewFlagSet("outrider "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "outrider %s: %v\nRun \"outrider help %s\" for its flags.\n", name, err, name)
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outrider %s: unexpected argument %q\n", name, fs.Arg(0))
		return false
	}
	return true
}

// requireConfig reports a missing --config.
func requireConfig(name, path string, stderr io.Writer) bool {
	if path == "" {
		fmt.Fprintf(stderr, "outrider %s: --config FILE is required\n", name)
		return false
	}
	return true
}

// loadConfig loads path ("-" reads stdin).
func loadConfig(path string, stdin io.Reader, stderr io.Writer) (*config.Config, int) {
	var (
		cfg *config.Config
		err error
	)
	if path == "-" {
		data, rerr := io.ReadAll(io.LimitReader(stdin, config.MaxBytes+1))
		if rerr != nil {
			err = fmt.Errorf("read standard input: %w", rerr)
		} else {
			cfg, err = config.Parse("<stdin>", data) // refuses more than MaxBytes
		}
	} else {
		cfg, err = config.Load(path)
	}
	if err != nil {
		name := path
		if path == "-" {
			name = "<stdin>"
		}
		fmt.Fprintf(stderr, "outrider: invalid configuration %s: %v\n", name, err)
		if confval.IsConfigError(err) {
			return nil, exitUsage
		}
		return nil, exitFailed
	}
	return cfg, exitOK
}

func runAgent(args []string, _, stderr io.Writer) int {
	var path string
	var overlays overlayFlags
	if !parseFlags("agent", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&path, "config", "", "path of the YAML configuration file (required)")
		overlays.register(fs)
	}) || !requireConfig("agent", path, stderr) {
		return exitUsage
	}
	if path == "-" {
		fmt.Fprintln(stderr, "outrider agent: --config must be a file: the agent watches it for changes")
		return exitUsage
	}
	// Package initialisation has mapped two thirds of the executable, and none of it
	// runs again: unmap those pages before the configuration's parser and the
	// start-up map their own, so that the two do not add up to the process's peak
	// (internal/memtrim; the agent pages out what start-up touched once its units
	// have started). Failing to costs only memory.
	_, _ = memtrim.UnmapExecutable()
	cfg, code, problem := loadAgentConfig(path, overlays, stderr)
	if code != exitOK {
		return code
	}
	level := new(slog.LevelVar)
	level.Set(agent.LevelOf(cfg.Log.Level))
	logger := agent.NewLogger(os.Stderr, cfg.Log.Format, level)
	lokiexporter.UserAgent = "outrider/" + version
	otlpexporter.UserAgent = "outrider/" + version
	sentryexporter.UserAgent = "outrider/" + version

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
		ConfigPath:    path,
		Overlays:      overlays,
		ConfigProblem: problem,
		Config:        cfg,
		Logger:        logger,
		LogLevel:      level,
		Version:       version,
		Commit:        commit,
		Date:          date,
		Reload:        reload,
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

// joinWords is a shell word list.
func joinWords(w []string) string { return strings.Join(w, " ") }
