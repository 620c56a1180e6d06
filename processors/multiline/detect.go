package multiline

import (
	"strings"

	"github.com/outrider-dev/outrider/processors/stacktrace"
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
	if isGoFuncName(line) {
		return true // pkg/errors' "%+v" stack: "main.load" then "\t/app/load.go:14"
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
		// "\t... 5 more", "\t... 12 common frames omitted", Node's "    ... 7 lines
		// matching cause stack trace ..."
		return strings.HasSuffix(t, " more") || strings.HasSuffix(t, " omitted") || strings.HasSuffix(t, " ...")
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

// traceStart returns the state a record begun by line starts in: the state of the
// stack trace line begins, or stPlain.
func traceStart(line string) state {
	switch {
	case isGoStart(line):
		return stGo
	case isPyStart(line):
		if strings.Contains(line, "Exception Group Traceback") {
			return stPyGroup
		}
		return stPy
	case stacktrace.IsPHPFatal(line):
		return stPHP
	case stacktrace.IsDartUnhandled(line):
		return stDart
	case isNodePosition(line):
		return stNodePre
	case isRubyHeader(line):
		return stRuby
	}
	return stPlain
}

// hasLevelWord reports whether one of the first words of line is a log level that
// may head a stack trace (warning and worse): "ERROR", "[error]", "level=error",
// "SEVERE:", "ERROR:root:msg" (Python's default format), "E0102" (klog).
func hasLevelWord(line string) bool {
	i := 0
	for w := 0; w < 8; w++ {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i >= len(line) {
			return false
		}
		s := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		word := line[s:i]
		if w == 0 && len(word) == 5 && (word[0] == 'E' || word[0] == 'F' || word[0] == 'W') && allDigits(word[1:]) {
			return true
		}
		if w == 0 && (word == "fail:" || word == "crit:" || word == "warn:") {
			return true // .NET's console logger
		}
		if len(word) > 6 && word[:6] == "level=" {
			word = word[6:]
			if len(word) > 1 && word[0] == '"' {
				word = word[1:]
			}
		}
		a, b := 0, len(word)
		for a < b && isLevelPunct(word[a]) {
			a++
		}
		for b > a && isLevelPunct(word[b-1]) {
			b--
		}
		word = word[a:b]
		if c := strings.IndexByte(word, ':'); c > 0 {
			word = word[:c] // Python's default format: "ERROR:root:message"
		}
		if isWarnOrWorse(word) {
			return true
		}
	}
	return false
}

func isLevelPunct(c byte) bool {
	switch c {
	case '[', ']', '(', ')', ':', ',', '|', '<', '>', '"':
		return true
	}
	return false
}

// isWarnOrWorse reports whether word names a level of warning or worse, in upper,
// lower or capitalised case.
func isWarnOrWorse(word string) bool {
	if len(word) < 3 || len(word) > 8 {
		return false
	}
	for _, l := range [...]string{"ERROR", "ERR", "SEVERE", "FATAL", "CRITICAL", "CRIT", "PANIC", "EMERG", "ALERT", "WARN", "WARNING"} {
		if len(l) == len(word) && strings.EqualFold(l, word) && (word[1] >= 'a') == (word[len(word)-1] >= 'a') {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// isJULDate matches the first line of a java.util.logging SimpleFormatter record:
// "Dec 06, 2026 9:17:34 AM com.shop.Orders charge".
func isJULDate(line string) bool {
	if len(line) < 22 || !isUpperASCII(line[0]) || line[3] != ' ' {
		return false
	}
	rest := line[4:]
	c := strings.Index(rest, ", ")
	if c < 1 || c > 2 || !allDigits(rest[:c]) {
		return false
	}
	rest = rest[c+2:]
	if len(rest) < 5 || !allDigits(rest[:4]) || rest[4] != ' ' {
		return false
	}
	rest = rest[5:]
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 || strings.Count(rest[:sp], ":") != 2 {
		return false
	}
	rest = rest[sp+1:]
	return strings.HasPrefix(rest, "AM ") || strings.HasPrefix(rest, "PM ")
}

func isUpperASCII(c byte) bool { return 'A' <= c && c <= 'Z' }

// julLevel returns the level of a java.util.logging message line "SEVERE: msg", or "".
func julLevel(line string) string {
	c := strings.IndexByte(line, ':')
	if c <= 0 || c+1 < len(line) && line[c+1] != ' ' {
		return ""
	}
	switch l := line[:c]; l {
	case "SEVERE", "WARNING", "INFO", "CONFIG", "FINE", "FINER", "FINEST":
		return l
	}
	return ""
}

// isNestedIs reports whether line ends a message continued by its cause on the next
// line, as java.rmi.RemoteException and older Spring exceptions print:
// "msg; nested exception is:".
func isNestedIs(line string) bool {
	return strings.HasSuffix(trimSpace(line), "nested exception is:")
}

// looksLikeExceptionLine matches the first line of a JVM exception: a class name,
// possibly qualified, alone or followed by ": message".
func looksLikeExceptionLine(line string) bool {
	i := 0
	for i < len(line) {
		c := line[i]
		if !(c == '.' || c == '$' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			break
		}
		i++
	}
	if i == 0 || i < len(line) && line[i] != ':' && line[i] != '\r' || i+1 < len(line) && line[i] == ':' && line[i+1] != ' ' {
		return false
	}
	name := line[:i]
	return strings.Contains(name, "Exception") || strings.Contains(name, "Error") ||
		strings.Contains(name, "Throwable") || strings.Contains(name, "Fault")
}

// isNodeTrailer matches the version line Node prints after an uncaught error:
// "Node.js v20.11.1".
func isNodeTrailer(line string) bool {
	return strings.HasPrefix(line, "Node.js v") && len(line) > 9 && line[9] >= '0' && line[9] <= '9'
}

// isNodePosition matches the first line Node prints for an uncaught error: the
// throwing source position, "/app/server.js:42" or "file:///app/x.mjs:7".
func isNodePosition(line string) bool {
	if n := len(line); n < 6 || line[n-1] < '0' || line[n-1] > '9' {
		return false
	}
	c := strings.LastIndexByte(line, ':')
	if c <= 0 || !allDigits(line[c+1:]) || strings.ContainsAny(line, " \t") {
		return false
	}
	path := line[:c]
	for _, ext := range []string{".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"} {
		if strings.HasSuffix(path, ext) {
			return path[0] == '/' || strings.HasPrefix(path, "file://") || strings.HasPrefix(path, "node:") ||
				len(path) > 2 && path[1] == ':'
		}
	}
	return false
}

// isRubyHeader matches the first line of a Ruby exception as the interpreter prints
// it: "app.rb:14:in `charge': message (Type)" or, from Ruby 3.4, "app.rb:14:in
// 'Object#charge': message (Type)".
func isRubyHeader(line string) bool {
	// The path has no space: the first space follows ":in".
	i := strings.IndexByte(line, ' ') - 3
	if i <= 0 || i+5 >= len(line) || line[i:i+4] != ":in " {
		return false
	}
	c := strings.LastIndexByte(line[:i], ':')
	if c <= 0 || !allDigits(line[c+1:i]) || strings.ContainsAny(line[:c], " \t") {
		return false
	}
	q := line[i+4]
	if q != '`' && q != '\'' {
		return false
	}
	return strings.Contains(line[i+5:], "': ")
}

// isHashFrame matches a numbered frame "#0 /app/x.php(10): f()" (PHP) or
// "#0      main (file:///app/x.dart:3:3)" (Dart), and PHP's "#2 {main}".
func isHashFrame(t string) bool {
	if len(t) < 3 || t[0] != '#' {
		return false
	}
	i := 1
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	return i > 1 && i < len(t) && t[i] == ' '
}

// isCrashHeader matches the first line of a crash whose frames come next: a JVM
// uncaught exception ("Exception in thread \"main\" java.lang.X: msg") or a .NET
// unhandled one ("Unhandled exception. System.X: msg").
func isCrashHeader(line string) bool {
	return strings.Contains(line, "Exception in thread \"") || strings.Contains(line, "Unhandled exception. ") ||
		strings.Contains(line, "Unhandled Exception: ")
}

// isGoFuncName matches a bare Go function name as pkg/errors prints its stack:
// "main.load", "github.com/acme/shop/cart.(*Cart).Add".
func isGoFuncName(line string) bool {
	if len(line) < 3 || isIndented(line) || strings.IndexByte(line, '.') <= 0 {
		return false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !(c == '.' || c == '/' || c == '_' || c == '-' || c == '(' || c == ')' || c == '*' || c == '[' || c == ']' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isRubyFrame matches a Ruby backtrace line without a message, bare or indented:
// "app/controllers/users_controller.rb:8:in `show'", "/app/x.rb:3:in 'Foo#bar'".
func isRubyFrame(line string) bool {
	t := trimSpace(line)
	if len(t) < 8 || t[len(t)-1] != '\'' {
		return false
	}
	i := strings.Index(t, ":in ")
	if i <= 0 || i+5 >= len(t) || (t[i+4] != '`' && t[i+4] != '\'') || t[len(t)-1] != '\'' {
		return false
	}
	c := strings.LastIndexByte(t[:i], ':')
	return c > 0 && allDigits(t[c+1:i]) && !strings.ContainsAny(t[:c], " \t") && strings.Contains(t[:c], ".rb")
}

// continuesMessage reports whether line may continue an exception's message: a
// non-blank line at column 0 that begins no trace and has no level of its own.
func continuesMessage(line string) bool {
	return !isBlank(line) && !isIndented(line) && traceStart(line) == stPlain && !hasLevelWord(line) &&
		!isCrashHeader(line) && !isJSON(line)
}

// isDotnetConsoleHeader matches the first line of a record of .NET's console logger:
// "fail: Shop.Orders[0]", "crit: …", "warn: …", "info: …", "dbug: …", "trce: …".
func isDotnetConsoleHeader(line string) bool {
	if len(line) < 7 || line[4] != ':' || line[5] != ' ' {
		return false
	}
	switch line[:4] {
	case "fail", "crit", "warn", "info", "dbug", "trce":
		return true
	}
	return false
}
