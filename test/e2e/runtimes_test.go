package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/sentrytest"
	"github.com/outrider-dev/outrider/processors/stacktrace/runtimetest"
)

// runtimeWant is what the crash of one program must become at the Sentry receiver:
// the event's platform, the type of its main (outermost) exception and that
// exception's frames, as the program and its runtime's output say.
type runtimeWant struct {
	platform string
	typ      string
	frames   int
}

// runtimeWants covers every runtimetest case. The frame counts are those the runtime
// printed for the main exception: Go, the crashing goroutine's functions; Java, its
// "at" lines; Python, the "File" lines of the last traceback; Node, the "at" lines
// of the thrown error, with "... N lines matching cause stack trace ..." standing for
// N of its cause's; Ruby, the first line and its "from" lines; PHP, the place it was
// thrown and the "#N" lines without {main}; .NET, the "at" lines of the outer
// exception; Dart, the "#N" lines.
var runtimeWants = map[string]runtimeWant{
	"go/panic":    {"go", "panic", 2},
	"go/nil_map":  {"go", "panic", 2},
	"go/deadlock": {"go", "fatal error", 1},

	"java/uncaught":         {"java", "UncheckedIOException", 2},
	"java/nested_exception": {"java", "ServerException", 1},
	"java/jul_logged":       {"java", "NumberFormatException", 12},

	"python/uncaught":          {"python", "JSONDecodeError", 5},
	"python/chained":           {"python", "PaymentError", 2},
	"python/exception_group":   {"python", "ExceptionGroup", 2},
	"python/logging_exception": {"python", "KeyError", 3},

	"node/uncaught":       {"node", "TypeError", 8},
	"node/cause":          {"node", "Error", 8},
	"node/repeated_cause": {"node", "Error", 10},

	"ruby/uncaught_cause": {"ruby", "PaymentError", 3},
	"ruby/no_method":      {"ruby", "NoMethodError", 3},

	"php/uncaught_previous": {"php", "LogicException", 2},
	"php/type_error":        {"php", "TypeError", 2},

	"dotnet/unhandled_inner": {"csharp", "InvalidOperationException", 3},
	"dotnet/aggregate":       {"csharp", "AggregateException", 4},

	"dart/unhandled":       {"dart", "FormatException", 8},
	"dart/unhandled_async": {"dart", "StateError", 2},

	// testdata/runtimes: the runtimes' usual loggers.
	"go/log_panic":       {"go", "panic", 3},
	"node/console_error": {"node", "Error", 8},
	"ruby/logger":        {"ruby", "KeyError", 3},
	"php/logged":         {"php", "LogicException", 2},
}

// loggerCases log an error through the runtime's usual logger (testdata/runtimes);
// runtimetest's own cases do so for java.util.logging and Python's logging.
func loggerCases(t *testing.T) []runtimetest.Case {
	root, err := filepath.Abs(filepath.Join("testdata", "runtimes"))
	if err != nil {
		t.Fatal(err)
	}
	return []runtimetest.Case{
		{Lang: "go", Name: "log_panic", File: "logpanic/main.go", Root: root},
		{Lang: "node", Name: "console_error", File: "logged.js", Root: root},
		{Lang: "ruby", Name: "logger", File: "logged.rb", Root: root},
		{Lang: "php", Name: "logged", File: "logged.php", Root: root},
	}
}

