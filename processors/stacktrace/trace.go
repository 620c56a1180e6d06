package stacktrace

import (
	"strings"
	"unicode/utf8"
)

// Bounds on what one parse keeps; see the package documentation.
const (
	// MaxFrames is the number of frames an exception or thread keeps: the newest ones.
	MaxFrames = 250
	// MaxExceptions is the number of exceptions a trace keeps.
	MaxExceptions = 10
	// MaxThreads is the number of other goroutines a Go dump keeps as threads.
	MaxThreads = 10
	// MaxValueBytes is the length an exception value is cut to (at a UTF-8 boundary).
	MaxValueBytes = 8192
)

// Language names used in Trace.Language.
const (
	LangGo     = "go"
	LangJava   = "java"
	LangPython = "python"
	LangNode   = "node"
	LangRuby   = "ruby"
	LangPHP    = "php"
	LangDotnet = "dotnet"
	LangDart   = "dart"
)

// Platform returns the Sentry platform of t's language: "csharp" for .NET, the
// language name otherwise ("go", "java", "python", "node", "ruby", "php", "dart"), and
// "other" for an empty Trace.
func (t Trace) Platform() string {
	switch t.Language {
	case LangDotnet:
		return "csharp"
	case LangGo, LangJava, LangPython, LangNode, LangRuby, LangPHP, LangDart:
		return t.Language
	}
	return "other"
}

// Frame is one stack frame, with Sentry's frame semantics.
type Frame struct {
	// Function is the function or method name, without its package or class
	// ("(*Server).handle", "charge", "<module>", "block in foo").
	Function string `json:"function,omitempty"`
	// Module is the package or class: a Go import path, a Java class, a Python module.
	Module string `json:"module,omitempty"`
	// Filename is the file as printed ("Payments.java", "/app/server.go", "app.rb").
	Filename string `json:"filename,omitempty"`
	// AbsPath is the file's absolute path, when the trace printed one.
	AbsPath string `json:"abs_path,omitempty"`
	// Lineno and Colno are 1-based; 0 means unknown.
	Lineno int `json:"lineno,omitempty"`
	Colno  int `json:"colno,omitempty"`
	// ContextLine is the source line, when the trace printed it (Python).
	ContextLine string `json:"context_line,omitempty"`
	// InApp reports whether the frame is application code rather than the language's
	// runtime, standard library or a dependency; it is a heuristic per language.
	InApp bool `json:"in_app"`
}

// Exception is one exception of a chain.
type Exception struct {
	// Type is the exception type ("IllegalStateException", "ValueError", "panic",
	// "runtime.Error"); it is never empty.
	Type string `json:"type"`
	// Value is the message, possibly several lines; it may be empty.
	Value string `json:"value,omitempty"`
	// Module is the type's package or module ("java.lang", "requests.exceptions").
	Module string `json:"module,omitempty"`
	// ThreadID is the goroutine number (Go) or the thread name (Java "Exception in
	// thread \"main\""), when the trace printed one.
	ThreadID string `json:"thread_id,omitempty"`
	// ExceptionID, ParentID and Source place the exception in the chain, as Sentry's
	// mechanism fields exception_id, parent_id and source: the outermost exception has
	// ExceptionID 0 and ParentID -1.
	ExceptionID int    `json:"exception_id"`
	ParentID    int    `json:"parent_id"`
	Source      string `json:"source,omitempty"`
	// IsExceptionGroup marks a Python exception group, whose sub-exceptions have
	// Sources "exceptions[i]" (Sentry's mechanism is_exception_group).
	IsExceptionGroup bool `json:"is_exception_group,omitempty"`
	// Frames are ordered oldest first (the crashing frame last).
	Frames []Frame `json:"frames"`
}

// Thread is another goroutine of a Go dump.
type Thread struct {
	// ID is the goroutine number.
	ID string `json:"id"`
	// State is what the goroutine was doing ("chan receive", "select, 2 minutes").
	State string `json:"state,omitempty"`
	// Frames are ordered oldest first.
	Frames []Frame `json:"frames"`
}

