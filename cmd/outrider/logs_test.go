package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/agent"
	"github.com/outrider-dev/outrider/processors/stacktrace/runtimetest"
)

// logsTestConfig writes a configuration with a file source per name, Loki and Sentry.
func logsTestConfig(t *testing.T, extra string, sources ...string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("data_dir: " + dir + "/data\nidentity: {service: shop, namespace: prod, pod: shop-0, container: app}\nlogs:\n  sources:\n")
	for _, s := range sources {
		b.WriteString("    - name: " + s + "\n      path: /var/log/" + s + "/*.log\n")
	}
	b.WriteString("exporters:\n  loki: {url: \"http://127.0.0.1:9\"" + extra + "}\n  sentry: {dsn: \"http://key@127.0.0.1:9/1\"}\n")
	path := filepath.Join(dir, "outrider.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// logsTest runs `outrider logs test` with stdin and returns its exit code and output.
func logsTest(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runLogsWith(append([]string{"test"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestLogsTestRealCrashes feeds the crash output of real runtimes
// (processors/stacktrace/runtimetest: programs run now; .NET and Dart captured) to
// `outrider logs test --json`: the lines around each crash are records of their own
// without an event, and the crash is one record with an error level, its stream's
// labels, the file name and the event's ID as structured metadata, and one error event
// with its runtime's platform, an exception type and frames. The human output of the
// same input says the same.
func TestLogsTestRealCrashes(t *testing.T) {
	cfg := logsTestConfig(t, "", "app")
	platform := map[string]string{"dotnet": "csharp"}
	for _, c := range runtimetest.Cases {
		t.Run(c.Lang+"/"+c.Name, func(t *testing.T) {
			t.Parallel()
			out := runtimetest.Output(t, c)
			code, stdout, stderr := logsTest(out, "--config", cfg, "--json")
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var recs []agent.DryRunRecord
			dec := json.NewDecoder(strings.NewReader(stdout))
			for dec.More() {
				var r agent.DryRunRecord
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("--json output is not one object per record: %v\n%s", err, stdout)
				}
				recs = append(recs, r)
			}
			if len(recs) < 3 || recs[0].Line != runtimetest.Before || recs[len(recs)-1].Line != runtimetest.After {
				t.Fatalf("records %d, want %q first and %q last as records of their own:\n%s", len(recs), runtimetest.Before, runtimetest.After, stdout)
			}
			var crash *agent.DryRunRecord
			for i := range recs {
				if recs[i].Event == nil {
					continue
				}
				if crash != nil {
					t.Fatalf("two records with an event:\n%s\n---\n%s", crash.Line, recs[i].Line)
				}
				crash = &recs[i]
			}
			if crash == nil {
				t.Fatalf("no record has an error event:\n%s", stdout)
			}
			want := platform[c.Lang]
			if want == "" {
				want = c.Lang
			}
			ev := crash.Event
			if ev.Platform != want || ev.Type == "" || ev.Frames < 1 || ev.Exceptions < 1 {
				t.Errorf("event %+v: want platform %s, a type and frames", ev, want)
			}
			if crash.Level != "error" && crash.Level != "fatal" {
				t.Errorf("crash record level %q", crash.Level)
			}
			if !strings.Contains(crash.Labels, `level="`+crash.Level+`"`) || !strings.Contains(crash.Labels, `service="shop"`) || !strings.Contains(crash.Labels, `source="app"`) {
				t.Errorf("crash record labels %s", crash.Labels)
			}
			meta := map[string]string{}
			for _, m := range crash.Metadata {
				meta[m.Name] = m.Value
			}
			if meta["sentry_event_id"] != ev.ID || meta["filename"] != agent.StdinName {
				t.Errorf("crash record metadata %v, want sentry_event_id %s and filename %s", meta, ev.ID, agent.StdinName)
			}
			if !strings.Contains(crash.Line, "\n") {
				t.Errorf("the crash is not joined: %q", crash.Line)
			}

			code, human, stderr := logsTest(out, "--config", cfg)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, frag := range []string{
				"error event: " + ev.Type + " (platform " + want,
				"level " + crash.Level,
				"    | " + runtimetest.After,
			} {
				if !strings.Contains(human, frag) {
					t.Errorf("human output lacks %q:\n%s", frag, human)
				}
			}
			if !strings.HasSuffix(human, "1 error events\n") {
				t.Errorf("human output does not end with the count of events:\n%s", human)
			}
		})
	}
}

// TestLogsTestStructuredMetadataOff: with structured_metadata off the dry run shows
// the IDs in the line and no structured metadata, as the exporter would send them.
func TestLogsTestStructuredMetadataOff(t *testing.T) {
	cfg := logsTestConfig(t, ", structured_metadata: off", "app")
	in := `{"level":"info","msg":"paid","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","request_id":"r-1"}` + "\n" +
		"2026-12-06 12:00:00 ERROR payment failed\n" +
		"java.lang.IllegalStateException: declined\n\tat com.shop.Pay.charge(Pay.java:42)\n\tat com.shop.Api.handle(Api.java:7)\n"
	code, stdout, stderr := logsTest(in, "--config", cfg, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var recs []agent.DryRunRecord
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r agent.DryRunRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(recs), stdout)
	}
	for _, r := range recs {
		if len(r.Metadata) != 0 {
			t.Errorf("structured metadata %v with structured_metadata off", r.Metadata)
		}
	}
	if recs[1].Event == nil || recs[1].Event.Type != "IllegalStateException" || recs[1].Event.Frames != 2 {
		t.Fatalf("the Java error: event %+v", recs[1].Event)
	}
	if want := "2026-12-06 12:00:00 ERROR payment failed sentry_event_id=" + recs[1].Event.ID + "\n"; !strings.HasPrefix(recs[1].Line, want) {
		t.Errorf("line %q, want the event ID on its first line: %q", recs[1].Line, want)
	}
	if !strings.Contains(recs[0].Line, `"request_id":"r-1"`) || strings.Count(recs[0].Line, "4bf92f3577b34da6a3ce929d0e0e4736") != 1 {
		t.Errorf("JSON line %q: its IDs are already in it, nothing to add", recs[0].Line)
	}
}

// TestLogsTestUsage: every mistake exits 2 with a message that says what to do.
func TestLogsTestUsage(t *testing.T) {
	two := logsTestConfig(t, "", "app", "worker")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "the subcommand is test"},
		{"no config", []string{"--json"}, "--config FILE is required"},
		{"config from stdin", []string{"--config", "-"}, "standard input holds the sample lines"},
		{"two sources", []string{"--config", two}, "choose one with --source"},
		{"unknown source", []string{"--config", two, "--source", "web"}, `no log source named "web"; the configured ones are app, worker`},
		{"bad config", []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, "invalid configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := tc.args
			if tc.name != "no subcommand" {
				args = append([]string{"test"}, args...)
			}
			code := runLogsWith(args, strings.NewReader("x\n"), &out, &errb)
			if code != exitUsage && !(tc.name == "bad config" && code == exitFailed) {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", errb.String(), tc.want)
			}
		})
	}
	code, stdout, stderr := logsTest("hello\n", "--config", two, "--source", "worker")
	if code != exitOK || !strings.Contains(stdout, `source="worker"`) || !strings.Contains(stdout, "    | hello\n") {
		t.Errorf("--source worker: exit %d\n%s%s", code, stdout, stderr)
	}
}