// TestRuntimeCrashesEndToEnd runs the crashing programs of runtimetest in their real
// runtimes now (Go, Java, Python, Node from the machine; Ruby and PHP from Debian;
// .NET and Dart are the captured files of processors/stacktrace/testdata/runtimes,
// whose README states their origin), uncaught and through each runtime's usual
// logger (java.util.logging and Python's logging there; log.Panicf, console.error,
// Ruby's Logger and PHP's error_log in testdata/runtimes). Each output goes into a
// log file of its own between two ordinary timestamped lines, and the real outrider
// binary ships the files to a real Loki and the strict Sentry receiver. For every
// case: every line of the file is in exactly one Loki entry; the crash is exactly one
// entry (the only one of several lines), with the ID of exactly one Sentry event
// whose platform, main exception type and frame count are the runtime's; the
// ordinary lines and the program's own lines around the crash are entries of their
// own. The table per runtime is logged.
func TestRuntimeCrashesEndToEnd(t *testing.T) {
	loki := sharedLoki(t)
	sentrySrv := sentrytest.Start(t, sentrytest.WithPublicKey("runtimes-key"), sentrytest.WithProject(11))

	cases := append(append([]runtimetest.Case(nil), runtimetest.Cases...), loggerCases(t)...)
	outputs := make([]string, len(cases))
	t.Run("run", func(t *testing.T) {
		for i, c := range cases {
			t.Run(c.Lang+"/"+c.Name, func(t *testing.T) {
				t.Parallel()
				outputs[i] = runtimetest.Output(t, c)
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	dir := t.TempDir()
	mkdirs(t, filepath.Join(dir, "logs"))
	service := fmt.Sprintf("runtimes-%d", time.Now().UnixNano())
	cfgPath := filepath.Join(dir, "outrider.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`data_dir: %[1]s/data
identity: {service: %[2]s, namespace: e2e, pod: %[2]s-0, container: app, environment: e2e}
server: {listen: "127.0.0.1:0", shutdown_timeout: 10s}
logs:
  sources:
    - name: app
      path: %[1]s/logs/*.log
exporters:
  loki: {url: %[3]s, batch: {max_wait: 200ms}}
  sentry: {dsn: "%[4]s"}
`, dir, service, loki.URL, sentrySrv.DSN("runtimes-key", 11)))

	files := make([]string, len(cases))
	fileLines := make([][]string, len(cases))
	total := 0
	for i, c := range cases {
		key := c.Lang + "/" + c.Name
		if _, ok := runtimeWants[key]; !ok {
			t.Fatalf("runtimetest case %s has no expectation in runtimeWants", key)
		}
		files[i] = filepath.Join(dir, "logs", c.Lang+"-"+c.Name+".log")
		now := time.Now().UTC()
		lines := []string{fmt.Sprintf("%s INFO order accepted case=%s", now.Format(time.RFC3339Nano), key)}
		lines = append(lines, strings.Split(strings.TrimSuffix(outputs[i], "\n"), "\n")...)
		lines = append(lines, fmt.Sprintf("%s INFO health check ok case=%s", now.Add(time.Millisecond).Format(time.RFC3339Nano), key))
		fileLines[i] = lines
		writeFile(t, files[i], strings.Join(lines, "\n")+"\n")
		total += len(lines)
	}
	start := time.Now().Add(-time.Minute)
	startAgent(t, cfgPath)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := sentrySrv.WaitEvents(ctx, len(cases)); err != nil {
		t.Fatalf("events at the Sentry receiver: %v (got %d of %d)", err, len(sentrySrv.Events()), len(cases))
	}
	time.Sleep(2 * time.Second) // an extra event would arrive with the others
	events := sentrySrv.Events()
	if errs := sentrySrv.Errors(); len(errs) > 0 {
		t.Errorf("the strict Sentry receiver refused what the agent sent: %v", errs)
	}
	byID := map[string]sentrytest.Event{}
	for _, e := range events {
		byID[e.EventID()] = e
	}

	// Wait until Loki's entries hold as many lines as the files, then read them all.
	query := fmt.Sprintf(`{service=%q}`, service)
	var entries []lokiEntry
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err := loki.Query(ctx, query, start, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		entries = entries[:0]
		lines := 0
		for _, e := range got {
			entries = append(entries, lokiEntry{line: e.Line, file: e.Metadata["filename"], event: e.Metadata["sentry_event_id"]})
			lines += strings.Count(e.Line, "\n") + 1
		}
		if lines >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}

	byFile := map[string][]lokiEntry{}
	for _, e := range entries {
		byFile[e.file] = append(byFile[e.file], e)
	}
	usedEvents := map[string]bool{}
	var table []string
	for i, c := range cases {
		key := c.Lang + "/" + c.Name
		want := runtimeWants[key]
		got := byFile[files[i]]
		row := runtimeRow{runtime: c.Lang, name: c.Name, entries: len(got)}
		if c.Captured {
			row.name += " (captured)"
		}
		var crash []lokiEntry
		seen := map[string]int{}
		for _, e := range got {
			lines := strings.Split(e.line, "\n")
			for _, l := range lines {
				seen[l]++
			}
			if e.event != "" {
				crash = append(crash, e)
				continue
			}
			for _, l := range lines[1:] {
				if isFrameLine(l) {
					t.Errorf("%s: an entry without an event holds a piece of a trace (%q):\n%s", key, l, e.line)
				}
			}
			if isFrameLine(lines[0]) {
				t.Errorf("%s: a piece of a trace is an entry of its own: %q", key, e.line)
			}
		}
		for _, l := range fileLines[i] {
			seen[l]--
		}
		for l, n := range seen {
			if n != 0 {
				t.Errorf("%s: line %q is in Loki %+d times more than in the file", key, l, n)
			}
		}
		if len(crash) != 1 {
			t.Errorf("%s: %d entries with an event, want the crash as exactly one:\n%s", key, len(crash), dumpEntries(got))
		}
		for _, single := range []string{fileLines[i][0], runtimetest.Before, runtimetest.After, fileLines[i][len(fileLines[i])-1]} {
			if !hasEntry(got, single) {
				t.Errorf("%s: %q is not an entry of its own:\n%s", key, single, dumpEntries(got))
			}
		}
		if len(crash) == 1 {
			ev, ok := byID[crash[0].event]
			switch {
			case crash[0].event == "":
				t.Errorf("%s: the crash entry has no sentry_event_id", key)
			case !ok:
				t.Errorf("%s: event %s of the crash entry is not at the Sentry receiver", key, crash[0].event)
			default:
				usedEvents[crash[0].event] = true
				row.events = 1
				row.platform, _ = ev.Payload["platform"].(string)
				if excs := ev.Exceptions(); len(excs) > 0 {
					main := excs[len(excs)-1]
					row.typ, row.frames = main.Type, len(main.Frames)
				}
				if row.platform != want.platform || row.typ != want.typ || row.frames != want.frames {
					t.Errorf("%s: event platform %q, type %q, %d frames; want %q, %q, %d\n%s", key, row.platform, row.typ, row.frames, want.platform, want.typ, want.frames, crash[0].line)
				}
			}
		}
		table = append(table, row.String())
	}
	if len(events) != len(cases) || len(usedEvents) != len(cases) {
		t.Errorf("%d events at the Sentry receiver, %d of them for a crash entry; want exactly one per case (%d)", len(events), len(usedEvents), len(cases))
	}
	sort.Strings(table)
	t.Logf("crash output of real runtimes, end to end (%d files, %d lines):\n%-7s | %-28s | %-12s | %-13s | %-8s | %-26s | %s\n%s",
		len(cases), total, "runtime", "case", "Loki entries", "Sentry events", "platform", "type", "frames", strings.Join(table, "\n"))
}

type lokiEntry struct{ line, file, event string }

type runtimeRow struct {
	runtime, name, platform, typ string
	entries, events, frames      int
}

func (r runtimeRow) String() string {
	return fmt.Sprintf("%-7s | %-28s | %-12d | %-13d | %-8s | %-26s | %d", r.runtime, r.name, r.entries, r.events, r.platform, r.typ, r.frames)
}

// isFrameLine reports whether l looks like a line of a stack trace below its first:
// indented ("\tat …", "  File …", "    at …", "\tfrom …"), a numbered frame ("#0 …"),
// or a cause header.
func isFrameLine(l string) bool {
	switch {
	case strings.TrimSpace(l) == "":
		return false
	case l[0] == ' ' || l[0] == '\t':
		return true
	case len(l) > 1 && l[0] == '#' && l[1] >= '0' && l[1] <= '9':
		return true
	}
	return strings.HasPrefix(l, "Caused by: ") || strings.HasPrefix(l, "Stack trace:")
}

func hasEntry(entries []lokiEntry, line string) bool {
	for _, e := range entries {
		if e.line == line {
			return true
		}
	}
	return false
}

func dumpEntries(entries []lokiEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "--- entry (event %q)\n%s\n", e.event, e.line)
	}
	return b.String()
}
