// Package peer runs outrider next to its peer, the OpenTelemetry Collector, as the
// comparing benchmarks do: the flags that choose and locate the two systems and set
// the acceptance gates, configuring and running each system in turn, and their
// ratios.
package peer

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

// Names of the systems, as they appear in the tables, the workdir and -only.
const (
	Outrider = "outrider"
	Otelcol  = "otelcol"
)

// OtelcolVersion is the collector tools/backends/build.sh pins.
const OtelcolVersion = "v0.160.0"

// DefaultOtelcol is the collector binary `make backends-bench` builds:
// $OUTRIDER_OTELCOL_BIN when set, else otelcol-<OtelcolVersion> in the backends
// cache.
func DefaultOtelcol() string {
	return backendtest.Binary("OUTRIDER_OTELCOL_BIN", "otelcol", OtelcolVersion)
}

// Options are the flags every comparing benchmark has.
type Options struct {
	// Outrider and Otelcol are the systems' executables.
	Outrider, Otelcol string
	// Workdir is the -workdir flag, for cli.Workdir.
	Workdir string
	// Timeout is how long each system may take to deliver everything.
	Timeout time.Duration
	// Only is "both", Outrider or Otelcol: which systems run.
	Only string
	// Rounds is how many times each system runs, alternating their order.
	Rounds int
	// Gates are the acceptance limits on outrider.
	Gates Gates
}

// Register defines the flags on fs. unit names, in the singular, what the
// benchmark counts ("line", "span").
func (o *Options) Register(fs *flag.FlagSet, unit string) {
	fs.StringVar(&o.Outrider, "outrider", "", "outrider binary (required unless -only otelcol)")
	fs.StringVar(&o.Otelcol, "otelcol", DefaultOtelcol(), "OpenTelemetry Collector binary built by tools/backends/build.sh otelcol")
	fs.StringVar(&o.Workdir, "workdir", "", cli.WorkdirUsage)
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "how long each system may take to deliver every "+unit)
	fs.StringVar(&o.Only, "only", "both", "which systems to run: outrider, otelcol or both")
	fs.IntVar(&o.Rounds, "rounds", 1, "rounds of the systems' runs, their order alternating; the ratio gate takes the median of the rounds' ratios, the RSS gate the highest peak")
	fs.Float64Var(&o.Gates.MinCPURatio, "min-cpu-ratio", 0, "fail unless outrider's "+unit+"s per CPU-second is at least this multiple of the collector's (0: no check)")
	fs.Float64Var(&o.Gates.MaxRSSMiB, "max-rss-mb", 0, "fail if outrider's peak RSS exceeds this many MB of 2^20 bytes (0: no check)")
}

// Validate checks the parsed flags; its errors wrap cli.ErrUsage.
func (o Options) Validate() error {
	if o.Timeout <= 0 {
		return cli.Usagef("-timeout must be positive, got %v", o.Timeout)
	}
	if o.Rounds <= 0 {
		return cli.Usagef("-rounds must be positive, got %d", o.Rounds)
	}
	switch o.Only {
	case "both", Outrider, Otelcol:
	default:
		return cli.Usagef("-only must be outrider, otelcol or both, got %q", o.Only)
	}
	if o.Gates.MinCPURatio > 0 && o.Only != "both" {
		return cli.Usagef("-min-cpu-ratio needs both systems (-only both)")
	}
	if o.Gates.MaxRSSMiB > 0 && o.Only == Otelcol {
		return cli.Usagef("-max-rss-mb applies to outrider, which -only otelcol leaves out")
	}
	return nil
}

// A System is one system under test: how to configure and start one run of it. R
// is what the benchmark configures a run with.
type System[R any] struct {
	// Name labels the table row and the system's files in the workdir.
	Name string
	// Bin is the executable.
	Bin string
	// Configure writes the system's configuration for run and returns the
	// command-line arguments that start it.
	Configure func(run R) ([]string, error)
}

// Start configures the system for run and starts it in dir, where its output goes
// to <Name>.log. The caller must Stop the process.
func (s System[R]) Start(logger *slog.Logger, run R, dir string) (*measure.Process, error) {
	args, err := s.Configure(run)
	if err != nil {
		return nil, err
	}
	return measure.Start(logger, s.Name, s.Bin, args, dir)
}

