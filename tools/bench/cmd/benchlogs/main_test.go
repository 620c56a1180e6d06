package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
	"github.com/outrider-dev/outrider/tools/bench/internal/loggen"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/peer"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == fakeArg {
		os.Exit(fakeMain(os.Args[2:]))
	}
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{
			name: "defaults",
			args: []string{"-outrider", "bin/outrider"},
			check: func(t *testing.T, o options) {
				if o.lines != 1_000_000 || o.Timeout != 10*time.Minute || o.Only != "both" || o.Workdir != "" {
					t.Errorf("defaults %+v", o)
				}
				if !strings.HasSuffix(o.Otelcol, "/outrider/bin/otelcol-v0.160.0") {
					t.Errorf("default otelcol %q", o.Otelcol)
				}
			},
		},
		{
			name: "all set",
			args: []string{"-outrider", "a", "-otelcol", "b", "-lines", "10", "-workdir", "w", "-timeout", "1m", "-only", "otelcol"},
			check: func(t *testing.T, o options) {
				if o.Outrider != "a" || o.Otelcol != "b" || o.lines != 10 || o.Workdir != "w" || o.Timeout != time.Minute || o.Only != "otelcol" {
					t.Errorf("parsed %+v", o)
				}
			},
		},
		{name: "zero lines", args: []string{"-lines", "0"}, wantErr: "-lines must be positive"},
		{name: "shared flags are checked", args: []string{"-only", "outrider", "-min-cpu-ratio", "3"}, wantErr: "needs both"},
		{name: "stray argument", args: []string{"x"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

// lookup walks a decoded YAML document along keys (strings for maps, ints for lists).
func lookup(t *testing.T, doc any, path ...any) any {
	t.Helper()
	cur := doc
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not a map", k, cur)
			}
			if cur, ok = m[k]; !ok {
				t.Fatalf("key %q missing in %v", k, m)
			}
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at [%d]: %v is not a long enough list", k, cur)
			}
			cur = l[k]
		}
	}
	return cur
}

