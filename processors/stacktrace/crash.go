package stacktrace

import "strings"

// Crash says what kind of crash a record without a log level is.
type Crash uint8

// The kinds of crash Classify tells apart.
const (
	// NoCrash: the text holds no stack trace.
	NoCrash Crash = iota
	// Uncaught is a stack trace printed without a level: an uncaught exception (Java
	// "Exception in thread", a Python traceback, Node's uncaught error, Ruby, .NET
	// "Unhandled exception.", Dart) or an exception printed to stderr.
	Uncaught
	// Fatal is a crash the runtime itself reports as fatal: a Go panic, "fatal error:"
	// or fatal signal with its goroutine dump, and PHP's "Fatal error: Uncaught".
	Fatal
)

// Classify reports whether text, a record that carries no level of its own, is crash
// output. It looks for a stack trace Parse can read, so a single line is never a crash.
func Classify(text string) Crash {
	if strings.IndexByte(text, '\n') < 0 {
		return NoCrash
	}
	tr, ok := Parse(text)
	if !ok {
		return NoCrash
	}
	switch tr.Language {
	case LangGo:
		first := text
		if i := strings.IndexByte(first, '\n'); i >= 0 {
			first = first[:i]
		}
		if IndexWord(first, "panic: ") >= 0 || IndexWord(first, "fatal error: ") >= 0 ||
			strings.HasPrefix(first, "SIG") || IsGoroutineHeader(first) {
			return Fatal
		}
	case LangPHP:
		if first, _, _ := strings.Cut(text, "\n"); IsPHPFatal(first) {
			return Fatal
		}
	}
	return Uncaught
}
