package multiline_test

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
	"github.com/outrider-dev/outrider/processors/parse"
	"github.com/outrider-dev/outrider/processors/stacktrace"
	"github.com/outrider-dev/outrider/processors/stacktrace/runtimetest"
)

// crashWant is what one crashing program must come out as.
type crashWant struct {
	first, last string // substrings of the crash record's first and last lines
	level       pipeline.Level
	platform    string
	typ         string // the outermost exception's type
	value       string // a substring of its message
	exceptions  int    // the exceptions of the chain
	minFrames   int    // frames of the exception that has the most
	function    string // a function among all frames
}

var crashWants = map[string]crashWant{
	"go/panic":    {first: "panic: charge 42", last: "main.go:19", level: pipeline.LevelFatal, platform: "go", typ: "panic", value: "card declined", exceptions: 1, minFrames: 2, function: "(*store).charge"},
	"go/nil_map":  {first: "panic: assignment to entry in nil map", last: "main.go:14", level: pipeline.LevelFatal, platform: "go", typ: "panic", value: "nil map", exceptions: 1, minFrames: 2, function: "record"},
	"go/deadlock": {first: "fatal error: all goroutines are asleep", last: "main.go:13", level: pipeline.LevelFatal, platform: "go", typ: "fatal error", value: "deadlock", exceptions: 1, minFrames: 1, function: "main"},

	"java/uncaught":         {first: `Exception in thread "main" java.io.UncheckedIOException`, last: "Main.main(Main.java", level: pipeline.LevelError, platform: "java", typ: "UncheckedIOException", value: "config load failed", exceptions: 3, minFrames: 3, function: "load"},
	"java/nested_exception": {first: `Exception in thread "main" java.rmi.ServerException`, last: "... 8 more", level: pipeline.LevelError, platform: "java", typ: "ServerException", value: "server call failed", exceptions: 3, minFrames: 2, function: "call"},
	"java/jul_logged":       {first: "SEVERE: bad quantity in order 42", last: "Main.main(Main.java", level: pipeline.LevelError, platform: "java", typ: "NumberFormatException", value: `For input string: "12x"`, exceptions: 1, minFrames: 5, function: "parse"},

	"python/uncaught":          {first: "Traceback (most recent call last):", last: "JSONDecodeError: Expecting property name", level: pipeline.LevelError, platform: "python", typ: "JSONDecodeError", value: "Expecting property name", exceptions: 1, minFrames: 5, function: "load"},
	"python/chained":           {first: "Traceback (most recent call last):", last: "PaymentError: checkout failed", level: pipeline.LevelError, platform: "python", typ: "PaymentError", value: "checkout failed for order 42", exceptions: 3, minFrames: 2, function: "checkout"},
	"python/exception_group":   {first: "Exception Group Traceback (most recent call last):", last: "+------------------------------------", level: pipeline.LevelError, platform: "python", typ: "ExceptionGroup", value: "order 42 is invalid", exceptions: 5, minFrames: 2, function: "validate"},
	"python/logging_exception": {first: "ERROR shop: cannot total order 42", last: "KeyError: 'price'", level: pipeline.LevelError, platform: "python", typ: "KeyError", value: "'price'", exceptions: 1, minFrames: 3, function: "total"},

	"node/uncaught":       {first: "uncaught.js:5", last: "Node.js v", level: pipeline.LevelError, platform: "node", typ: "TypeError", value: "Cannot read properties of undefined", exceptions: 1, minFrames: 2, function: "total"},
	"node/cause":          {first: "cause.js:14", last: "Node.js v", level: pipeline.LevelError, platform: "node", typ: "Error", value: "query failed for order 42", exceptions: 2, minFrames: 3, function: "connect"},
	"node/repeated_cause": {first: "repeated.js:13", last: "Node.js v", level: pipeline.LevelError, platform: "node", typ: "Error", value: "job 42 failed", exceptions: 2, minFrames: 5, function: "step"},

	"ruby/uncaught_cause": {first: "in `rescue in charge': charge failed for order 42 (PaymentError)", last: "from uncaught.rb:18", level: pipeline.LevelError, platform: "ruby", typ: "PaymentError", value: "charge failed for order 42", exceptions: 2, minFrames: 3, function: "authorize"},
	"ruby/no_method":      {first: "nomethod.rb:5:in `total': undefined method", last: "from nomethod.rb:13", level: pipeline.LevelError, platform: "ruby", typ: "NoMethodError", value: "undefined method `sum'", exceptions: 1, minFrames: 3, function: "checkout"},

	"php/uncaught_previous": {first: "PHP Fatal error:  Uncaught RuntimeException", last: "thrown in", level: pipeline.LevelFatal, platform: "php", typ: "LogicException", value: "query failed for order 42", exceptions: 2, minFrames: 2, function: "connect"},
	"php/type_error":        {first: "PHP Fatal error:  Uncaught TypeError", last: "thrown in", level: pipeline.LevelFatal, platform: "php", typ: "TypeError", value: "must be of type array", exceptions: 1, minFrames: 1, function: "total"},

	"dotnet/unhandled_inner": {first: "Unhandled exception. System.InvalidOperationException", last: "Shop.Program.<Main>", level: pipeline.LevelError, platform: "csharp", typ: "InvalidOperationException", value: "Order 42 could not be charged", exceptions: 3, minFrames: 3, function: "ChargeAsync"},
	"dotnet/aggregate":       {first: "Unhandled exception. System.AggregateException", last: "CTR_WS_Connection.cs:line 48", level: pipeline.LevelError, platform: "csharp", typ: "AggregateException", value: "One or more errors occurred", exceptions: 2, minFrames: 4, function: "Import"},

	"dart/unhandled":       {first: "Unhandled exception:", last: "_RawReceivePort._handleMessage", level: pipeline.LevelError, platform: "dart", typ: "FormatException", value: "Invalid radix-10 number", exceptions: 1, minFrames: 8, function: "quantity"},
	"dart/unhandled_async": {first: "Unhandled exception:", last: "<asynchronous suspension>", level: pipeline.LevelError, platform: "dart", typ: "StateError", value: "order 42 already shipped", exceptions: 1, minFrames: 2, function: "ship"},
}

