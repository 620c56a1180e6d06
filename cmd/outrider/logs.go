package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/agent"
)

// logsCommand is `outrider logs`, whose only subcommand is test.
var logsCommand = &command{
	name: "logs", args: "test --config FILE [--source NAME] [--json] < SAMPLE", summary: "show what the pipeline would ship for sample log lines (dry run)",
	long: `logs test reads log lines on standard input as if they were a file of the configured
source (--source, or the only one) and prints, for each record the pipeline makes of
them, what would be shipped: its Loki labels, structured metadata, level, time and
line (a stack trace joined into one record shows as several lines), and whether an
error event would be sent to Sentry, with its exception type, platform and frame
count. It runs the agent's own file source, joiner, parser, error-event builder and
Loki encoding, and contacts no backend. No secret values are known to it, so nothing
is redacted. --json prints one JSON object per record instead.`,
	example: "kubectl logs deploy/shop | outrider logs test --config outrider.yaml --source app\n  outrider logs test --config outrider.yaml --json < crash.log | jq .error_event",
	flags:   func(fs *flag.FlagSet) { new(logsTestOpts).register(fs) },
	run:     runLogs,
	words:   []string{"test"},
}

type logsTestOpts struct {
	config string
	source string
	json   bool
}

func (o *logsTestOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "path of the YAML configuration file (required)")
	fs.StringVar(&o.source, "source", "", "name of the logs.sources entry the lines are read as (default: the only one)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per record")
}

func runLogs(args []string, stdout, stderr io.Writer) int {
	return runLogsWith(args, os.Stdin, stdout, stderr)
}

// runLogsWith is runLogs reading the sample from stdin.
func runLogsWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "outrider logs: the subcommand is test: outrider logs test --config FILE [--source NAME] [--json] < SAMPLE")
		return exitUsage
	}
	var o logsTestOpts
	if !parseFlags("logs test", args[1:], stderr, o.register) || !requireConfig("logs test", o.config, stderr) {
		return exitUsage
	}
	if o.config == "-" {
		fmt.Fprintln(stderr, "outrider logs test: --config must be a file: standard input holds the sample lines")
		return exitUsage
	}
	cfg, code := loadConfig(o.config, nil, stderr)
	if code != exitOK {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var (
		records, events int
		werr            error
	)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	// The components' warnings (a line cut at max_line_bytes, ...) go to stderr.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	err := agent.DryRun(ctx, cfg, stdin, agent.DryRunSettings{Source: o.source, Logger: logger}, func(r agent.DryRunRecord) {
		records++
		if r.Event != nil {
			events++
		}
		if werr != nil {
			return
		}
		if o.json {
			werr = enc.Encode(r)
			return
		}
		werr = printRecord(stdout, records, r)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintf(stderr, "outrider logs test: %v\n", err)
		if errors.Is(err, agent.ErrDryRunConfig) {
			return exitUsage
		}
		return exitFailed
	}
	if !o.json {
		fmt.Fprintf(stdout, "%d records, %d error events\n", records, events)
	}
	return exitOK
}

// printRecord writes one record for a person to read.
func printRecord(w io.Writer, n int, r agent.DryRunRecord) error {
	var b strings.Builder
	level := r.Level
	if level == "" {
		level = "(none)"
	}
	fmt.Fprintf(&b, "record %d  time %s  level %s\n", n, r.Time.Format(time.RFC3339Nano), level)
	fmt.Fprintf(&b, "  labels:   %s\n", r.Labels)
	if len(r.Metadata) > 0 {
		b.WriteString("  metadata:")
		for _, m := range r.Metadata {
			fmt.Fprintf(&b, " %s=%q", m.Name, m.Value)
		}
		b.WriteByte('\n')
	} else {
		b.WriteString("  metadata: (none)\n")
	}
	if e := r.Event; e != nil {
		fmt.Fprintf(&b, "  error event: %s (platform %s, %d frames", e.Type, e.Platform, e.Frames)
		if e.Exceptions > 1 {
			fmt.Fprintf(&b, ", %d exceptions in the chain", e.Exceptions)
		}
		fmt.Fprintf(&b, ", level %s)\n", e.Level)
	} else {
		b.WriteString("  error event: no\n")
	}
	lines := strings.Split(r.Line, "\n")
	fmt.Fprintf(&b, "  line (%d):\n", len(lines))
	for _, l := range lines {
		fmt.Fprintf(&b, "    | %s\n", l)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
