package peer

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/tools/bench/internal/cli"
)

func parse(t *testing.T, unit string, args ...string) (Options, *flag.FlagSet, error) {
	t.Helper()
	var o Options
	fs := cli.FlagSet("bench", &bytes.Buffer{})
	o.Register(fs, unit)
	if err := cli.Parse(fs, args); err != nil {
		return o, fs, err
	}
	return o, fs, o.Validate()
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o Options)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o Options) {
				if o.Outrider != "" || o.Timeout != 10*time.Minute || o.Only != "both" || o.Workdir != "" || o.Rounds != 1 || o.Gates != (Gates{}) {
					t.Errorf("defaults %+v", o)
				}
				if !strings.HasSuffix(o.Otelcol, "/bin/otelcol-"+OtelcolVersion) {
					t.Errorf("default otelcol %q", o.Otelcol)
				}
			},
		},
		{
			name: "all set",
			args: []string{"-outrider", "a", "-otelcol", "b", "-workdir", "w", "-timeout", "1m", "-only", "both", "-rounds", "3", "-min-cpu-ratio", "1.5", "-max-rss-mb", "40"},
			check: func(t *testing.T, o Options) {
				want := Options{Outrider: "a", Otelcol: "b", Workdir: "w", Timeout: time.Minute, Only: "both", Rounds: 3, Gates: Gates{MinCPURatio: 1.5, MaxRSSMiB: 40}}
				if o != want {
					t.Errorf("parsed %+v, want %+v", o, want)
				}
			},
		},
		{name: "only otelcol", args: []string{"-only", "otelcol"}, check: func(t *testing.T, o Options) {
			if o.Only != Otelcol {
				t.Errorf("only %q", o.Only)
			}
		}},
		{name: "bad only", args: []string{"-only", "vector"}, wantErr: "-only must be outrider, otelcol or both, got \"vector\""},
		{name: "bad timeout", args: []string{"-timeout", "0s"}, wantErr: "-timeout must be positive"},
		{name: "bad rounds", args: []string{"-rounds", "0"}, wantErr: "-rounds must be positive, got 0"},
		{name: "ratio needs both", args: []string{"-only", "outrider", "-min-cpu-ratio", "3"}, wantErr: "needs both"},
		{name: "rss needs outrider", args: []string{"-only", "otelcol", "-max-rss-mb", "40"}, wantErr: "applies to outrider"},
		{name: "rss with only outrider", args: []string{"-only", "outrider", "-max-rss-mb", "40"}, check: func(t *testing.T, o Options) {
			if o.Gates.MaxRSSMiB != 40 {
				t.Errorf("gates %+v", o.Gates)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OUTRIDER_OTELCOL_BIN", "")
			o, _, err := parse(t, "line", tt.args...)
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

func TestRegisterNamesTheUnit(t *testing.T) {
	_, fs, err := parse(t, "span")
	if err != nil {
		t.Fatal(err)
	}
	if u := fs.Lookup("timeout").Usage; !strings.HasSuffix(u, "deliver every span") {
		t.Errorf("-timeout usage %q", u)
	}
	if u := fs.Lookup("min-cpu-ratio").Usage; !strings.Contains(u, "outrider's spans per CPU-second") {
		t.Errorf("-min-cpu-ratio usage %q", u)
	}
}

type fakeRun struct{}

func TestSelect(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	outrider := func(bin string) System[fakeRun] { return System[fakeRun]{Name: Outrider, Bin: bin} }
	otelcol := func(bin string) System[fakeRun] { return System[fakeRun]{Name: Otelcol, Bin: bin} }
	tests := []struct {
		name      string
		o         Options
		wantNames []string
		wantErr   string
		wantUsage bool
	}{
		{name: "both", o: Options{Outrider: exe, Otelcol: exe, Only: "both"}, wantNames: []string{"outrider", "otelcol"}},
		{name: "only otelcol needs no outrider", o: Options{Otelcol: exe, Only: "otelcol"}, wantNames: []string{"otelcol"}},
		{name: "only outrider", o: Options{Outrider: exe, Otelcol: "/nonexistent", Only: "outrider"}, wantNames: []string{"outrider"}},
		{name: "outrider missing flag", o: Options{Otelcol: exe, Only: "both"}, wantErr: "-outrider is required", wantUsage: true},
		{name: "outrider not built", o: Options{Outrider: filepath.Join(dir, "nope"), Only: "outrider"}, wantErr: "build it with `make build`"},
		{name: "otelcol not built", o: Options{Outrider: exe, Otelcol: filepath.Join(dir, "nope"), Only: "both"}, wantErr: "tools/backends/build.sh otelcol"},
		{name: "not executable", o: Options{Outrider: plain, Only: "outrider"}, wantErr: "not an executable"},
		{name: "directory", o: Options{Outrider: dir, Only: "outrider"}, wantErr: "not an executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			systems, err := Select(tt.o, outrider, otelcol)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, cli.ErrUsage) != tt.wantUsage {
					t.Fatalf("err = %v, want one containing %q (usage error: %v)", err, tt.wantErr, tt.wantUsage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range systems {
				names = append(names, s.Name)
				if !filepath.IsAbs(s.Bin) {
					t.Errorf("%s binary %q is not absolute", s.Name, s.Bin)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("systems %v, want %v", names, tt.wantNames)
			}
		})
	}
}

func TestEach(t *testing.T) {
	systems := []System[fakeRun]{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	canceled := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	tests := []struct {
		name    string
		ctx     func() context.Context
		rounds  int
		failAt  string
		want    string
		wantErr string
	}{
		{name: "all", ctx: context.Background, rounds: 1, want: "a0,b0,c0"},
		{name: "three rounds alternate", ctx: context.Background, rounds: 3, want: "a1,b1,c1,c2,b2,a2,a3,b3,c3"},
		{name: "error", ctx: context.Background, rounds: 1, failAt: "b0", want: "a0", wantErr: "b broke"},
		{name: "error in a later round", ctx: context.Background, rounds: 2, failAt: "b2", want: "a1,b1,c1,c2", wantErr: "b broke"},
		{name: "interrupted", ctx: canceled, rounds: 1, wantErr: "interrupted before a ran"},
		{name: "interrupted, rounds", ctx: canceled, rounds: 2, wantErr: "interrupted before a ran in round 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workdir := t.TempDir()
			got, err := Each(tt.ctx(), systems, tt.rounds, workdir, func(s System[fakeRun], round int, dir string) (string, error) {
				r := fmt.Sprintf("%s%d", s.Name, round)
				if want := filepath.Join(workdir, fmt.Sprintf("round-%d", round)); round == 0 && dir != workdir || round > 0 && dir != want {
					t.Errorf("%s: dir %s", r, dir)
				}
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Errorf("%s: dir %s not made: %v", r, dir, err)
				}
				if r == tt.failAt {
					return "", errors.New(s.Name + " broke")
				}
				return r, nil
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("results %v, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `odd "dir" with spaces`)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmpl := Template("sys", "path: {{q .Path}}\nport: {{.Port}}\n")
	data := struct {
		Path string
		Port int
	}{Path: "a \"quoted\"\tpath\\with\nnewline é", Port: 4317}
	tests := []struct {
		name     string
		wantArgs []string
	}{
		{name: Outrider, wantArgs: []string{"agent", "--config", filepath.Join(dir, "outrider.yaml")}},
		{name: Otelcol, wantArgs: []string{"--config", filepath.Join(dir, "otelcol.yaml")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := Configure(dir, tt.name, tmpl, data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(args, "\x00") != strings.Join(tt.wantArgs, "\x00") {
				t.Fatalf("args %q, want %q", args, tt.wantArgs)
			}
			text, err := os.ReadFile(args[len(args)-1])
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Path string `yaml:"path"`
				Port int    `yaml:"port"`
			}
			if err := yaml.Unmarshal(text, &got); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, text)
			}
			if got.Path != data.Path || got.Port != data.Port {
				t.Errorf("read back %+v from\n%s", got, text)
			}
		})
	}
	if _, err := Configure(dir, Outrider, tmpl, struct{ Other string }{}); err == nil || !strings.Contains(err.Error(), "render sys configuration") {
		t.Errorf("rendering with the wrong data: %v", err)
	}
	if _, err := Configure(filepath.Join(dir, "missing"), Outrider, tmpl, data); err == nil || !strings.Contains(err.Error(), "write sys configuration") {
		t.Errorf("writing into a missing directory: %v", err)
	}
}

func TestSystemStart(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	broken := System[string]{Name: "x", Bin: os.Args[0], Configure: func(string) ([]string, error) { return nil, errors.New("no config") }}
	if _, err := broken.Start(logger, "run", dir); err == nil || err.Error() != "no config" {
		t.Errorf("Start with a failing Configure: %v", err)
	}
	// The test binary itself, running no test, stands in for a system.
	sys := System[string]{Name: "x", Bin: os.Args[0], Configure: func(run string) ([]string, error) { return []string{"-test.run=^$", run}, nil }}
	p, err := sys.Start(logger, "-test.count=1", dir)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the process did not exit")
	}
	p.Stop(time.Second)
	if p.Err() != nil || p.Output() != filepath.Join(dir, "x.log") {
		t.Errorf("err %v, output %s", p.Err(), p.Output())
	}
}

func TestPrepare(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	outrider := func(bin string) System[fakeRun] { return System[fakeRun]{Name: Outrider, Bin: bin} }
	otelcol := func(bin string) System[fakeRun] { return System[fakeRun]{Name: Otelcol, Bin: bin} }

	workdir := filepath.Join(t.TempDir(), "work")
	o := Options{Outrider: exe, Only: Outrider, Workdir: workdir}
	systems, dir, cleanup, err := Prepare(o, "benchx", outrider, otelcol)
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if len(systems) != 1 || systems[0].Name != Outrider || dir != workdir {
		t.Errorf("systems %+v, workdir %q", systems, dir)
	}
	if _, err := os.Stat(workdir); err != nil {
		t.Errorf("the given workdir is not kept: %v", err)
	}

	o = Options{Only: Outrider, Workdir: filepath.Join(t.TempDir(), "never")}
	_, _, cleanup, err = Prepare(o, "benchx", outrider, otelcol)
	cleanup()
	if err == nil || !strings.Contains(err.Error(), "-outrider is required") {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(o.Workdir); !os.IsNotExist(err) {
		t.Errorf("workdir made although the systems are not ready: %v", err)
	}
}
