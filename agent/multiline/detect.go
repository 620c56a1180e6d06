package multiline

import (
	"strings"

	"github.com/outrider-dev/outrider/agent/stacktrace"
)

// The classifiers below are byte scans, not regular expressions: they run on every
// line read.

// isBlank reports whether line holds only spaces, tabs and carriage returns.
func isBlank(line string) bool {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ', '\t', '\r':
		default:
			return false
		}
	}
	return true
}

// isIndented reports whether line starts with a space or a tab.
func isIndented(line string) bool {
	return len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
}

// trimSpace returns line without leading and trailing spaces, tabs and CRs.
func trimSpace(line string) string {
	i, j := 0, len(line)
	for i < j && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
		i++
	}
	for j > i && (line[j-1] == ' ' || line[j-1] == '\t' || line[j-1] == '\r') {
		j--
	}
	return line[i:j]
}

// isJSON reports whether line looks like a JSON object: such lines are complete
// records and are never joined.
func isJSON(line string) bool {
	t := trimSpace(line)
	return len(t) >= 2 && t[0] == '{' && t[len(t)-1] == '}'
}

// isGoStart reports whether line starts a Go crash: "panic: ", "fatal error: ", a fatal
// signal ("SIGSEGV: segmentation violation") or a goroutine header, possibly after a
// log prefix such as a timestamp.
func isGoStart(line string) bool {
	if stacktrace.IsGoroutineHeader(line) {
		return true
	}
	if stacktrace.IndexWord(line, "panic: ") >= 0 || stacktrace.IndexWord(line, "fatal error: ") >= 0 {
		return true
	}
	return isSignalLine(line)
}

// isSignalLine matches the first line of a Go signal dump: "SIGQUIT: quit".
func isSignalLine(line string) bool {
	if !strings.HasPrefix(line, "SIG") {
		return false
	}
	i := 3
	for i < len(line) && 'A' <= line[i] && line[i] <= 'Z' {
		i++
	}
	return i > 3 && strings.HasPrefix(line[i:], ": ")
}

// isGoFuncLine matches a Go traceback function line: "main.main()",
// "net/http.(*conn).serve(0xc000120000, {0x6d5a98, 0xc000104000})",
// "panic({0x4a5e40?, 0x4e0c50?})".
func isGoFuncLine(line string) bool {
	if len(line) == 0 || isIndented(line) || line[len(line)-1] != ')' {
		return false
	}
	p := strings.IndexByte(line, '(')
	if p <= 0 {
		return false
	}
	name := line[:p]
	if strings.IndexByte(name, ' ') >= 0 {
		return false
	}
	return name == "panic" || strings.IndexByte(name, '.') >= 0
}

// goContinues reports whether line continues a Go panic or goroutine dump.
func goContinues(line string) bool {
	if isIndented(line) || stacktrace.IsGoroutineHeader(line) || isGoFuncLine(line) {
		return true
	}
	for _, p := range goContinuationPrefixes {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

var goContinuationPrefixes = []string{
	"created by ",
	"exit status ",
	"[signal ",
	"[originating from goroutine ",
	"...additional frames elided...",
	"runtime stack:",
	"PC=",
}

// isJavaFrame matches an indented stack frame "\tat com.x.Foo.bar(Foo.java:10)" (also
// .NET "   at X.Y() in f.cs:line 5" and JavaScript "    at f (file.js:1:2)").
func isJavaFrame(line string) bool {
	if !isIndented(line) {
		return false
	}
	t := trimSpace(line)
	return len(t) > 3 && strings.HasPrefix(t, "at ")
}

// javaContinues reports whether line continues a Java exception.
func javaContinues(line string) bool {
	if isJavaFrame(line) {
		return true
	}
	t := trimSpace(line)
	switch {
	case strings.HasPrefix(t, "Caused by: "), strings.HasPrefix(t, "Suppressed: "),
		strings.HasPrefix(t, "Wrapped by: "), strings.HasPrefix(t, "---"):
		return true
	case strings.HasPrefix(t, "... ") && isIndented(line):
		// "\t... 5 more", "\t... 12 common frames omitted"
		return strings.HasSuffix(t, " more") || strings.HasSuffix(t, " omitted")
	}
	return false
}

const pyTraceback = "Traceback (most recent call last):"

// isPyStart matches "Traceback (most recent call last):", possibly after a prefix.
func isPyStart(line string) bool {
	return strings.HasSuffix(trimSpace(line), pyTraceback)
}

// isPyChain matches the lines Python prints between chained exceptions.
func isPyChain(line string) bool {
	switch trimSpace(line) {
	case "During handling of the above exception, another exception occurred:",
		"The above exception was the direct cause of the following exception:":
		return true
	}
	return false
}
