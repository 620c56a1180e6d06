// Package cli is the frame the benchmark commands share: parsing their flags, running
// the benchmark, printing its results, turning its verdict into messages and an exit
// status, and the working directory.
//
// Exit status: 0 when the run passed, 1 when it failed or could not be done, 2 for
// bad usage.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// ErrUsage marks command-line mistakes (exit status 2).
var ErrUsage = errors.New("usage")

// Usagef returns a command-line mistake: an error wrapping ErrUsage.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// FlagSet returns a flag set for the command name that reports its errors (and
// -help) to stderr and returns them instead of exiting.
func FlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// Parse parses args with fs and refuses arguments after the flags. Its errors wrap
// ErrUsage; for -help, also flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected arguments %q", fs.Args())
	}
	return nil
}

// Command is one benchmark program: O holds its parsed flags, R is the result of
// one measured run.
type Command[O, R any] struct {
	// Name is the program's name, in front of each of its messages.
	Name string
	// Parse reads the command line, reporting flag errors to stderr; its errors
	// wrap ErrUsage.
	Parse func(args []string, stderr io.Writer) (O, error)
	// Bench runs the benchmark, logging to logger and writing the output of
	// failed systems to stderr. With an error that ended it early, it returns the
	// results it has so far.
	Bench func(ctx context.Context, logger *slog.Logger, o O, stderr io.Writer) ([]R, error)
	// Print writes the results (at least one) to w.
	Print func(w io.Writer, o O, results []R) error
	// Check judges the results of a run that was not ended early.
	Check func(o O, results []R, v *Verdict)
}

// Main runs the command with the process's arguments and standard streams, until
// it is done or SIGINT or SIGTERM ends it, and exits with its status.
func (c Command[O, R]) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := c.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run is the whole program; it returns the exit status. It parses args, runs the
// benchmark with a text logger on stderr, prints the results to stdout (also those
// of a run that ended early, then the error that ended it), and writes the verdict's
// messages to stderr, each line after the command's name.
func (c Command[O, R]) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o, err := c.Parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		return 2
	}
	results, err := c.Bench(ctx, logger, o, stderr)
	if len(results) > 0 {
		if perr := c.Print(stdout, o, results); perr != nil {
			fmt.Fprintf(stderr, "%s: write the results: %v\n", c.Name, perr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.Name, err)
		if errors.Is(err, ErrUsage) {
			return 2
		}
		return 1
	}
	var v Verdict
	c.Check(o, results, &v)
	for _, m := range v.messages {
		fmt.Fprintf(stderr, "%s: %s\n", c.Name, m)
	}
	if v.failed {
		return 1
	}
	return 0
}

// Verdict collects what Check finds: messages for stderr, in order, and whether
// the run failed.
type Verdict struct {
	messages []string
	failed   bool
}

// Problem records a failure, written as it is.
func (v *Verdict) Problem(msg string) {
	v.messages = append(v.messages, msg)
	v.failed = true
}

// Fail records failed checks, each written after "FAIL: ".
func (v *Verdict) Fail(msgs ...string) {
	for _, m := range msgs {
		v.Problem("FAIL: " + m)
	}
}

// Warn records a warning, written after "warning: "; it does not fail the run.
func (v *Verdict) Warn(msg string) {
	v.messages = append(v.messages, "warning: "+msg)
}

// WorkdirUsage is the help text of the -workdir flag, whose value Workdir takes.
const WorkdirUsage = "working directory, kept afterwards (default: a temporary directory, removed afterwards)"

// Workdir returns the absolute path of the directory a benchmark works in: dir,
// created if missing and kept afterwards, or when dir is "" a new temporary
// directory named after prefix, which cleanup removes. cleanup is never nil.
func Workdir(dir, prefix string) (path string, cleanup func(), err error) {
	cleanup = func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", prefix+"-"); err != nil {
			return "", cleanup, fmt.Errorf("create a working directory: %w", err)
		}
		temp := dir
		cleanup = func() { os.RemoveAll(temp) }
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", cleanup, fmt.Errorf("create the working directory: %w", err)
	}
	if path, err = filepath.Abs(dir); err != nil {
		return "", cleanup, fmt.Errorf("working directory: %w", err)
	}
	return path, cleanup, nil
}