// table collects one row per case for the summary TestMain prints with -v.
var (
	tableMu sync.Mutex
	table   []string
)

// TestRealRuntimeCrashes runs each crashing program in its runtime and checks that the
// joiner makes one record of the crash and separate records of the lines around it,
// that the parser gives the record an error level, and that the stack trace parser
// reads the right exception, frames and platform. It runs with the built-in joining
// and again with a start pattern for the application's own lines configured.
func TestRealRuntimeCrashes(t *testing.T) {
	for _, c := range runtimetest.Cases {
		key := c.Lang + "/" + c.Name
		want, ok := crashWants[key]
		if !ok {
			t.Fatalf("no expectation for %s", key)
		}
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			out := runtimetest.Output(t, c)
			for _, cfg := range []struct {
				name string
				cfg  multiline.Config
			}{
				{"builtin", multiline.Config{}},
				{"with_start", multiline.Config{Start: `^(INFO|\d{4}-\d{2}-\d{2} |[A-Z][a-z]{2} \d{2}, \d{4} )`}},
				{"with_start_nonspace", multiline.Config{Start: `^\S`}},
			} {
				t.Run(cfg.name, func(t *testing.T) {
					checkCrash(t, key, cfg.cfg, out, want, cfg.name == "builtin")
				})
			}
		})
	}
}

