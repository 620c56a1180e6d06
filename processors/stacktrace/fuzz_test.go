package stacktrace

import (
	"os"
	"strings"
	"testing"
)

// seed adds every fixture and a few fragments to the corpus.
func seed(f *testing.F) {
	f.Helper()
	for _, in := range fixtures(f) {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	for _, s := range []string{
		"", "\n", "panic: \ngoroutine 1 [running]:\n()\n\t:0", "\tat (", "    at (:1:2)",
		"  File \"\", line , in \n", "a.rb:1:in `':  ()", "Caused by: \n\t... 99 more",
		"  +-+---- 1 ----\n    | Traceback (most recent call last):\n", `{"stack":"x\n\tat a.B(C)"}`,
		"PHP Fatal error:  Uncaught E: m in /a.php:1\nStack trace:\n#0 /a.php(2): f()\n#1 {main}\nNext F: n in :x\n#0 [internal function]: A->b()",
		"Unhandled exception. A.B: m\n ---> C.D (1): n\n   at A.B.c() in /f.cs:line 1\n   --- End of inner exception stack trace ---\n   at X..ctor(Int32 a)",
		"Unhandled exception:\nBad state: x\n#0      main (file:///a.dart:1:2)\n<asynchronous suspension>\n#1 f (a.dart:3)",
	} {
		f.Add(s)
	}
}

func fuzzParser(f *testing.F, lang string, parse func(string) (Trace, bool)) {
	seed(f)
	f.Fuzz(func(t *testing.T, text string) {
		tr, ok := parse(text)
		if !ok {
			return
		}
		if lang != "" && tr.Language != lang {
			t.Fatalf("language %q, want %q", tr.Language, lang)
		}
		checkInvariants(t, tr)
	})
}

func FuzzParse(f *testing.F)       { fuzzParser(f, "", Parse) }
func FuzzParseGo(f *testing.F)     { fuzzParser(f, LangGo, ParseGo) }
func FuzzParseJava(f *testing.F)   { fuzzParser(f, LangJava, ParseJava) }
func FuzzParsePython(f *testing.F) { fuzzParser(f, LangPython, ParsePython) }
func FuzzParseNode(f *testing.F)   { fuzzParser(f, LangNode, ParseNode) }
func FuzzParseRuby(f *testing.F)   { fuzzParser(f, LangRuby, ParseRuby) }
func FuzzParsePHP(f *testing.F)    { fuzzParser(f, LangPHP, ParsePHP) }
func FuzzParseDotnet(f *testing.F) { fuzzParser(f, LangDotnet, ParseDotnet) }
func FuzzParseDart(f *testing.F)   { fuzzParser(f, LangDart, ParseDart) }

// FuzzClassify checks the crash recogniser: a crash is always a text Parse reads,
// and a single line is never one.
func FuzzClassify(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, text string) {
		c := Classify(text)
		if c == NoCrash {
			return
		}
		if !strings.Contains(text, "\n") {
			t.Fatalf("single line classified as crash %d", c)
		}
		if _, ok := Parse(text); !ok {
			t.Fatalf("crash %d without a parsable trace", c)
		}
	})
}
