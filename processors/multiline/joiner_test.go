package multiline

import (
	"github.com/outrider-dev/outrider/processors/stacktrace"

	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/confval"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// run feeds lines to j, flushes at the end and returns every record.
func run(j *Joiner, lines []string) []Record {
	var out []Record
	for _, l := range lines {
		out = append(out, j.Add(l)...)
	}
	return append(out, j.Flush()...)
}

func splitLines(data string) []string {
	data = strings.TrimSuffix(data, "\n")
	if data == "" {
		return nil
	}
	return strings.Split(data, "\n")
}

func render(recs []Record) string {
	var b strings.Builder
	for i, r := range recs {
		fmt.Fprintf(&b, "--- record %d (%d lines)\n%s\n", i+1, r.Lines, r.Text)
	}
	return b.String()
}

// fixtureConfig returns the configuration a fixture is read with: files named
// start_*.log use a timestamp start pattern, the others the built-in stack traces.
func fixtureConfig(name string) Config {
	if strings.HasPrefix(name, "start_") {
		return Config{Start: `^\d{4}-\d{2}-\d{2}`}
	}
	return Config{}
}

func TestFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			j, err := New(fixtureConfig(name))
			if err != nil {
				t.Fatal(err)
			}
			lines := splitLines(string(in))
			recs := run(j, lines)
			checkInvariants(t, lines, recs, DefaultMaxLines, DefaultMaxBytes)
			got := render(recs)
			golden := strings.TrimSuffix(f, ".log") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("records differ from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// checkInvariants verifies that recs consume lines in order, each record being exactly
// its lines joined with '\n', within the limits.
func checkInvariants(t *testing.T, lines []string, recs []Record, maxLines, maxBytes int) {
	t.Helper()
	k := 0
	for i, r := range recs {
		if r.Lines < 1 || r.Lines > maxLines {
			t.Fatalf("record %d has %d lines; want 1..%d", i, r.Lines, maxLines)
		}
		if k+r.Lines > len(lines) {
			t.Fatalf("record %d claims %d lines but only %d are left", i, r.Lines, len(lines)-k)
		}
		if want := strings.Join(lines[k:k+r.Lines], "\n"); r.Text != want {
			t.Fatalf("record %d = %q; want lines %d..%d joined: %q", i, r.Text, k, k+r.Lines, want)
		}
		if r.Lines > 1 && len(r.Text) > maxBytes {
			t.Fatalf("record %d has %d bytes, over max_bytes %d", i, len(r.Text), maxBytes)
		}
		k += r.Lines
	}
	if k != len(lines) {
		t.Fatalf("records cover %d lines; input has %d", k, len(lines))
	}
}

func TestJoinerCases(t *testing.T) {
	off := false
	tests := []struct {
		name  string
		cfg   Config
		lines []string
		want  []string
	}{
		{
			name:  "plain lines stay apart",
			lines: []string{"a", "b", "c"},
			want:  []string{"a", "b", "c"},
		},
		{
			name:  "disabled passes lines through",
			cfg:   Config{StackTraces: &off},
			lines: []string{"panic: x", "", "goroutine 1 [running]:", "\tat x"},
			want:  []string{"panic: x", "", "goroutine 1 [running]:", "\tat x"},
		},
		{
			name:  "java frames join the header before them",
			lines: []string{"java.lang.IllegalStateException: x", "\tat a.B.c(B.java:1)", "\t... 3 more", "next"},
			want:  []string{"java.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n\t... 3 more", "next"},
		},
		{
			name: "a PHP exception logged with error_log is one record, its previous one included",
			lines: []string{"INFO before", "[06-Dec-2026 15:58:39 UTC] payment failed: RuntimeException: refused: db in /app/p.php:8", "Stack trace:",
				"#0 /app/p.php(14): connect()", "#1 {main}", "", "Next LogicException: charge failed in /app/p.php:16", "Stack trace:", "#0 {main}", "INFO after"},
			want: []string{"INFO before", "[06-Dec-2026 15:58:39 UTC] payment failed: RuntimeException: refused: db in /app/p.php:8\nStack trace:\n" +
				"#0 /app/p.php(14): connect()\n#1 {main}\n\nNext LogicException: charge failed in /app/p.php:16\nStack trace:\n#0 {main}", "INFO after"},
		},
		{
			name:  "Stack trace: after a line that is no PHP exception starts nothing",
			lines: []string{"payment failed in /app/p.php:8", "Stack trace:", "#0 {main}"},
			want:  []string{"payment failed in /app/p.php:8", "Stack trace:", "#0 {main}"},
		},
		{
			name:  "indented text after a plain line is not a frame",
			lines: []string{"config:", "  attempts: 3"},
			want:  []string{"config:", "  attempts: 3"},
		},
		{
			name:  "blank line inside a trace stays when the trace goes on",
			lines: []string{"x.Y: z", "\tat a.b(C.java:1)", "", "\tat d.e(F.java:2)", "", "next"},
			want:  []string{"x.Y: z\n\tat a.b(C.java:1)\n\n\tat d.e(F.java:2)", "", "next"},
		},
		{
			name:  "timestamp prefix before panic",
			lines: []string{"2024/05/01 10:00:00 panic: boom", "", "goroutine 1 [running]:", "main.main()", "\t/x.go:3 +0x1d", "exit status 2"},
			want:  []string{"2024/05/01 10:00:00 panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/x.go:3 +0x1d\nexit status 2"},
		},
		{
			name:  "panic in the middle of a word is not a panic",
			lines: []string{"nopanic: x", "main.main()"},
			want:  []string{"nopanic: x", "main.main()"},
		},
		{
			name:  "held blanks are released when the trace ends",
			lines: []string{"panic: x", "", "", "next"},
			want:  []string{"panic: x", "", "", "next"},
		},
		{
			name:  "max_lines cuts a long trace and keeps joining",
			cfg:   Config{MaxLines: 3},
			lines: []string{"x.Y: z", "\tat a(A.java:1)", "\tat b(B.java:2)", "\tat c(C.java:3)", "\tat d(D.java:4)", "next"},
			want:  []string{"x.Y: z\n\tat a(A.java:1)\n\tat b(B.java:2)", "\tat c(C.java:3)\n\tat d(D.java:4)", "next"},
		},
		{
			name:  "max_bytes cuts a long trace",
			cfg:   Config{MaxBytes: 20},
			lines: []string{"x.Y: z", "\tat a(A.java:1)", "\tat b(B.java:2)"},
			want:  []string{"x.Y: z", "\tat a(A.java:1)", "\tat b(B.java:2)"},
		},
		{
			name:  "a single line over max_bytes passes whole",
			cfg:   Config{MaxBytes: 4},
			lines: []string{"0123456789", "\tat a(A.java:1)"},
			want:  []string{"0123456789", "\tat a(A.java:1)"},
		},
		{
			name:  "start pattern joins everything until the next start",
			cfg:   Config{Start: `^\[`},
			lines: []string{"[1] a", "b", "", "c", "[2] d", "[3] e", "f"},
			want:  []string{"[1] a\nb\n\nc", "[2] d", "[3] e\nf"},
		},
		{
			name:  "start pattern respects max_lines",
			cfg:   Config{Start: `^\[`, MaxLines: 2, MaxBytes: confval.ByteSize(1 << 20)},
			lines: []string{"[1] a", "b", "c", "d", "e"},
			want:  []string{"[1] a\nb", "c\nd", "e"},
		},
		{
			name:  "python traceback ends at a line after the exception",
			lines: []string{"Traceback (most recent call last):", `  File "a.py", line 1, in <module>`, "ValueError: x", "next"},
			want:  []string{"Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: x", "next"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			recs := run(j, tt.lines)
			cfg := tt.cfg
			cfg.ApplyDefaults()
			checkInvariants(t, tt.lines, recs, cfg.MaxLines, int(cfg.MaxBytes))
			var got []string
			for _, r := range recs {
				got = append(got, r.Text)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("records:\n%q\nwant:\n%q", got, tt.want)
			}
			if j.Pending() {
				t.Error("Pending() after Flush")
			}
		})
	}
}

func TestAddReturnsCompletedRecordsOnly(t *testing.T) {
	j, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Add("panic: x"); len(got) != 0 {
		t.Fatalf("Add(panic) = %v; want it held", got)
	}
	if !j.Pending() {
		t.Fatal("Pending() = false with a held panic")
	}
	if got := j.Add(`{"msg":"json"}`); len(got) != 2 || got[0].Text != "panic: x" || got[1].Text != `{"msg":"json"}` {
		t.Fatalf("Add(json) = %v; want the panic then the JSON line", got)
	}
	if j.Pending() {
		t.Fatal("Pending() = true after a JSON line")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "defaults are valid", cfg: Config{}},
		{name: "bad regexp", cfg: Config{Start: "("}, want: []string{"m.start: invalid regular expression"}},
		{
			name: "negative limits",
			cfg:  Config{MaxLines: -1, MaxBytes: -1, FlushAfter: -1},
			want: []string{"m.max_lines: must be positive", "m.max_bytes: must be positive", "m.flush_after: must be a positive duration"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ApplyDefaults()
			p := &confval.Problems{}
			tt.cfg.Validate(p.At("m"))
			err := p.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate found nothing; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := New(Config{Start: "("}); err == nil {
		t.Error("New accepted an invalid start pattern")
	}
}

func TestDetectors(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) bool
		yes  []string
		no   []string
	}{
		{"isJSON", isJSON, []string{`{}`, `  {"a":1}  `, "{\"a\":1}\r"}, []string{`{`, `}`, `[1]`, `x {}`, ``}},
		{"isGoroutineHeader", stacktrace.IsGoroutineHeader,
			[]string{"goroutine 1 [running]:", "goroutine 18 [chan receive, 5 minutes]:", "prefix: goroutine 7 gp=0xc0 m=0 [running]:"},
			[]string{"goroutine x [running]:", "goroutine 1 running:", "goroutines 1 [x]:", "mygoroutine 1 [x]:"}},
		{"isGoFuncLine", isGoFuncLine,
			[]string{"main.main()", "main.(*T).m(0xc0, {0x1, 0x2})", "panic({0x5c8e40?, 0x6e7a90?})", "net/http.(*conn).serve(...)"},
			[]string{"\tmain.main()", "call foo(bar)", "main.main", "(x)", "foo(bar)"}},
		{"isGoStart", isGoStart,
			[]string{"panic: x", "2024 panic: x", "[app] panic: x", "fatal error: stack overflow", "SIGQUIT: quit", "goroutine 3 [idle]:"},
			[]string{"nopanic: x", "panic:x", "SIG: x", "SIGquit: x"}},
		{"isJavaFrame", isJavaFrame,
			[]string{"\tat a.B.c(B.java:1)", "    at f (x.js:1:2)", "   at X.Y() in f.cs:line 5"},
			[]string{"at a.B.c(B.java:1)", "\tat", "\tattempt 3"}},
		{"javaContinues", javaContinues,
			[]string{"Caused by: x.Y: z", "\tSuppressed: x", "\t... 5 more", "\t... 12 common frames omitted", "   --- End of inner exception stack trace ---"},
			[]string{"... 5 more", "\t... and more things", "next line"}},
		{"isPyStart", isPyStart,
			[]string{"Traceback (most recent call last):", "2024 ERROR Traceback (most recent call last):\r"},
			[]string{"Traceback (most recent call last)", "Traceback:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.yes {
				if !tt.fn(s) {
					t.Errorf("%s(%q) = false; want true", tt.name, s)
				}
			}
			for _, s := range tt.no {
				if tt.fn(s) {
					t.Errorf("%s(%q) = true; want false", tt.name, s)
				}
			}
		})
	}
}

func FuzzJoiner(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0), uint8(5), uint16(200))
		f.Add(data, uint8(1), uint8(2), uint16(40))
	}
	f.Add([]byte("panic: x\n\n\n\ngoroutine 1 [running]:\n{}\n"), uint8(0), uint8(3), uint16(10))
	f.Add([]byte("2024 a\n b\n\n{\"x\":1}\n c\n"), uint8(1), uint8(1), uint16(1))
	f.Add([]byte("/a.js:1\nx\n\nError: e\n    at f (/a.js:1:2) {\n  [cause]: Error: c\n}\n\nNode.js v20.0.0"), uint8(0), uint8(15), uint16(4000))
	f.Add([]byte("Unhandled exception:\nx\n#0      main (file:///a.dart:1:2)\n2024 b"), uint8(1), uint8(15), uint16(4000))
	f.Add([]byte("ERROR x\nFooException: y\nz\nDec 06, 2026 9:17:34 AM A b\nSEVERE: m\nE: x\n\tat a.B(C.java:1)"), uint8(0), uint8(15), uint16(4000))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, maxLines uint8, maxBytes uint16) {
		cfg := Config{MaxLines: int(maxLines%16) + 1, MaxBytes: confval.ByteSize(maxBytes%4096) + 1}
		switch mode % 3 {
		case 1:
			cfg.Start = `^\d{4}`
		case 2:
			off := false
			cfg.StackTraces = &off
		}
		j, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		recs := run(j, lines)
		checkInvariants(t, lines, recs, cfg.MaxLines, int(cfg.MaxBytes))
		var all []string
		for _, r := range recs {
			all = append(all, r.Text)
		}
		if !bytes.Equal([]byte(strings.Join(all, "\n")), data) {
			t.Fatal("records joined with newlines differ from the input")
		}
	})
}

func BenchmarkJoinerPlain(b *testing.B) {
	j, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	lines := []string{
		"2024-05-01T10:00:00.000Z INFO  [http-nio-8080-exec-1] c.e.web.RequestLogger - GET /api/v1/orders 200 12ms",
		`{"ts":"2024-05-01T10:00:00Z","level":"info","msg":"request served","status":200}`,
		"level=info ts=2024-05-01T10:00:00Z caller=main.go:42 msg=\"listening\" addr=:8080",
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j.Add(lines[i%len(lines)])
	}
}