// Select returns the systems o chooses, in order (outrider first), built by the
// constructors from their binaries, made absolute once checked to be executable
// files.
func Select[R any](o Options, outrider, otelcol func(bin string) System[R]) ([]System[R], error) {
	var out []System[R]
	if o.Only != Otelcol {
		if o.Outrider == "" {
			return nil, cli.Usagef("-outrider is required (build it with `make build`), or pass -only otelcol")
		}
		out = append(out, outrider(o.Outrider))
	}
	if o.Only != Outrider {
		out = append(out, otelcol(o.Otelcol))
	}
	for i, s := range out {
		abs, err := executable(s.Name, s.Bin)
		if err != nil {
			return nil, err
		}
		out[i].Bin = abs
	}
	return out, nil
}

// Prepare readies a benchmark run: it returns the systems o chooses (see Select) and
// the working directory (see cli.Workdir; a temporary one is named after prefix),
// which cleanup removes when it is temporary. cleanup is never nil.
func Prepare[R any](o Options, prefix string, outrider, otelcol func(bin string) System[R]) (systems []System[R], workdir string, cleanup func(), err error) {
	if systems, err = Select(o, outrider, otelcol); err != nil {
		return nil, "", func() {}, err
	}
	workdir, cleanup, err = cli.Workdir(o.Workdir, prefix)
	return systems, workdir, cleanup, err
}

// buildHints say how to get a missing binary.
var buildHints = map[string]string{
	Outrider: " (build it with `make build`)",
	Otelcol:  " (build it with `make backends-bench` or tools/backends/build.sh otelcol)",
}

// executable returns the absolute path of bin, the named system's binary, after
// checking that it is an executable file.
func executable(name, bin string) (string, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", fmt.Errorf("%s binary %q: %w", name, bin, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w%s", name, err, buildHints[name])
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s binary %s is not an executable file", name, abs)
	}
	return abs, nil
}

// Each measures the systems one after the other, rounds times, and returns their
// results in the order they ran. Round 1 runs them in the order given, and each
// round after in the reverse of the one before, so that neither always runs first
// on a machine whose speed drifts. measure gets the round, from 1, or 0 when there
// is only one, and the directory for the run's files: workdir, or with several
// rounds workdir/round-N, so that each round starts from empty state. Each stops at
// the first error, or before a system once ctx has ended, returning the results so
// far.
func Each[R, T any](ctx context.Context, systems []System[R], rounds int, workdir string, measure func(s System[R], round int, dir string) (T, error)) ([]T, error) {
	var results []T
	order := slices.Clone(systems)
	for round := 1; round <= max(rounds, 1); round++ {
		label, dir := round, filepath.Join(workdir, fmt.Sprintf("round-%d", round))
		if rounds <= 1 {
			label, dir = 0, workdir
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return results, err
		}
		for _, s := range order {
			if ctx.Err() != nil {
				if label > 0 {
					return results, fmt.Errorf("interrupted before %s ran in round %d", s.Name, label)
				}
				return results, fmt.Errorf("interrupted before %s ran", s.Name)
			}
			r, err := measure(s, label, dir)
			if err != nil {
				return results, err
			}
			results = append(results, r)
		}
		slices.Reverse(order)
	}
	return results, nil
}

// Template parses text, a system's configuration template, in which {{q .X}}
// renders X as a double-quoted YAML scalar. It panics on a malformed template.
func Template(name, text string) *template.Template {
	return template.Must(template.New(name).Funcs(template.FuncMap{"q": yamlQuote}).Parse(text))
}

// yamlQuote renders s as a double-quoted YAML scalar. Go's quoting escapes only with
// sequences YAML's double-quoted style also defines (\n, \t, \", \\, \xNN, \uNNNN, …).
func yamlQuote(s string) string { return strconv.Quote(s) }

// Render executes the configuration template t with data.
func Render(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render %s configuration: %w", t.Name(), err)
	}
	return b.String(), nil
}

// Configure renders t with data into dir/<name>.yaml and returns the arguments
// that start the named system with it: "agent --config FILE" for Outrider,
// "--config FILE" for Otelcol.
func Configure(dir, name string, t *template.Template, data any) ([]string, error) {
	text, err := Render(t, data)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write %s configuration: %w", t.Name(), err)
	}
	if name == Outrider {
		return []string{"agent", "--config", path}, nil
	}
	return []string{"--config", path}, nil
}
