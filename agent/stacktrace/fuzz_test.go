package stacktrace

import (
	"os"
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
