package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		wantHelp bool
		// wantUsage: the flag set prints its usage to stderr.
		wantUsage bool
	}{
		{name: "flags", args: []string{"-n", "3"}},
		{name: "stray argument", args: []string{"-n", "3", "x"}, wantErr: `usage: unexpected arguments ["x"]`},
		{name: "unknown flag", args: []string{"-m", "3"}, wantErr: "usage: flag provided but not defined: -m", wantUsage: true},
		{name: "help", args: []string{"-help"}, wantErr: "usage: flag: help requested", wantHelp: true, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			fs := FlagSet("cmd", &stderr)
			n := fs.Int("n", 0, "a number")
			err := Parse(fs, tt.args)
			if tt.wantErr == "" {
				if err != nil || *n != 3 {
					t.Fatalf("err %v, n %d", err, *n)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrUsage) || errors.Is(err, flag.ErrHelp) != tt.wantHelp {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(stderr.String(), "Usage of cmd") != tt.wantUsage {
				t.Errorf("stderr %q, want the usage printed: %v", stderr.String(), tt.wantUsage)
			}
		})
	}
	if err := Usagef("-n must be positive, got %d", -1); !errors.Is(err, ErrUsage) || err.Error() != "usage: -n must be positive, got -1" {
		t.Errorf("Usagef = %v", err)
	}
}

// fakeOptions and fakeResult are the flags and results of testCommand.
type fakeOptions struct{ fail, warn bool }

type fakeResult struct{ name, problem string }

// testCommand is a benchmark whose flags say which results it returns, whether
// it ends early, and what its check finds.
func testCommand() Command[fakeOptions, fakeResult] {
	return Command[fakeOptions, fakeResult]{
		Name: "cmd",
		Parse: func(args []string, stderr io.Writer) (fakeOptions, error) {
			var o fakeOptions
			fs := FlagSet("cmd", stderr)
			fs.BoolVar(&o.fail, "fail", false, "fail the check")
			fs.BoolVar(&o.warn, "warn", false, "warn in the check")
			return o, Parse(fs, args)
		},
		Bench: func(ctx context.Context, logger *slog.Logger, o fakeOptions, stderr io.Writer) ([]fakeResult, error) {
			logger.Debug("not shown at level info")
			if err := ctx.Err(); err != nil {
				return []fakeResult{{name: "a"}}, fmt.Errorf("interrupted before b ran: %w", err)
			}
			return []fakeResult{{name: "a"}, {name: "b", problem: "timed out"}}, nil
		},
		Print: func(w io.Writer, _ fakeOptions, results []fakeResult) error {
			for _, r := range results {
				if _, err := fmt.Fprintln(w, r.name); err != nil {
					return err
				}
			}
			return nil
		},
		Check: func(o fakeOptions, results []fakeResult, v *Verdict) {
			if o.warn {
				v.Warn("slow")
			}
			if o.fail {
				for _, r := range results {
					if r.problem != "" {
						v.Problem(r.name + ": " + r.problem)
					}
				}
				v.Fail("ratio too low", "RSS too high")
			}
		},
	}
}

func TestCommandRun(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		args       []string
		stdout     io.Writer
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "passed", args: nil, wantStdout: "a\nb\n"},
		{name: "help", args: []string{"-h"}, wantStderr: "Usage of cmd:\n  -fail\n    \tfail the check\n  -warn\n    \twarn in the check\n"},
		{name: "usage", args: []string{"x"}, wantCode: 2, wantStderr: "cmd: usage: unexpected arguments [\"x\"]\n"},
		{name: "ended early", ctx: canceled, args: []string{"-fail"}, wantCode: 1, wantStdout: "a\n", wantStderr: "cmd: interrupted before b ran: context canceled\n"},
		{name: "warnings only", args: []string{"-warn"}, wantStdout: "a\nb\n", wantStderr: "cmd: warning: slow\n"},
		{
			name: "failures in order", args: []string{"-warn", "-fail"}, wantCode: 1, wantStdout: "a\nb\n",
			wantStderr: "cmd: warning: slow\ncmd: b: timed out\ncmd: FAIL: ratio too low\ncmd: FAIL: RSS too high\n",
		},
		{name: "results cannot be written", stdout: failingWriter{}, wantCode: 1, wantStderr: "cmd: write the results: closed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx
			}
			var stdout, stderr bytes.Buffer
			out := io.Writer(&stdout)
			if tt.stdout != nil {
				out = tt.stdout
			}
			code := testCommand().Run(ctx, tt.args, out, &stderr)
			if code != tt.wantCode || stdout.String() != tt.wantStdout || stderr.String() != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestWorkdir(t *testing.T) {
	t.Run("temporary", func(t *testing.T) {
		t.Setenv("TMPDIR", t.TempDir())
		dir, cleanup, err := Workdir("", "benchx")
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), "benchx-") {
			t.Errorf("dir %q", dir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Fatalf("not created: %v", err)
		}
		cleanup()
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("not removed: %v", err)
		}
	})
	t.Run("given is created and kept", func(t *testing.T) {
		t.Chdir(t.TempDir())
		dir, cleanup, err := Workdir(filepath.Join("a", "b"), "benchx")
		if err != nil {
			t.Fatal(err)
		}
		cleanup()
		wd, _ := os.Getwd()
		if dir != filepath.Join(wd, "a", "b") {
			t.Errorf("dir %q, want it absolute under %q", dir, wd)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("not kept: %v", err)
		}
	})
	t.Run("cannot be created", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, cleanup, err := Workdir(filepath.Join(file, "sub"), "benchx")
		cleanup()
		if err == nil || !strings.Contains(err.Error(), "create the working directory") {
			t.Errorf("err %v", err)
		}
	})
}