// Trace is the stack trace of one log record.
type Trace struct {
	// Language is one of LangGo, LangJava, LangPython, LangNode, LangRuby, LangPHP,
	// LangDotnet, LangDart.
	Language string `json:"language"`
	// Exceptions are in Sentry order: the root cause first, the outermost last. There
	// is at least one.
	Exceptions []Exception `json:"exceptions"`
	// Threads are the other goroutines of a Go dump.
	Threads []Thread `json:"threads,omitempty"`
}

// Parse detects the format of text and parses it. It returns false when text holds no
// stack trace in a format it knows.
func Parse(text string) (Trace, bool) {
	text = unwrapJSON(text)
	switch detect(text) {
	case LangGo:
		return parseGo(text)
	case LangJava:
		return parseJava(text)
	case LangPython:
		return parsePython(text)
	case LangNode:
		return parseNode(text)
	case LangRuby:
		return parseRuby(text)
	case LangPHP:
		return parsePHP(text)
	case LangDotnet:
		return parseDotnet(text)
	case LangDart:
		return parseDart(text)
	}
	return Trace{}, false
}

// ParsePHP parses an uncaught PHP exception ("PHP Fatal error:  Uncaught …").
func ParsePHP(text string) (Trace, bool) { return parsePHP(unwrapJSON(text)) }

// ParseDotnet parses a .NET exception (Exception.ToString, "Unhandled exception.").
func ParseDotnet(text string) (Trace, bool) { return parseDotnet(unwrapJSON(text)) }

// ParseDart parses an uncaught Dart exception ("Unhandled exception:" and "#N" frames).
func ParseDart(text string) (Trace, bool) { return parseDart(unwrapJSON(text)) }

// ParseGo parses a Go panic, fatal error or goroutine dump.
func ParseGo(text string) (Trace, bool) { return parseGo(unwrapJSON(text)) }

// ParseJava parses a JVM exception (Java, Kotlin, Scala) as Throwable.printStackTrace
// or logback prints it.
func ParseJava(text string) (Trace, bool) { return parseJava(unwrapJSON(text)) }

// ParsePython parses a Python traceback, with its chained exceptions.
func ParsePython(text string) (Trace, bool) { return parsePython(unwrapJSON(text)) }

// ParseNode parses a Node.js (V8) error stack.
func ParseNode(text string) (Trace, bool) { return parseNode(unwrapJSON(text)) }

// ParseRuby parses a Ruby exception with its backtrace.
func ParseRuby(text string) (Trace, bool) { return parseRuby(unwrapJSON(text)) }

// detect returns the language of the first line that only a stack trace of that
// language has, or "".
func detect(text string) string {
	r := lineReader{s: text}
	for {
		line, _, ok := r.next()
		if !ok {
			return ""
		}
		t := trimLeft(line)
		switch {
		case strings.Contains(line, pyTracebackMarker):
			return LangPython
		case IsGoroutineHeader(line), isGoFileLine(line):
			return LangGo
		case IsPHPFatal(line):
			return LangPHP
		case IsDartUnhandled(line):
			return LangDart
		case strings.Contains(line, dotnetUnhandled), strings.Contains(line, dotnetUnhandledOld),
			strings.HasPrefix(t, dotnetInner), strings.HasPrefix(t, dotnetEndInner):
			return LangDotnet
		case strings.HasPrefix(t, "#"):
			if _, ok := parseDartFrame(t); ok {
				return LangDart
			}
			if _, _, ok := parsePHPFrame(t); ok && strings.Contains(t, ".php(") {
				return LangPHP
			}
		case len(t) < len(line) && strings.HasPrefix(t, "at "):
			if IsDotnetFrame(t[3:]) {
				return LangDotnet
			}
			if _, ok := parseJavaFrame(t[3:]); ok {
				return LangJava
			}
			if _, ok := parseNodeFrame(t[3:]); ok {
				return LangNode
			}
		default:
			if _, _, ok := parseRubyLoc(strings.TrimPrefix(t, "from ")); ok {
				return LangRuby
			}
		}
	}
}

// lineReader walks the lines of s without allocating.
type lineReader struct {
	s   string
	pos int
}

