package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/processors/redact"
)

// TestMain lets the test binary be the sink process too, as benchredact is.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild(os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"-lines", "10", "-secrets", "5", "-rounds", "1", "-max-overhead", "2.5"}, ""},
		{[]string{"-lines", "0"}, "-lines must be positive"},
		{[]string{"-secrets", "0"}, "-secrets must be positive"},
		{[]string{"-rounds", "0"}, "-rounds must be positive"},
		{[]string{"-leak-every", "-1"}, "-leak-every must not be negative"},
		{[]string{"-min-secret-len", "13"}, ""},
		{[]string{"-min-secret-len", "65"}, "-min-secret-len must be between 0 and 64"},
		{[]string{"-min-secret-len", "-1"}, "-min-secret-len must be between 0 and 64"},
		{[]string{"-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	a, b := secrets(60, 1, 0), secrets(60, 1, 0)
	seen := map[string]bool{}
	for i, v := range a {
		if v != b[i] {
			t.Fatal("secrets are not deterministic")
		}
		if seen[v] {
			t.Fatalf("duplicate secret %q", v)
		}
		seen[v] = true
		if len(v) < redact.MinValueLen {
			t.Fatalf("secret %q is too short to register", v)
		}
	}
	if c := secrets(60, 2, 0); c[0] == a[0] {
		t.Error("the seed does not change the secrets")
	}
	short := 0
	for _, v := range a {
		if len(v) < 13 {
			short++
		}
	}
	if short == 0 {
		t.Error("the standard mix has no value under 13 bytes: the matcher's stride-5 case goes unmeasured")
	}
	for _, minLen := range []int{13, maxMinSecretLen} {
		long := secrets(60, 1, minLen)
		if len(long) != 60 {
			t.Fatalf("-min-secret-len %d: %d values, want 60", minLen, len(long))
		}
		for _, v := range long {
			if len(v) < minLen {
				t.Fatalf("-min-secret-len %d: value %q has %d bytes", minLen, v, len(v))
			}
		}
	}
}

// TestLeakFormsAreScrubbed checks the premise of the benchmark's leak check: each
// field written into the input holds its forms, is valid JSON once inserted, and
// the registry scrubs every form from it.
func TestLeakFormsAreScrubbed(t *testing.T) {
	values := secrets(30, 7, 0)
	r := redact.NewRegistry(nil)
	r.Set("test", values)
	forms := secretForms(values)
	for _, lf := range leakForms {
		applies := 0
		for _, v := range values {
			field, fs, ok := lf.field(v)
			if !ok {
				continue
			}
			applies++
			line := insertField([]byte(`{"msg":"x"}`+"\n"), field)
			var obj map[string]any
			if err := json.Unmarshal(line, &obj); err != nil {
				t.Fatalf("form %s of %q: %s is not JSON: %v", lf.name, v, line, err)
			}
			if f, ok := formOf(string(line)); !ok || f.name != lf.name {
				t.Fatalf("form %s of %q: the sink reads %s as form %q", lf.name, v, line, f.name)
			}
			for _, f := range fs {
				if !strings.Contains(field, f) {
					t.Fatalf("form %s of %q: field %s does not hold %q", lf.name, v, field, f)
				}
			}
			got, ok := r.Redact(string(line))
			if !ok || hasAny(got, forms) {
				t.Fatalf("form %s of %q: %s scrubbed to %s", lf.name, v, line, got)
			}
		}
		if applies == 0 {
			t.Errorf("form %s applies to none of %d secrets", lf.name, len(values))
		}
	}
}

// TestLeakFormsDiffer checks that each form is written as itself: every variant
// differs from the plain JSON form for the secrets it is written for, and the forms
// are distinct encodings of a value that has something to escape.
func TestLeakFormsDiffer(t *testing.T) {
	v := "pä/ss<w>&\"ord€"
	seen := map[string]string{}
	for _, lf := range leakForms {
		field, _, ok := lf.field(v)
		if !ok {
			continue
		}
		val := field[len(lf.key())+1:]
		if prev, dup := seen[val]; dup && !strings.HasPrefix(lf.name, "basic_auth") {
			t.Errorf("forms %s and %s both write %s", prev, lf.name, val)
		}
		seen[val] = lf.name
	}
}

func TestInsertField(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1}` + "\n", `{"a":1,"b":2}` + "\n"},
		{`{"a":1}`, `{"a":1,"b":2}`},
		{`{"a":1}` + "\r\n", `{"a":1,"b":2}` + "\r\n"},
		{"not json\n", "not json\n"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(insertField([]byte(tt.in), `,"b":2`)); got != tt.want {
			t.Errorf("insertField(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.log")
	values := secrets(10, 3, 0)
	st, err := writeInput(path, 1000, values, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if st.lines != 1000 || len(lines) != 1000 || st.bytes != int64(len(data)) || st.withSecret != 10 {
		t.Fatalf("stats %+v for %d lines of %d bytes", st, len(lines), len(data))
	}
	forms := secretForms(values)
	with := 0
	for _, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		if hasAny(l, forms) {
			with++
		}
	}
	if with != 10 {
		t.Errorf("%d lines hold a secret, want 10", with)
	}
}

func TestCheck(t *testing.T) {
	ok := func(name string, perCPU float64, scrubbed, leaked int64) result {
		forms := map[string]formCounts{}
		for _, f := range leakForms {
			if name == baselineName {
				forms[f.name] = formCounts{Lines: 1, Leaked: 1}
			} else {
				forms[f.name] = formCounts{Lines: 1, Scrubbed: 1}
			}
		}
		return result{
			runSpec:    runSpec{name: name, round: 1},
			want:       1000,
			withSecret: 10,
			complete:   true,
			counts:     childCounts{Entries: 1000, Scrubbed: scrubbed, Leaked: leaked, Checked: 50, Forms: forms},
			cpu:        time.Duration(1000 / perCPU * float64(time.Second)),
			wall:       time.Second,
		}
	}
	withForm := func(r result, name string, c formCounts) result {
		r.counts.Forms = maps.Clone(r.counts.Forms)
		r.counts.Forms[name] = c
		return r
	}
	tests := []struct {
		name    string
		results []result
		want    []string
	}{
		{"pass", []result{ok(baselineName, 100_000, 0, 10), ok(redactName, 95_000, 10, 0)}, nil},
		{"overhead", []result{ok(baselineName, 100_000, 0, 10), ok(redactName, 80_000, 10, 0)}, []string{"scrubbing costs 20.0%"}},
		{"leak", []result{ok(baselineName, 100_000, 0, 10), ok(redactName, 100_000, 10, 1)}, []string{"1 of 50 checked lines reached the sink"}},
		{"not scrubbed", []result{ok(baselineName, 100_000, 0, 10), ok(redactName, 100_000, 9, 0)}, []string{"9 lines were scrubbed, but 10"}},
		{"blind leak check", []result{ok(baselineName, 100_000, 0, 0), ok(redactName, 100_000, 10, 0)}, []string{"leak check is broken"}},
		{"form not scrubbed", []result{ok(baselineName, 100_000, 0, 10), withForm(ok(redactName, 100_000, 10, 0), "hex_dash", formCounts{Lines: 3, Scrubbed: 2})},
			[]string{"leak form hex_dash: 2 of 3 lines arrived scrubbed"}},
		{"form not seen", []result{withForm(ok(baselineName, 100_000, 0, 10), "base32", formCounts{Lines: 3, Leaked: 1}), ok(redactName, 100_000, 10, 0)},
			[]string{"leak form base32: the leak check found the secret in 1 of 3"}},
		{"form missing", []result{withForm(ok(baselineName, 100_000, 0, 10), "nfd", formCounts{}), withForm(ok(redactName, 100_000, 10, 0), "nfd", formCounts{})},
			[]string{"leak form nfd: no line"}},
		{"incomplete", []result{ok(baselineName, 100_000, 0, 10), {runSpec: runSpec{name: redactName, round: 1}, want: 1000, problem: "timed out after 1s"}},
			[]string{"timed out after 1s (0 of 1000", "overhead could not be measured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := check(tt.results, 10)
			if len(got) != len(tt.want) {
				t.Fatalf("check = %q, want %d messages like %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("message %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestRun runs the whole benchmark on a small input: the pipeline, the sink
// process, the leak check and the table.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline twice per round")
	}
	tests := []struct {
		name     string
		overhead string
		want     int
		stderr   string
	}{
		{"passes", "1000", 0, ""},
		// No run can lose less than -1000% of its throughput: the gate must trip.
		{"gate trips", "-1000", 1, "FAIL: scrubbing costs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"-lines", "20000", "-secrets", "20", "-rounds", "1", "-timeout", "60s",
				"-workdir", t.TempDir(), "-max-overhead", tt.overhead}
			code := command.Run(context.Background(), args, &stdout, &stderr)
			if code != tt.want {
				t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, &stdout, &stderr)
			}
			out := stdout.String()
			for _, w := range []string{"lines/cpu_s", baselineName, redactName, "overhead", "leak_form", "basic_auth_2", "load average"} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, &stderr)
			}
			if tt.want == 0 && strings.Contains(stderr.String(), "FAIL") {
				t.Errorf("stderr reports a failure:\n%s", &stderr)
			}
		})
	}
}