func TestConfigs(t *testing.T) {
	workdir := filepath.Join(t.TempDir(), `odd "dir" with spaces`)
	if err := os.MkdirAll(workdir, 0o755); err != nil {
		t.Fatal(err)
	}
	const sinkURL = "http://127.0.0.1:4242"
	tests := []struct {
		name     string
		sys      system
		wantArgs []string
		want     map[string][]any // expected value -> path
	}{
		{
			name:     "outrider",
			sys:      outriderSystem("/bin/outrider"),
			wantArgs: []string{"agent", "--config", filepath.Join(workdir, "outrider.yaml")},
			want: map[string][]any{
				filepath.Join(workdir, "outrider-data"): {"data_dir"},
				"bench":                                 {"identity", "service"},
				"bench-0":                               {"identity", "pod"},
				"app":                                   {"identity", "container"},
				"127.0.0.1:0":                           {"server", "listen"},
				"warn":                                  {"log", "level"},
				filepath.Join(workdir, "outrider-in", "*.log"): {"logs", "sources", 0, "path"},
				"json":  {"logs", "sources", 0, "parser", "format"},
				sinkURL: {"exporters", "loki", "url"},
			},
		},
		{
			name:     "otelcol",
			sys:      otelcolSystem("/bin/otelcol"),
			wantArgs: []string{"--config", filepath.Join(workdir, "otelcol.yaml")},
			want: map[string][]any{
				filepath.Join(workdir, "otelcol-data"):        {"extensions", "file_storage", "directory"},
				filepath.Join(workdir, "otelcol-in", "*.log"): {"receivers", "file_log", "include", 0},
				"beginning":           {"receivers", "file_log", "start_at"},
				"file_storage":        {"receivers", "file_log", "storage"},
				"json_parser":         {"receivers", "file_log", "operators", 0, "type"},
				"attributes.time":     {"receivers", "file_log", "operators", 0, "timestamp", "parse_from"},
				"gotime":              {"receivers", "file_log", "operators", 0, "timestamp", "layout_type"},
				"attributes.level":    {"receivers", "file_log", "operators", 0, "severity", "parse_from"},
				"attributes.trace_id": {"receivers", "file_log", "operators", 0, "trace", "trace_id", "parse_from"},
				"attributes.span_id":  {"receivers", "file_log", "operators", 0, "trace", "span_id", "parse_from"},
				sinkURL + "/v1/logs":  {"exporters", "otlp_http", "logs_endpoint"},
				"none":                {"exporters", "otlp_http", "compression"},
				"file_log":            {"service", "pipelines", "logs", "receivers", 0},
				"batch":               {"service", "pipelines", "logs", "processors", 0},
				"otlp_http":           {"service", "pipelines", "logs", "exporters", 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := newRunSetup(workdir, tt.sys.Name)
			run.sinkURL = sinkURL
			args, err := tt.sys.Configure(run)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(args, "\x00") != strings.Join(tt.wantArgs, "\x00") {
				t.Fatalf("args %q, want %q", args, tt.wantArgs)
			}
			data, err := os.ReadFile(args[len(args)-1])
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("configuration is not YAML: %v\n%s", err, data)
			}
			for want, path := range tt.want {
				if got := lookup(t, doc, path...); got != want {
					t.Errorf("%v = %v, want %q", path, got, want)
				}
			}
			if tt.name == "otelcol" {
				if got := lookup(t, doc, "service", "extensions", 0); got != "file_storage" {
					t.Errorf("service.extensions = %v", got)
				}
				if got := lookup(t, doc, "service", "telemetry", "metrics", "level"); got != "none" {
					t.Errorf("metrics level %v", got)
				}
				// The layout must parse the generator's timestamps.
				layout := lookup(t, doc, "receivers", "file_log", "operators", 0, "timestamp", "layout").(string)
				line := loggen.New(loggen.Seed).Append(nil)
				ts := line[bytes.Index(line, []byte(`"time":"`))+8:]
				ts = ts[:bytes.IndexByte(ts, '"')]
				if _, err := time.Parse(layout, string(ts)); err != nil {
					t.Errorf("layout %q does not parse %q: %v", layout, ts, err)
				}
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	outrider := result{Figures: measure.Figures{Name: "outrider", Delivered: 1000, Complete: true,
		Wall: 2 * time.Second, CPU: 500 * time.Millisecond, PeakRSS: 20 << 20}, want: 1000, withTraceID: 1000, requests: 5, wireBytes: 1 << 20, load: "1.50 0.80 0.40"}
	otelcol := result{Figures: measure.Figures{Name: "otelcol", Delivered: 1000, Complete: true,
		Wall: 4 * time.Second, CPU: 2 * time.Second, PeakRSS: 80 << 20}, want: 1000, withTraceID: 1000, requests: 10, wireBytes: 4 << 20, load: "2.00 1.00 0.50"}
	partial := result{Figures: measure.Figures{Name: "otelcol", Delivered: 10}, want: 1000, problem: "only 10 of 1000 lines arrived"}
	tests := []struct {
		name     string
		results  []result
		wantRows map[string]string
		want     []string
		wantNone []string
	}{
		{
			name:    "both",
			results: []result{outrider, otelcol},
			wantRows: map[string]string{
				"system":   "system lines wall_s lines/s cpu_s lines/cpu_s peak_rss_MB with_trace_id requests wire_MB load_avg",
				"outrider": "outrider 1000 2.00 500 0.50 2000 20.0 1000 5 1.0 1.50 0.80 0.40",
				"otelcol":  "otelcol 1000 4.00 250 2.00 500 80.0 1000 10 4.0 2.00 1.00 0.50",
			},
			want: []string{"ratio (outrider/otelcol): lines per CPU-second 4.00×, peak RSS 0.25×\n(MB = 2^20 bytes;", "load_avg is the machine's"},
		},
		{
			name:     "incomplete has no rates and no ratio",
			results:  []result{outrider, partial},
			wantRows: map[string]string{"otelcol": "otelcol 10 0.00 - 0.00 - 0.0 0 0 0.0 unknown"},
			wantNone: []string{"ratio"},
		},
		{
			name:     "no CPU ticks has no per-CPU rate",
			results:  []result{{Figures: measure.Figures{Name: "outrider", Delivered: 5, Complete: true, Wall: time.Second}, want: 5}},
			wantRows: map[string]string{"outrider": "outrider 5 1.00 5 0.00 - 0.0 0 0 0.0 unknown"},
		},
		{name: "one system", results: []result{otelcol}, wantNone: []string{"ratio"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printTable(&b, options{}, tt.results); err != nil {
				t.Fatal(err)
			}
			for first, want := range tt.wantRows {
				if got := strings.Join(rowFields(b.String(), first), " "); got != want {
					t.Errorf("row %q, want %q in:\n%s", got, want, b.String())
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("table lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(b.String(), w) {
					t.Errorf("table has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// rowFields returns the whitespace-separated fields of the table line that starts
// with first.
func rowFields(table, first string) []string {
	for line := range strings.Lines(table) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

func TestCheck(t *testing.T) {
	good := func(name string, cpu time.Duration) result {
		return result{Figures: measure.Figures{Name: name, Delivered: 100, Complete: true, CPU: cpu, PeakRSS: 10 << 20}, want: 100, withTraceID: 100}
	}
	untraced := good("outrider", time.Second)
	untraced.withTraceID = 90
	retried := good("outrider", time.Second)
	retried.rejected = 2
	dup := good("outrider", time.Second)
	dup.Delivered = 103
	dup.withTraceID = 103
	late := result{Figures: measure.Figures{Name: "otelcol", Delivered: 40}, want: 100, problem: "only 40 of 100 lines arrived within 1s"}
	tests := []struct {
		name       string
		o          options
		results    []result
		want       []string
		wantFailed bool
	}{
		{name: "pass", results: []result{good("outrider", time.Second), good("otelcol", 4*time.Second)}},
		{name: "warnings do not fail", results: []result{untraced, retried, dup}, want: []string{
			"warning: outrider delivered 10 lines without a trace ID",
			"warning: the sink rejected 2 of outrider's requests (it retried them)",
			"warning: outrider delivered 3 lines more than were written (duplicates)",
		}},
		{name: "incomplete fails", results: []result{good("outrider", time.Second), late}, want: []string{"otelcol: only 40 of 100 lines arrived within 1s"}, wantFailed: true},
		{name: "gates", o: options{Options: peer.Options{Gates: peer.Gates{MinCPURatio: 5}}},
			results: []result{good("outrider", time.Second), good("otelcol", 4*time.Second)},
			want:    []string{"FAIL: lines per CPU-second ratio 4.00× is below the required 5.00×"}, wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := command
			cmd.Parse = func([]string, io.Writer) (options, error) { return tt.o, nil }
			cmd.Bench = func(context.Context, *slog.Logger, options, io.Writer) ([]result, error) { return tt.results, nil }
			var stdout, stderr bytes.Buffer
			code := cmd.Run(context.Background(), nil, &stdout, &stderr)
			var want strings.Builder
			for _, w := range tt.want {
				want.WriteString("benchlogs: " + w + "\n")
			}
			if stderr.String() != want.String() || (code != 0) != tt.wantFailed {
				t.Errorf("exit %d, stderr:\n%s\nwant failed %v, stderr:\n%s", code, stderr.String(), tt.wantFailed, want.String())
			}
			if !strings.HasPrefix(stdout.String(), "system ") {
				t.Errorf("no table:\n%s", stdout.String())
			}
		})
	}
}

func testOptions(t *testing.T, lines int64, timeout time.Duration) runOptions {
	t.Helper()
	workdir := t.TempDir()
	input := filepath.Join(workdir, "input.log")
	if _, err := loggen.WriteFile(input, int(lines), loggen.Seed); err != nil {
		t.Fatal(err)
	}
	return runOptions{workdir: workdir, input: input, lines: lines, timeout: timeout,
		poll: 5 * time.Millisecond, progress: time.Hour, stopGrace: 10 * time.Second, out: io.Discard}
}

func TestMeasure(t *testing.T) {
	const lines = 3000
	tests := []struct {
		name         string
		mode         string
		timeout      time.Duration
		grace        time.Duration
		wantComplete bool
		wantProblem  string
		wantUsage    bool
	}{
		{name: "delivers everything", mode: "all", timeout: time.Minute, wantComplete: true, wantUsage: true},
		{name: "delivers half", mode: "half", timeout: 2 * time.Second, wantProblem: "only 1500 of 3000 lines arrived", wantUsage: true},
		{name: "exits by itself", mode: "exit", timeout: time.Minute, wantProblem: "the process exited (<nil>) while it should run; 1500 of 3000", wantUsage: true},
		{name: "ignores SIGTERM", mode: "ignore-term", timeout: time.Minute, grace: 200 * time.Millisecond, wantComplete: true, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t, lines, tt.timeout)
			if tt.grace > 0 {
				opts.stopGrace = tt.grace
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			r, err := measureSystem(context.Background(), logger, fakeSystem("fake", tt.mode), opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Complete != tt.wantComplete {
				t.Errorf("complete = %v, want %v (problem %q)", r.Complete, tt.wantComplete, r.problem)
			}
			if tt.wantProblem == "" && r.problem != "" || !strings.Contains(r.problem, tt.wantProblem) {
				t.Errorf("problem %q, want %q", r.problem, tt.wantProblem)
			}
			if tt.wantComplete {
				if r.Delivered != lines || r.withTraceID != lines || r.Wall <= 0 {
					t.Errorf("delivered %d (%d with trace id) in %v, want %d", r.Delivered, r.withTraceID, r.Wall, lines)
				}
			}
			if tt.wantUsage && (r.CPU <= 0 && r.PeakRSS <= 0) {
				t.Errorf("no usage measured: cpu %v peak RSS %d", r.CPU, r.PeakRSS)
			}
			if r.requests == 0 || r.wireBytes == 0 {
				t.Errorf("requests %d wire bytes %d", r.requests, r.wireBytes)
			}
			if _, err := os.Stat(filepath.Join(opts.workdir, "fake-in", "app.log")); err != nil {
				t.Errorf("input not linked into the watched directory: %v", err)
			}
		})
	}
}

// fakeOtelcol writes a wrapper script that stands in for the collector: it takes
// the input directory and sink URL from the collector configuration benchlogs wrote
// and hands them to the test binary's fake mode, which pushes Loki requests (the
// sink counts both protocols alike).
func fakeOtelcol(t *testing.T) string {
	t.Helper()
	wrapper := filepath.Join(t.TempDir(), "otelcol")
	script := "#!/bin/sh\n# benchlogs passes --config FILE; the fake needs the input and the sink URL.\n" +
		"cfg=$2\n" +
		"in=$(sed -n 's/^    include: \\[\"\\(.*\\)\\*\\.log\"\\]$/\\1/p' \"$cfg\")\n" +
		"url=$(sed -n 's/^    logs_endpoint: \"\\(.*\\)\\/v1\\/logs\"$/\\1/p' \"$cfg\")\n" +
		"exec " + os.Args[0] + " " + fakeArg + " all \"${in}app.log\" \"$url\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

func TestRunRoundsWithFake(t *testing.T) {
	// Each round runs in directories of its own: the second run of a system
	// starts from empty state and delivers every line again.
	var stdout, stderr bytes.Buffer
	code := command.Run(context.Background(), []string{"-only", "otelcol", "-otelcol", fakeOtelcol(t), "-lines", "600", "-rounds", "2", "-timeout", "1m"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var rounds []string
	for line := range strings.Lines(stdout.String()) {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "otelcol" {
			rounds = append(rounds, f[1]+" "+f[2])
		}
	}
	if want := []string{"#1 600", "#2 600"}; !slices.Equal(rounds, want) {
		t.Errorf("otelcol rows (round, lines) %q, want %q; table:\n%s", rounds, want, stdout.String())
	}
}

func TestRunOnlyOtelcolWithFake(t *testing.T) {
	// The whole command, with the fake shipper standing in for the collector.
	wrapper := fakeOtelcol(t)
	var stdout, stderr bytes.Buffer
	code := command.Run(context.Background(), []string{"-only", "otelcol", "-otelcol", wrapper, "-lines", "1200", "-timeout", "1m"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	row := rowFields(stdout.String(), "otelcol")
	if len(row) < 8 || row[1] != "1200" || row[7] != "1200" {
		t.Errorf("otelcol row %q in table:\n%s", row, stdout.String())
	}
	if len(row) != 13 {
		t.Fatalf("otelcol row %q: want 13 fields, the last three the load average", row)
	}
	for _, f := range row[10:] {
		if _, err := strconv.ParseFloat(f, 64); err != nil {
			t.Errorf("otelcol row %q: load average field %q is not a number", row, f)
		}
	}
	if !strings.Contains(stderr.String(), "input written") {
		t.Errorf("no input log line:\n%s", stderr.String())
	}
}
