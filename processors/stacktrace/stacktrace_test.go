package stacktrace

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// parsers maps a language to its parser; fixtures are named testdata/<lang>_<case>.log.
var parsers = map[string]func(string) (Trace, bool){
	LangGo:     ParseGo,
	LangJava:   ParseJava,
	LangPython: ParsePython,
	LangNode:   ParseNode,
	LangRuby:   ParseRuby,
	LangPHP:    ParsePHP,
	LangDotnet: ParseDotnet,
	LangDart:   ParseDart,
}

func fixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.log")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata: %v", err)
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, in := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".log")
		lang, _, _ := strings.Cut(name, "_")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			tr, ok := Parse(string(data))
			if !ok {
				t.Fatalf("Parse found no stack trace")
			}
			if tr.Language != lang {
				t.Errorf("Parse detected %q, the fixture is %q", tr.Language, lang)
			}
			parse, found := parsers[lang]
			if !found {
				t.Fatalf("fixture %s names no known language", name)
			}
			direct, ok := parse(string(data))
			if !ok || !reflect.DeepEqual(direct, tr) {
				t.Errorf("Parse%s disagrees with Parse (ok=%v)", lang, ok)
			}
			checkInvariants(t, tr)

			got, err := json.MarshalIndent(tr, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".log") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("trace differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// checkInvariants holds for every trace a parser returns.
func checkInvariants(t testing.TB, tr Trace) {
	t.Helper()
	if _, ok := parsers[tr.Language]; !ok {
		t.Errorf("unknown language %q", tr.Language)
	}
	n := len(tr.Exceptions)
	if n == 0 || n > MaxExceptions {
		t.Fatalf("%d exceptions, want 1..%d", n, MaxExceptions)
	}
	frames := 0
	seen := make([]bool, n)
	for i, e := range tr.Exceptions {
		if e.Type == "" {
			t.Errorf("exception %d has no type", i)
		}
		if len(e.Value) > MaxValueBytes {
			t.Errorf("exception %d value is %d bytes, over %d", i, len(e.Value), MaxValueBytes)
		}
		if e.ExceptionID < 0 || e.ExceptionID >= n || seen[e.ExceptionID] {
			t.Errorf("exception %d has exception_id %d: not a unique id in 0..%d", i, e.ExceptionID, n-1)
		} else {
			seen[e.ExceptionID] = true
		}
		if e.ParentID < -1 || e.ParentID >= n || e.ParentID == e.ExceptionID {
			t.Errorf("exception %d has parent_id %d", i, e.ParentID)
		}
		if e.ParentID >= 0 && e.Source == "" {
			t.Errorf("exception %d has a parent but no source", i)
		}
		frames += len(e.Frames)
		checkFrames(t, fmt.Sprintf("exception %d", i), e.Frames)
	}
	if last := tr.Exceptions[n-1]; last.ExceptionID != 0 || last.ParentID != -1 {
		t.Errorf("the last exception is %d (parent %d), want the outermost: 0 (parent -1)", last.ExceptionID, last.ParentID)
	}
	if len(tr.Threads) > MaxThreads {
		t.Errorf("%d threads, over %d", len(tr.Threads), MaxThreads)
	}
	for i, th := range tr.Threads {
		frames += len(th.Frames)
		checkFrames(t, fmt.Sprintf("thread %d", i), th.Frames)
	}
	if frames == 0 {
		t.Errorf("a trace without any frame was returned")
	}
}

func checkFrames(t testing.TB, what string, frames []Frame) {
	t.Helper()
	if len(frames) > MaxFrames {
		t.Errorf("%s has %d frames, over %d", what, len(frames), MaxFrames)
	}
	for j, f := range frames {
		if f.Function == "" && f.Filename == "" && f.AbsPath == "" {
			t.Errorf("%s frame %d has neither function nor file: %+v", what, j, f)
		}
		if f.Lineno < 0 || f.Colno < 0 {
			t.Errorf("%s frame %d has a negative position: %+v", what, j, f)
		}
	}
}

func TestNoStackTrace(t *testing.T) {
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"plain error line", "2024-05-01 10:00:00 ERROR failed to connect to db: connection refused"},
		{"java frame inside prose", "error: the call at com.example.Foo.bar(Foo.java:10) timed out"},
		{"java header in prose", "retrying after java.lang.IllegalStateException: pool closed\nsee https://example.com at 10:00"},
		{"caused by without frames", "Caused by: java.io.IOException: reset"},
		{"java frames without exception line", "\tat com.example.Foo.bar(Foo.java:10)\n\tat com.example.Main.main(Main.java:3)"},
		{"go panic without goroutines", "panic: boom"},
		{"go goroutine header only", "goroutine 1 [running]:"},
		{"python traceback without frames", "Traceback (most recent call last):\nKeyError: 'x'"},
		{"node error without frames", "TypeError: x is not a function"},
		{"prose indented at", "Error: upload failed\n    at the moment the service is down"},
		{"ruby-looking prose", "the method at app.rb:10 failed in `foo'"},
		{"dotnet prose", "System.Text said: it failed\n   at the moment (not now) we retry"},
		{"dart frame in prose", "#1 issue (see docs)"},
		{"php fatal without frames", "PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted"},
		{"json without a trace", `{"level":"error","msg":"boom"}`},
		{"json with a non-trace stack", `{"level":"error","stack":"a\nb"}`},
		{"json array", `[{"stack":"Error: x\n    at f (/a.js:1:2)"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tr, ok := Parse(tt.text); ok {
				t.Errorf("Parse found a %s trace: %+v", tr.Language, tr)
			}
			for lang, parse := range parsers {
				if tr, ok := parse(tt.text); ok {
					t.Errorf("Parse%s found a trace: %+v", lang, tr)
				}
			}
		})
	}
}

// TestWrongParser: a parser does not take another language's trace.
func TestWrongParser(t *testing.T) {
	for _, in := range fixtures(t) {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(in), ".log")
		lang, _, _ := strings.Cut(name, "_")
		for other, parse := range parsers {
			if other == lang {
				continue
			}
			if tr, ok := parse(string(data)); ok {
				t.Errorf("%s: Parse%s took it: %+v", name, other, tr)
			}
		}
	}
}

// exc summarises an exception as "Type: value <- parent source" for order checks.
func summary(tr Trace) []string {
	var s []string
	for _, e := range tr.Exceptions {
		line := fmt.Sprintf("%d %s: %s", e.ExceptionID, e.Type, e.Value)
		if e.ParentID >= 0 {
			line += fmt.Sprintf(" (%s of %d)", e.Source, e.ParentID)
		}
		s = append(s, line)
	}
	return s
}

func frameNames(frames []Frame) []string {
	var s []string
	for _, f := range frames {
		name := f.Function
		if f.Module != "" {
			name = f.Module + "." + name
		}
		s = append(s, fmt.Sprintf("%s:%d", name, f.Lineno))
	}
	return s
}

func mustParse(t *testing.T, text string) Trace {
	t.Helper()
	tr, ok := Parse(text)
	if !ok {
		t.Fatalf("no trace found in\n%s", text)
	}
	checkInvariants(t, tr)
	return tr
}

// TestSentryOrder pins the ordering decisions the goldens also show: root cause first,
// outermost last, frames oldest first.
func TestSentryOrder(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		exceptions []string
		lastFrames []string // frames of the outermost exception
	}{
		{
			name: "java cause chain",
			text: "a.b.OuterException: outer\n\tat a.b.C.top(C.java:3)\n\tat a.b.C.main(C.java:1)\n" +
				"Caused by: a.b.InnerException: inner\n\tat a.b.D.deep(D.java:9)\n\t... 1 more\n",
			exceptions: []string{"1 InnerException: inner (cause of 0)", "0 OuterException: outer"},
			lastFrames: []string{"a.b.C.main:1", "a.b.C.top:3"},
		},
		{
			name: "python raise from",
			text: "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'k'\n\n" + pySepCause + "\n\n" +
				"Traceback (most recent call last):\n  File \"a.py\", line 5, in <module>\n  File \"a.py\", line 3, in g\nValueError: v\n",
			exceptions: []string{"1 KeyError: 'k' (__cause__ of 0)", "0 ValueError: v"},
			lastFrames: []string{"<module>:5", "g:3"},
		},
		{
			name:       "go nested panic",
			text:       "panic: one [recovered]\n\tpanic: two\n\ngoroutine 1 [running]:\nmain.b()\n\t/a/b.go:2 +0x1\nmain.a()\n\t/a/a.go:1 +0x1\n",
			exceptions: []string{"1 panic: one (recovered of 0)", "0 panic: two"},
			lastFrames: []string{"main.a:1", "main.b:2"},
		},
		{
			name:       "node cause",
			text:       "Error: outer\n    at f (/a.js:1:1)\n    at g (/a.js:2:1) {\n  [cause]: TypeError: inner\n      at h (/b.js:3:1)\n}\n",
			exceptions: []string{"1 TypeError: inner (cause of 0)", "0 Error: outer"},
			lastFrames: []string{"g:2", "f:1"},
		},
		{
			name:       "ruby cause",
			text:       "a.rb:4:in `rescue in <main>': outer (RuntimeError)\n\tfrom a.rb:1:in `<main>'\na.rb:2:in `<main>': inner (ArgumentError)\n",
			exceptions: []string{"1 ArgumentError: inner (cause of 0)", "0 RuntimeError: outer"},
			lastFrames: []string{"<main>:1", "rescue in <main>:4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustParse(t, tt.text)
			if got := summary(tr); !reflect.DeepEqual(got, tt.exceptions) {
				t.Errorf("exceptions\n got %q\nwant %q", got, tt.exceptions)
			}
			last := tr.Exceptions[len(tr.Exceptions)-1]
			if got := frameNames(last.Frames); !reflect.DeepEqual(got, tt.lastFrames) {
				t.Errorf("outermost frames\n got %q\nwant %q", got, tt.lastFrames)
			}
		})
	}
}

func TestJavaSharedFrames(t *testing.T) {
	data, err := os.ReadFile("testdata/java_nested_suppressed.log")
	if err != nil {
		t.Fatal(err)
	}
	tr := mustParse(t, string(data))
	byType := map[string]Exception{}
	for _, e := range tr.Exceptions {
		byType[e.Type] = e
	}
	// "disk full" is the cause of the first suppressed exception and shares its last
	// 3 frames, the last of which it shares in turn with the outermost exception.
	want := []string{"com.example.Main.main:3", "com.example.Batch.run:48", "com.example.Writer.close:20", "com.example.Disk.write:7"}
	if got := frameNames(byType["IOException"].Frames); !reflect.DeepEqual(got, want) {
		t.Errorf("IOException frames\n got %q\nwant %q", got, want)
	}
	if got := byType["IOException"].Source; got != "cause" {
		t.Errorf("IOException source = %q, want cause", got)
	}
	if got := byType["IllegalStateException"].Source; got != "suppressed[1]" {
		t.Errorf("second suppressed source = %q, want suppressed[1]", got)
	}
	if got := byType["RuntimeException"].Value; got != "batch failed\nline two of the message" {
		t.Errorf("multi-line value = %q", got)
	}
}

func TestJSONFields(t *testing.T) {
	stack := `Error: boom\n    at f (/app/a.js:1:2)`
	tests := []struct{ name, line string }{
		{"stack", `{"stack":"` + stack + `"}`},
		{"stacktrace", `{"level":"error","stacktrace":"` + stack + `"}`},
		{"dotted error.stack", `{"error.stack":"` + stack + `"}`},
		{"nested error object", `{"error":{"message":"boom","stack":"` + stack + `"}}`},
		{"nested err object", `{"err":{"stack":"` + stack + `"}}`},
		{"message", `{"message":"` + stack + `"}`},
		{"exception", `  {"exception":"` + stack + `"}  `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustParse(t, tt.line)
			if tr.Language != LangNode || tr.Exceptions[0].Value != "boom" {
				t.Errorf("got %+v", tr)
			}
		})
	}
}

func TestGoDetails(t *testing.T) {
	tests := []struct {
		name, text       string
		typ, module, val string
		thread           string
	}{
		{"runtime error", "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d\nexit status 2",
			"runtime.Error", "runtime", "runtime error: index out of range [5] with length 3", "1"},
		{"repanicked", "panic: boom [recovered, repanicked]\n\ngoroutine 3 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d",
			"panic", "", "boom", "3"},
		{"multi-line value", "panic: line one\nline two\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d",
			"panic", "", "line one\nline two", "1"},
		{"fatal error", "fatal error: concurrent map writes\n\ngoroutine 12 [running]:\nmain.set(...)\n\t/app/m.go:3",
			"fatal error", "", "concurrent map writes", "12"},
		{"bare dump", "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d",
			"goroutine dump", "", "", "1"},
		{"message before dump", "2024-05-01T10:00:00Z ERROR unexpected state\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d",
			"error", "", "unexpected state", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustParse(t, tt.text)
			e := tr.Exceptions[len(tr.Exceptions)-1]
			if e.Type != tt.typ || e.Module != tt.module || e.Value != tt.val || e.ThreadID != tt.thread {
				t.Errorf("got type %q module %q value %q thread %q", e.Type, e.Module, e.Value, e.ThreadID)
			}
		})
	}
}

func TestInApp(t *testing.T) {
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"go main", goInApp("main", "/app/main.go"), true},
		{"go app module", goInApp("github.com/acme/app/x", "/app/x/x.go"), true},
		{"go stdlib", goInApp("net/http", "/usr/local/go/src/net/http/server.go"), false},
		{"go module cache", goInApp("github.com/lib/pq", "/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go"), false},
		{"go trimpath dependency", goInApp("github.com/lib/pq", "github.com/lib/pq@v1.10.9/conn.go"), false},
		{"go vendored", goInApp("github.com/acme/app/vendor/github.com/x/y", ""), false},
		{"go runtime panic", goInApp("", "/usr/local/go/src/runtime/panic.go"), false},
		{"java app", javaInApp("com.example.App"), true},
		{"java jdk", javaInApp("java.util.ArrayList"), false},
		{"java spring", javaInApp("org.springframework.web.Foo"), false},
		{"python app", pyFrameFor("/app/main.py", 1, "f").InApp, true},
		{"python site-packages", pyFrameFor("/venv/lib/python3.12/site-packages/flask/app.py", 1, "f").InApp, false},
		{"python stdlib", pyFrameFor("/usr/lib/python3.12/json/decoder.py", 1, "f").InApp, false},
		{"node app", nodeInApp("/app/src/a.js"), true},
		{"node internal", nodeInApp("node:internal/process/task_queues"), false},
		{"node modules", nodeInApp("/app/node_modules/express/index.js"), false},
		{"ruby app", rubyInApp("app/models/user.rb"), true},
		{"ruby gem", rubyInApp("/usr/local/bundle/gems/rack-3.0.0/lib/rack.rb"), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: in_app = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if m := pyFrameFor("/venv/lib/python3.12/site-packages/requests/__init__.py", 1, "f").Module; m != "requests" {
		t.Errorf("python package module = %q, want requests", m)
	}
}

// TestBounds feeds huge traces: the result stays within the caps and keeps the frames
// and exceptions nearest the crash.
func TestBounds(t *testing.T) {
	var b strings.Builder

	b.WriteString("java.lang.StackOverflowError\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "\tat com.example.R.f(R.java:%d)\n", i+1)
	}
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "Caused by: com.example.E%d: cause %d\n\tat com.example.X.g(X.java:%d)\n\t... 5000 more\n", i, i, i+1)
	}
	tr := mustParse(t, b.String())
	outer := tr.Exceptions[len(tr.Exceptions)-1]
	if len(tr.Exceptions) != MaxExceptions || len(outer.Frames) != MaxFrames {
		t.Errorf("java: %d exceptions, %d frames", len(tr.Exceptions), len(outer.Frames))
	}
	if top := outer.Frames[len(outer.Frames)-1]; top.Lineno != 1 {
		t.Errorf("java: the newest frame was not kept: %+v", top)
	}

	b.Reset()
	for i := 0; i < 40; i++ {
		if i > 0 {
			b.WriteString("\n" + pySepContext + "\n\n")
		}
		b.WriteString("Traceback (most recent call last):\n")
		for j := 0; j < 600; j++ {
			fmt.Fprintf(&b, "  File \"/app/r.py\", line %d, in f\n    f()\n", j+1)
		}
		fmt.Fprintf(&b, "ValueError: e%d\n", i)
	}
	tr = mustParse(t, b.String())
	outer = tr.Exceptions[len(tr.Exceptions)-1]
	if len(tr.Exceptions) != MaxExceptions || outer.Value != "e39" || tr.Exceptions[0].Value != "e30" {
		t.Errorf("python: kept %q", summary(tr))
	}
	if len(outer.Frames) != MaxFrames || outer.Frames[len(outer.Frames)-1].Lineno != 600 {
		t.Errorf("python: %d frames, newest %+v", len(outer.Frames), outer.Frames[len(outer.Frames)-1])
	}

	b.Reset()
	b.WriteString("fatal error: all goroutines are asleep - deadlock!\n")
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&b, "\ngoroutine %d [chan receive]:\n", i)
		for j := 0; j < 300; j++ {
			fmt.Fprintf(&b, "main.f%d()\n\t/app/main.go:%d +0x1\n", j, j+1)
		}
	}
	tr = mustParse(t, b.String())
	if len(tr.Threads) != MaxThreads || len(tr.Exceptions[0].Frames) != MaxFrames {
		t.Errorf("go: %d threads, %d frames", len(tr.Threads), len(tr.Exceptions[0].Frames))
	}

	long := "Error: " + strings.Repeat("é", MaxValueBytes) + "\n    at f (/a.js:1:1)\n"
	tr = mustParse(t, long)
	if v := tr.Exceptions[0].Value; len(v) > MaxValueBytes || !strings.HasSuffix(v, "é") {
		t.Errorf("value cut to %d bytes, ending %q", len(v), v[len(v)-4:])
	}
}

func TestGoManyNestedPanics(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 25; i++ {
		if i > 0 {
			b.WriteString("\t")
		}
		fmt.Fprintf(&b, "panic: p%d [recovered]\n", i)
	}
	b.WriteString("\tpanic: last\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:3 +0x1\n")
	tr := mustParse(t, b.String())
	if n := len(tr.Exceptions); n != MaxExceptions {
		t.Fatalf("%d exceptions", n)
	}
	if last := tr.Exceptions[len(tr.Exceptions)-1]; last.Value != "last" || len(last.Frames) != 1 {
		t.Errorf("the crashing panic was not kept: %q", summary(tr))
	}
	if first := tr.Exceptions[0]; first.Value != "p16" || first.Source != "recovered" {
		t.Errorf("oldest kept = %+v, want p16", first)
	}
}

// TestPHPExceptionHead finds the exception's type in the first line of a logged
// Throwable::__toString, whatever the application wrote before it.
func TestPHPExceptionHead(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"payment failed: RuntimeException: card declined in /app/pay.php:12", "RuntimeException: card declined in /app/pay.php:12"},
		{"[06-Dec-2026 15:58:39 UTC] payment failed: RuntimeException: a: b in /app/pay.php:12", "RuntimeException: a: b in /app/pay.php:12"},
		{"ERROR: TypeError: f(): Argument #1 must be of type int in /app/x.php:3", "TypeError: f(): Argument #1 must be of type int in /app/x.php:3"},
		{`Order 7: App\Payment\Declined: card expired in /app/src/Pay.php:40`, `App\Payment\Declined: card expired in /app/src/Pay.php:40`},
		{"ERROR: PaymentDeclined: card expired in /app/x.php:3", "PaymentDeclined: card expired in /app/x.php:3"},
		{"RuntimeException: boom in /app/x.php:3", "RuntimeException: boom in /app/x.php:3"},
		{"payment failed: card declined in /app/x.php:3", ""}, // no type
		{"ERROR: RuntimeException: boom", ""},                                                      // no position
		{"Checkout: RuntimeException: boom in the cart", ""},                                       // not a position
		{"WARN: 42Exception: x in /app/x.php:3", ""},                                               // not a name
		{"request done: Status: 200 OK in /app/index.php:9", "Status: 200 OK in /app/index.php:9"}, // the fallback; "Stack trace:" must follow too
	} {
		i := PHPExceptionHead(tt.line)
		got := ""
		if i >= 0 {
			got = tt.line[i:]
		}
		if got != tt.want {
			t.Errorf("PHPExceptionHead(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestParsePHPLogged parses an exception with a previous one as error_log writes it:
// the outermost (Next) is the main exception, the first its cause.
func TestParsePHPLogged(t *testing.T) {
	text := "[06-Dec-2026 15:58:39 UTC] payment failed: RuntimeException: connection refused: db:5432 in /app/pay.php:8\n" +
		"Stack trace:\n" +
		"#0 /app/pay.php(14): connect()\n" +
		"#1 /app/index.php(21): charge()\n" +
		"#2 {main}\n" +
		"\n" +
		"Next LogicException: charge of 1250 failed in /app/pay.php:16\n" +
		"Stack trace:\n" +
		"#0 /app/index.php(21): charge()\n" +
		"#1 {main}"
	tr, ok := Parse(text)
	if !ok || tr.Language != LangPHP || len(tr.Exceptions) != 2 {
		t.Fatalf("Parse: ok %v, %+v", ok, tr)
	}
	cause, main := tr.Exceptions[0], tr.Exceptions[1]
	if cause.Type != "RuntimeException" || cause.Value != "connection refused: db:5432" {
		t.Errorf("cause %s: %q", cause.Type, cause.Value)
	}
	if main.Type != "LogicException" || main.Value != "charge of 1250 failed" {
		t.Errorf("main %s: %q", main.Type, main.Value)
	}
	if got := Classify(text); got != Uncaught {
		t.Errorf("Classify = %v, want Uncaught: a logged exception is an error, not a fatal one", got)
	}
	if got := Classify("PHP Fatal error:  Uncaught " + text[strings.Index(text, "RuntimeException"):]); got != Fatal {
		t.Errorf("Classify of the uncaught form = %v, want Fatal", got)
	}
	if _, ok := Parse("payment failed: RuntimeException: boom in /app/pay.php:8\nnext line"); ok {
		t.Error("a line like an exception without \"Stack trace:\" after it parsed as a trace")
	}
}
