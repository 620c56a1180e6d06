package stacktrace

import (
	"os"
	"testing"
)

func benchParse(b *testing.B, file string, parse func(string) (Trace, bool)) {
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parse(text); !ok {
			b.Fatal("no trace")
		}
	}
}

// A typical Spring error: a 6-frame exception with a cause sharing 5 frames.
func BenchmarkParseJava(b *testing.B) {
	benchParse(b, "testdata/java_logback_spring.log", ParseJava)
}

// A typical net/http handler panic.
func BenchmarkParseGo(b *testing.B) {
	benchParse(b, "testdata/go_http_panic.log", ParseGo)
}

// Detection plus parsing, as the agent calls it.
func BenchmarkParseDetectJava(b *testing.B) {
	benchParse(b, "testdata/java_logback_spring.log", Parse)
}

func BenchmarkParseDetectPython(b *testing.B) {
	benchParse(b, "testdata/python_requests.log", Parse)
}

// The common miss: an error line without a stack trace must cost next to nothing.
func BenchmarkParseNoTrace(b *testing.B) {
	text := "2024-05-01T10:00:00.000Z ERROR [http-nio-8080-exec-1] c.e.Api - request failed: upstream returned 503 after 3 retries"
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Parse(text); ok {
			b.Fatal("found a trace")
		}
	}
}