// next returns the next line without its "\n" or "\r\n", the offset of the line in s,
// and false at the end.
func (r *lineReader) next() (line string, start int, ok bool) {
	if r.pos >= len(r.s) {
		return "", 0, false
	}
	start = r.pos
	i := strings.IndexByte(r.s[start:], '\n')
	if i < 0 {
		line = r.s[start:]
		r.pos = len(r.s)
	} else {
		line = r.s[start : start+i]
		r.pos = start + i + 1
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, start, true
}

// peek returns the line next would return, or "" at the end.
func (r *lineReader) peek() string {
	c := *r
	line, _, _ := c.next()
	return line
}

// node is an exception while it is parsed: its frames are in printed order and its
// place in the chain is an index in the parser's node slice.
type node struct {
	exc     Exception
	parent  int    // index of the enclosing exception, -1 for the outermost
	source  string // how it hangs off parent
	total   int    // frames seen, including those dropped beyond MaxFrames
	omitted int    // Java "... N more"
	level   int    // Java indentation level of the header
	// valStart and valEnd delimit the value in the input while it may still grow by
	// continuation lines; value is set instead when it is not one slice of the input.
	valStart, valEnd int
}

// addNewestFirst appends a frame of a trace printed newest first, keeping the first
// (newest) MaxFrames.
func (n *node) addNewestFirst(f Frame) {
	n.total++
	if len(n.exc.Frames) < MaxFrames {
		if n.exc.Frames == nil {
			n.exc.Frames = make([]Frame, 0, 16)
		}
		n.exc.Frames = append(n.exc.Frames, f)
	}
}

// truncated reports whether frames were dropped beyond MaxFrames.
func (n *node) truncated() bool { return n.total > len(n.exc.Frames) }

// build orders nodes for Sentry: depth first from the outermost exceptions, causes
// before suppressed ones, numbered from 0, at most MaxExceptions, then reversed so the
// root cause comes first. Frames are reversed to oldest first when newestFirst. It
// reports false when there is no exception.
func build(lang string, nodes []node, newestFirst bool) (Trace, bool) {
	if len(nodes) == 0 {
		return Trace{}, false
	}
	children := make([][]int, len(nodes))
	var roots []int
	for i := range nodes {
		p := nodes[i].parent
		if p < 0 || p >= len(nodes) || p == i {
			roots = append(roots, i)
			continue
		}
		children[p] = append(children[p], i)
	}
	ids := make([]int, len(nodes))
	for i := range ids {
		ids[i] = -1
	}
	out := make([]Exception, 0, min(len(nodes), MaxExceptions))
	var visit func(i, parentID int)
	visit = func(i, parentID int) {
		if len(out) == MaxExceptions || ids[i] >= 0 {
			return
		}
		ids[i] = len(out)
		e := nodes[i].exc
		e.ExceptionID = ids[i]
		e.ParentID = parentID
		if parentID >= 0 {
			e.Source = nodes[i].source
		}
		if e.Type == "" {
			e.Type = "Error"
		}
		e.Value = clipValue(e.Value)
		e.Frames = validFrames(e.Frames)
		if newestFirst {
			reverseFrames(e.Frames)
		}
		if e.Frames == nil {
			e.Frames = []Frame{}
		}
		out = append(out, e)
		for pass := 0; pass < 2; pass++ {
			for _, c := range children[i] {
				if isSuppressed(nodes[c].source) == (pass == 1) {
					visit(c, ids[i])
				}
			}
		}
	}
	for _, r := range roots {
		visit(r, -1)
	}
	if len(out) == 0 {
		return Trace{}, false
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return Trace{Language: lang, Exceptions: out}, true
}

// hasFrames reports whether any exception of t has a frame.
func hasFrames(t Trace) bool {
	for i := range t.Exceptions {
		if len(t.Exceptions[i].Frames) > 0 {
			return true
		}
	}
	return false
}

// finish builds the trace and requires at least one frame.
func finish(lang string, nodes []node, newestFirst bool) (Trace, bool) {
	t, ok := build(lang, nodes, newestFirst)
	if !ok || !hasFrames(t) {
		return Trace{}, false
	}
	return t, true
}

// validFrames drops, in place, frames that name neither a function nor a file (a Go
// function line "created by " with nothing after it).
func validFrames(frames []Frame) []Frame {
	out := frames[:0]
	for _, f := range frames {
		if f.Function != "" || f.Filename != "" || f.AbsPath != "" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func isSuppressed(source string) bool { return strings.HasPrefix(source, "suppressed") }

func reverseFrames(f []Frame) {
	for i, j := 0, len(f)-1; i < j; i, j = i+1, j-1 {
		f[i], f[j] = f[j], f[i]
	}
}

// clipValue trims surrounding blank space and cuts v to MaxValueBytes.
func clipValue(v string) string {
	v = strings.TrimSpace(v)
	if strings.IndexByte(v, '\r') >= 0 {
		v = strings.ReplaceAll(v, "\r\n", "\n")
	}
	if len(v) <= MaxValueBytes {
		return v
	}
	cut := MaxValueBytes
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

// trimLeft returns s without leading spaces and tabs.
func trimLeft(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

// isBlank reports whether s holds only spaces and tabs.
func isBlank(s string) bool { return len(trimLeft(s)) == 0 }

// indentCols measures the indentation of line, a tab counting as 4 columns.
func indentCols(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case ' ':
			n++
		case '\t':
			n += 4
		default:
			return n
		}
	}
	return n
}

// atoi parses a non-negative decimal of at most 9 digits; ok is false otherwise.
func atoi(s string) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// isAbs reports whether path is absolute on Unix or Windows.
func isAbs(path string) bool {
	if len(path) > 0 && (path[0] == '/' || path[0] == '\\') {
		return true
	}
	return len(path) >= 3 && path[1] == ':' && (path[2] == '/' || path[2] == '\\') &&
		(path[0]|0x20 >= 'a' && path[0]|0x20 <= 'z')
}

// stripLogPrefix removes leading tokens a log layout puts before a message: timestamps,
// levels, bracketed fields ("[main]", "[2024-05-01 …]"), separators and logfmt level
// fields. It is used where no better anchor exists.
func stripLogPrefix(s string) string {
	if i := strings.Index(s, " -- "); i >= 0 && i < 80 {
		// Ruby Logger: "E, [2024-05-01T10:00:00 #1] ERROR -- progname: message".
		rest := s[i+4:]
		if j := strings.Index(rest, ": "); j >= 0 && strings.IndexByte(rest[:j], ' ') < 0 {
			return rest[j+2:]
		}
		return trimLeft(strings.TrimPrefix(rest, ":"))
	}
	for {
		s = trimLeft(s)
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			return s
		}
		tok := s[:end]
		if tok[0] == '[' {
			close := strings.IndexByte(s, ']')
			if close < 0 {
				return s
			}
			s = s[close+1:]
			continue
		}
		if isTimestampToken(tok) || isLevelToken(tok) || isCallerToken(tok) || tok == "-" || tok == "|" || tok == ":" {
			s = s[end:]
			continue
		}
		return s
	}
}

// isTimestampToken matches dates, times and numbers: "2024-05-01", "10:00:00.123",
// "2024-05-01T10:00:00Z", "1714557600".
func isTimestampToken(tok string) bool {
	if tok == "" || tok[0] < '0' || tok[0] > '9' {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= '0' && c <= '9') && strings.IndexByte("-:.,TZ+/", c) < 0 {
			return false
		}
	}
	return true
}

// isCallerToken matches the source position a logger prints ("app/main.go:33",
// "Main.java:12").
func isCallerToken(tok string) bool {
	c := strings.LastIndexByte(tok, ':')
	if c <= 0 || strings.IndexByte(tok[:c], '.') < 0 {
		return false
	}
	_, ok := atoi(tok[c+1:])
	return ok
}

// isLevelToken matches a log level, with an optional trailing colon, or a logfmt
// level field.
func isLevelToken(tok string) bool {
	tok = strings.TrimSuffix(tok, ":")
	if strings.HasPrefix(tok, "level=") {
		return true
	}
	switch strings.ToUpper(tok) {
	case "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERR", "ERROR", "FATAL",
		"CRITICAL", "CRIT", "SEVERE", "PANIC", "ALERT", "EMERG", "E", "F", "W", "E,", "F,":
		return true
	}
	return false
}

// isIdentByte reports whether c may appear in a Java, Python, Ruby or JavaScript
// identifier (ASCII part).
func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