func checkCrash(t *testing.T, key string, cfg multiline.Config, out string, want crashWant, report bool) {
	j, err := multiline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var recs []multiline.Record
	for _, l := range lines {
		for _, r := range j.Add(l) {
			recs = append(recs, multiline.Record{Text: strings.Clone(r.Text), Lines: r.Lines})
		}
	}
	recs = append(recs, j.Flush()...)

	var joined []string
	total := 0
	for _, r := range recs {
		joined = append(joined, r.Text)
		total += r.Lines
	}
	if total != len(lines) || strings.Join(joined, "\n") != strings.Join(lines, "\n") {
		t.Fatalf("records do not add up to the input (%d lines in, %d out)", len(lines), total)
	}
	p, err := parse.New(parse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	crash := -1
	for i, r := range recs {
		if strings.TrimSpace(r.Text) == "" {
			continue
		}
		if strings.Contains(r.Text, want.first) {
			if crash >= 0 {
				t.Fatalf("two records start the crash:\n%s", render(recs))
			}
			crash = i
			continue
		}
		// Every other record is an application line: one line, or a
		// java.util.logging two-line record; it holds no trace and is no error.
		var rec pipeline.Record
		p.Parse(r.Text, &rec)
		if r.Lines > 2 || rec.Level == pipeline.LevelError || rec.Level == pipeline.LevelFatal {
			t.Errorf("record %d should be an application line, is %d lines at level %v:\n%s", i, r.Lines, rec.Level, r.Text)
		}
	}
	if crash < 0 {
		t.Fatalf("no record starts with %q:\n%s", want.first, render(recs))
	}
	r := recs[crash]
	// The crash starts on the record's first line, or its second for a
	// java.util.logging record (date line, then "SEVERE: message").
	first, last := r.Text, r.Text
	if parts := strings.SplitN(r.Text, "\n", 3); len(parts) > 2 {
		first = parts[0] + "\n" + parts[1]
	}
	if i := strings.LastIndexByte(r.Text, '\n'); i >= 0 {
		last = r.Text[i+1:]
	}
	if !strings.Contains(first, want.first) || !strings.Contains(last, want.last) {
		t.Errorf("crash record should run from %q to %q; records:\n%s", want.first, want.last, render(recs))
	}
	if strings.Contains(r.Text, runtimetest.Before) || strings.Contains(r.Text, runtimetest.After) {
		t.Errorf("crash record swallowed a neighbouring line:\n%s", r.Text)
	}

	var rec pipeline.Record
	p.Parse(r.Text, &rec)
	if rec.Level != want.level {
		t.Errorf("level %v, want %v", rec.Level, want.level)
	}
	tr, ok := stacktrace.Parse(r.Text)
	if !ok {
		t.Fatalf("no stack trace parsed from:\n%s", r.Text)
	}
	outer := tr.Exceptions[len(tr.Exceptions)-1]
	maxFrames, found := 0, false
	for _, e := range tr.Exceptions {
		maxFrames = max(maxFrames, len(e.Frames))
		for _, f := range e.Frames {
			if f.Function == want.function || strings.HasSuffix(f.Function, "."+want.function) {
				found = true
			}
		}
	}
	if tr.Platform() != want.platform || outer.Type != want.typ || !strings.Contains(outer.Value, want.value) ||
		len(tr.Exceptions) != want.exceptions || maxFrames < want.minFrames || !found {
		t.Errorf("parsed platform %q type %q value %q, %d exceptions, at most %d frames, function %q found %v;\nwant platform %q type %q value ~%q, %d exceptions, >= %d frames\n%s",
			tr.Platform(), outer.Type, outer.Value, len(tr.Exceptions), maxFrames, want.function, found,
			want.platform, want.typ, want.value, want.exceptions, want.minFrames, r.Text)
	}
	if report {
		frames := make([]string, len(tr.Exceptions))
		for i, e := range tr.Exceptions {
			frames[i] = fmt.Sprint(len(e.Frames))
		}
		tableMu.Lock()
		table = append(table, fmt.Sprintf("| %-24s | %3d | %-27s | %-10s | %-6s | %-6s |", key, r.Lines, outer.Type, strings.Join(frames, "+"), tr.Platform(), rec.Level))
		tableMu.Unlock()
	}
}

func render(recs []multiline.Record) string {
	var b strings.Builder
	for i, r := range recs {
		fmt.Fprintf(&b, "--- record %d (%d lines)\n%s\n", i, r.Lines, r.Text)
	}
	return b.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(table) > 0 && testingVerbose() {
		sort.Strings(table)
		fmt.Println("| runtime/case             | lines | type                        | frames     | platform | level |")
		for _, row := range table {
			fmt.Println(row)
		}
	}
	os.Exit(code)
}

func testingVerbose() bool {
	for _, a := range os.Args {
		if a == "-test.v=true" || a == "-test.v" {
			return true
		}
	}
	return false
}
