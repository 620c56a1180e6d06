// Command benchredact measures what scrubbing secrets costs the log pipeline: in
// one run, it ships the same generated file through the real pipeline — the file
// source (sources/tail, JSON parser) → redact.Sink → the Loki exporter — with no
// secret registered and with -secrets registered, and prints lines per CPU-second
// and lines per second of each, and the overhead.
//
//	go run ./tools/bench/cmd/benchredact -lines 1000000 -secrets 100 -max-overhead 5
//
// The input is loggen's JSON lines; one line in -leak-every (1% by default) gets a
// field "leak_<form>" holding one of the secrets in one of the forms the scrubber
// covers, in turn: JSON-escaped as the common encoders write it, HTML character
// references, URL query, path and every-byte percent encoding, base64 (standard
// and URL alphabets, padded and not, and inside a basic auth header at each of the
// three alignments), base32, hex (plain and separated), and the case changes and
// Unicode normalisations of those matched without regard to case. The secrets are
// a mix of database passwords, hex API keys, Vault tokens, human passwords with
// symbols, passphrases with non-ASCII letters, base64 keys and JWTs.
//
// The pipeline runs inside benchredact; the counting sink runs in a child process
// (benchredact itself, started again), so that only the pipeline's CPU time is
// measured: getrusage of this process from starting the source to the arrival of
// the last line. The sink decodes every push, counts the lines that hold the
// marker, and searches every line that carries a secret field, and a sample of the
// others, for every form of every secret: with scrubbing on it must find none, and
// every line carrying a field must arrive scrubbed; without scrubbing it must find
// the secret in every such line (which shows the search sees every form). The
// second table counts these lines per form.
//
// Each of -rounds rounds runs both configurations back to back, in alternating
// order; the overhead is the median over the rounds of each round's loss in lines
// per CPU-second. As a check that does not depend on comparing runs, the CPU time
// spent inside redact.Sink is measured too (the thread CPU clock of the goroutine
// that calls it, locked to its thread for the call, minus that spent in the
// exporter behind it), per line and as a share of the CPU time. The machine's load
// average is printed with each run and at the end. Exit status: 0 when every run
// delivered every line, no secret reached the sink with scrubbing on, every form
// was written, seen and scrubbed, and the overhead in lines per CPU-second is at
// most -max-overhead percent; 1 otherwise; 2 for bad usage.
//
// On a machine running other work, single runs vary by several percent; more rounds
// give a steadier median. The instructions Redact takes per line, which do not
// depend on the machine's load, are counted with callgrind on BenchmarkRedact (see
// processors/redact's package documentation).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/loggen"
)

type options struct {
	lines       int64
	secrets     int
	minLen      int
	leakEvery   int
	rounds      int
	maxOverhead float64
	workdir     string
	timeout     time.Duration
	cpuProfile  string
}

// secretSeed seeds the secret values; the sink process regenerates them from it.
const secretSeed = 0x5ec2e75

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := cli.FlagSet("benchredact", stderr)
	fs.Int64Var(&o.lines, "lines", 1_000_000, "number of JSON lines to generate")
	fs.IntVar(&o.secrets, "secrets", 100, "number of secret values registered in the scrubbing run")
	fs.IntVar(&o.minLen, "min-secret-len", 0, "register only secret values of at least this many bytes, up to 64 (0: the standard mix, whose human passwords have 8 to 16; at 13 and more the matcher probes every 10 bytes instead of 5)")
	fs.IntVar(&o.leakEvery, "leak-every", 100, "one line in this many carries a secret (0: none)")
	fs.IntVar(&o.rounds, "rounds", 7, "rounds of the two runs (without and with secrets), alternating their order")
	fs.Float64Var(&o.maxOverhead, "max-overhead", 5, "fail if scrubbing costs more than this percentage of lines per CPU-second")
	fs.StringVar(&o.workdir, "workdir", "", cli.WorkdirUsage)
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long each run may take to deliver every line")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured runs to this file (see where the time goes with go tool pprof)")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.lines <= 0:
		return o, cli.Usagef("-lines must be positive, got %d", o.lines)
	case o.secrets <= 0:
		return o, cli.Usagef("-secrets must be positive, got %d", o.secrets)
	case o.minLen < 0 || o.minLen > maxMinSecretLen:
		return o, cli.Usagef("-min-secret-len must be between 0 and %d, got %d", maxMinSecretLen, o.minLen)
	case o.leakEvery < 0:
		return o, cli.Usagef("-leak-every must not be negative, got %d", o.leakEvery)
	case o.rounds <= 0:
		return o, cli.Usagef("-rounds must be positive, got %d", o.rounds)
	case o.timeout <= 0:
		return o, cli.Usagef("-timeout must be positive, got %v", o.timeout)
	}
	return o, nil
}

func main() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild(os.Stdin, os.Stdout, os.Stderr))
	}
	command.Main()
}

// command is the whole program. It fails on an incomplete run,
// a secret that reached the sink, a leak check that cannot see leaks, and an
// overhead above -max-overhead.
var command = cli.Command[options, result]{
	Name:  "benchredact",
	Parse: parseFlags,
	Bench: bench,
	Print: func(w io.Writer, o options, results []result) error {
		return printReport(w, results, o.secrets, o.maxOverhead)
	},
	Check: func(o options, results []result, v *cli.Verdict) {
		v.Fail(check(results, o.maxOverhead)...)
	},
}

// bench writes the input, then runs both configurations -rounds times.
func bench(ctx context.Context, logger *slog.Logger, o options, stderr io.Writer) ([]result, error) {
	workdir, cleanup, err := cli.Workdir(o.workdir, "benchredact")
	defer cleanup()
	if err != nil {
		return nil, err
	}

	values := secrets(o.secrets, secretSeed, o.minLen)
	input := filepath.Join(workdir, "input.log")
	began := time.Now()
	st, err := writeInput(input, o.lines, values, o.leakEvery, loggen.Seed)
	if err != nil {
		return nil, err
	}
	logger.Info("input written", "path", input, "lines", st.lines, "bytes", st.bytes,
		"avg_line_bytes", st.bytes/max(st.lines, 1), "lines_with_secret", st.withSecret, "min_secret_len", o.minLen, "took", time.Since(began).Round(time.Millisecond))

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("create the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	env := runEnv{
		input:      input,
		lines:      o.lines,
		withSecret: st.withSecret,
		sink:       childConfig{Secrets: o.secrets, Seed: secretSeed, MinLen: o.minLen, SampleEvery: 1024},
		timeout:    o.timeout,
		poll:       10 * time.Millisecond,
		logger:     logger,
		stderr:     stderr,
	}
	var results []result
	for round := 1; round <= o.rounds; round++ {
		specs := []runSpec{{name: baselineName, round: round}, {name: redactName, round: round, values: values}}
		if round%2 == 0 {
			specs[0], specs[1] = specs[1], specs[0]
		}
		for _, spec := range specs {
			if ctx.Err() != nil {
				return results, fmt.Errorf("interrupted before run %s of round %d", spec.name, round)
			}
			r, err := measureRun(ctx, env, spec)
			if err != nil {
				return results, fmt.Errorf("%s round %d: %w", spec.name, round, err)
			}
			logger.Info("run done", "run", r.name, "round", r.round, "lines", r.counts.Entries,
				"cpu", r.cpu.Round(time.Millisecond), "wall", r.wall.Round(time.Millisecond), "problem", r.problem)
			results = append(results, r)
		}
	}
	return results, nil
}
