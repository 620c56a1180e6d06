// Package multiline joins the lines of one event — a stack trace, a record spanning
// several lines — into one record. The Joiner is pure and stateful: it is fed lines
// and returns the records they complete, with no clock and no I/O, so that its user
// decides when a pending record has waited long enough (Config.FlushAfter).
package multiline

import (
	"github.com/outrider-dev/outrider/processors/stacktrace"

	"fmt"
	"regexp"
	"strings"
)

// Record is a joined record: its lines joined with '\n', and how many input lines it
// consumed. Records come out in input order and every input line is in exactly one
// record, so a user that tracks a position per line can map each record to the input.
type Record struct {
	Text  string
	Lines int
}

type state uint8

const (
	stNone      state = iota // nothing pending
	stPlain                  // ordinary lines pending (they may head a stack trace)
	stHead2                  // a level header and a line that may be its exception's first
	stGo                     // a Go panic or goroutine dump
	stJava                   // a Java, .NET or JavaScript exception
	stNodePre                // Node's uncaught error preamble: source position, excerpt, caret
	stNodeProps              // util.inspect's property block after a frame "at … {"
	stNodeTail               // after the property block: only "Node.js vNN" continues
	stPy                     // a Python traceback, before its exception line
	stPyAfter                // after the exception line of a Python traceback
	stPyChain                // after "During handling of the above exception…"
	stPyGroup                // a Python exception group traceback ("  + Exception Group …")
	stRuby                   // a Ruby exception with "from" lines
	stPHP                    // a PHP "Uncaught" fatal error
	stDart                   // a Dart "Unhandled exception:"
	stDone                   // a trace that nothing more continues
	stStart                  // Start mode: a record begun by the start pattern is pending
)

// headLines bounds the lines an exception's header and message may take before the
// frame that confirms them; past it they are emitted each on its own.
const headLines = 4

// preambleLines bounds the lines Node's and Dart's preambles may take before the first
// frame; past it the lines were not a crash and are emitted each on its own.
const preambleLines = 12

// Joiner joins lines into records. It is not safe for concurrent use.
type Joiner struct {
	start    *regexp.Regexp
	stack    bool
	maxLines int
	maxBytes int

	state  state
	lines  []string // lines of the pending record
	size   int      // bytes of the pending record joined
	blanks []string // blank lines held after the pending record: kept if it continues
	out    []Record

	header bool // the pending record's header has a level: it may head a trace
	hdrSet bool // header is known; it is computed when first needed
	heads  int  // lines of that header: 1, or 2 for java.util.logging's date and message
	jul    bool // the pending line is a java.util.logging date line
	framed bool // a frame was seen (Dart), or how deep the property block is (Node)
	depth  int
}

// New returns a Joiner for cfg; zero fields take their defaults.
func New(cfg Config) (*Joiner, error) {
	cfg.ApplyDefaults()
	j := &Joiner{
		stack:    *cfg.StackTraces,
		maxLines: cfg.MaxLines,
		maxBytes: int(cfg.MaxBytes),
		heads:    1,
	}
	if cfg.Start != "" {
		re, err := regexp.Compile(cfg.Start)
		if err != nil {
			return nil, fmt.Errorf("multiline start: invalid regular expression: %w", err)
		}
		j.start = re
	}
	return j, nil
}

// Add feeds the next line (without its newline) and returns the records it completed,
// oldest first. The returned slice is only valid until the next call.
func (j *Joiner) Add(line string) []Record {
	j.out = j.out[:0]
	j.add(line)
	return j.out
}

func (j *Joiner) add(line string) {
	switch {
	case j.start != nil && !j.stack:
		j.addStart(line)
	case j.start != nil:
		j.addStartStack(line)
	case j.stack:
		j.addStack(line)
	default:
		j.emit(line, 1)
	}
}

// Flush returns the pending record (and any blank lines held after it), leaving the
// Joiner empty. The returned slice is only valid until the next call.
func (j *Joiner) Flush() []Record {
	j.out = j.out[:0]
	j.flush()
	return j.out
}

// Pending reports whether lines are held waiting for a continuation.
func (j *Joiner) Pending() bool {
	return len(j.lines) > 0 || len(j.blanks) > 0
}

// Reset drops whatever is pending.
func (j *Joiner) Reset() {
	clear(j.lines)
	clear(j.blanks)
	j.lines, j.blanks = j.lines[:0], j.blanks[:0]
	j.size = 0
	j.state = stNone
	j.header, j.hdrSet, j.jul, j.framed, j.depth, j.heads = false, false, false, false, 0, 1
}

// addStart is Start mode without the built-in stack traces: the pattern alone decides.
func (j *Joiner) addStart(line string) {
	switch {
	case isJSON(line):
		j.flush()
		j.emit(line, 1)
	case len(j.lines) == 0 || j.start.MatchString(line):
		j.flush()
		j.begin(line, stStart)
	default:
		j.extend(line)
	}
}

// addStartStack is Start mode with the built-in stack traces. In order: a line that
// continues the stack trace pending, or a trace under a logger's header line, is
// joined to it (even when it matches Start); a line that begins a stack trace (a crash
// without a logger's header) begins a record in that trace's state; a line matching
// Start begins a record; any other line continues the pending record.
func (j *Joiner) addStartStack(line string) {
	if isJSON(line) {
		j.flush()
		j.emit(line, 1)
		return
	}
	ts := traceStart(line)
	if len(j.lines) == 0 {
		j.beginStart(line, ts)
		return
	}
	if j.state != stStart && j.state != stPlain && j.state != stHead2 {
		if j.continueTrace(line) {
			return
		}
	} else if next, ok := j.headed(line, ts); ok {
		j.state = next
		j.extend(line)
		return
	}
	if ts != stPlain || isCrashHeader(line) || !isBlank(line) && j.start.MatchString(line) {
		j.flush()
		j.beginStart(line, ts)
		return
	}
	j.state = stStart
	j.extend(line)
}

// beginStart begins a record with line in Start mode: in the state of the stack trace
// it begins (ts), or else as a record the start pattern began.
func (j *Joiner) beginStart(line string, ts state) {
	if ts != stPlain || isCrashHeader(line) || isBlank(line) || !j.start.MatchString(line) {
		j.beginAs(line, ts)
		return
	}
	j.begin(line, stStart)
	j.jul = isJULDate(line)
}

func (j *Joiner) addStack(line string) {
	if isJSON(line) {
		j.flush()
		j.emit(line, 1)
		return
	}
	switch j.state {
	case stNone:
		j.beginStack(line)
	case stPlain, stHead2:
		ts := traceStart(line)
		if next, ok := j.headed(line, ts); ok {
			j.state = next
			j.extend(line)
			return
		}
		if j.state == stHead2 {
			j.replay(line)
			return
		}
		j.flush()
		j.beginAs(line, ts)
	default:
		if j.continueTrace(line) {
			return
		}
		if (j.state == stNodePre || j.state == stDart && !j.framed) && len(j.lines) > 1 {
			j.replay(line)
			return
		}
		j.flush()
		j.beginStack(line)
	}
}

// continueTrace joins line to the pending stack trace when it continues it; a blank
// line is held in case the trace goes on after it.
func (j *Joiner) continueTrace(line string) bool {
	if isBlank(line) {
		j.hold(line)
		return true
	}
	if next, ok := j.continues(line); ok {
		j.state = next
		j.extend(line)
		return true
	}
	return false
}

// hold keeps a blank line after the pending record, in case the record continues.
func (j *Joiner) hold(line string) {
	if j.fits(line) {
		j.blanks = append(j.blanks, line)
		return
	}
	j.flush()
	j.emit(line, 1)
}

// replay undoes a guess: the pending lines did not start a stack trace after all. The
// first is emitted on its own and the others, then line, are fed again.
func (j *Joiner) replay(line string) {
	pend := make([]string, 0, len(j.lines)+len(j.blanks)+1)
	pend = append(pend, j.lines...)
	pend = append(pend, j.blanks...)
	pend = append(pend, line)
	j.Reset()
	j.emit(pend[0], 1)
	for _, l := range pend[1:] {
		j.add(l)
	}
}

// headed reports whether line continues the ordinary lines pending, turning them into
// the header of a stack trace, and the state after it.
func (j *Joiner) headed(line string, ts state) (state, bool) {
	last := j.lines[len(j.lines)-1]
	switch {
	case isJavaFrame(line):
		return stJava, true
	case stacktrace.IsGoroutineHeader(line):
		return stGo, true
	case trimSpace(line) == "Stack trace:" && stacktrace.PHPExceptionHead(last) >= 0:
		// PHP's Throwable::__toString as an application logs it (error_log("failed: "
		// . $e)): "… RuntimeException: msg in /app/x.php:12", then "Stack trace:".
		return stPHP, true
	case isNestedIs(last) && isIndented(line):
		// java.rmi's "msg; nested exception is:" then the cause on the next line.
		return j.state, true
	case strings.HasPrefix(trimSpace(line), "---> ") && j.state != stStart:
		// .NET: "System.X: msg" then " ---> System.Y: inner".
		return stJava, true
	case isIndented(line) && !isBlank(line) && isDotnetConsoleHeader(j.lines[0]):
		// Microsoft.Extensions.Logging's console format: "fail: Category[0]" then the
		// message, exception and frames indented by six spaces.
		return j.state, true
	case isRubyFrame(line) && (isIndented(line) || len(j.lines) == j.heads && j.hasHeader()):
		// Rails' "NoMethodError (msg):" then indented frames; Logger's header then
		// bare "app.rb:10:in 'm'" frames.
		return stRuby, true
	case j.state == stHead2:
		if stacktrace.IsGoFileLine(line) && isGoFuncName(last) {
			return stGo, true // pkg/errors' "%+v": "main.load" then "\t/app/load.go:14"
		}
		if len(j.lines) < headLines && continuesMessage(line) {
			return stHead2, true
		}
		return stNone, false
	case j.state == stPlain && len(j.lines) == 1 && looksLikeExceptionLine(last) && continuesMessage(line):
		// An exception whose message has several lines: confirmed by a frame.
		return stHead2, true
	case j.jul && len(j.lines) == 1 && julLevel(line) != "":
		j.jul, j.heads, j.hdrSet = false, 2, true
		j.header = julLevel(line) == "SEVERE" || julLevel(line) == "WARNING"
		return j.state, true
	case len(j.lines) != j.heads && j.state != stStart:
		return stNone, false
	}
	// A trace may follow a logger's header line with a level.
	switch ts {
	case stPy, stPyGroup, stPHP, stDart, stNodePre, stRuby:
		if j.hasHeader() {
			return ts, true
		}
	case stPlain:
		if (j.state == stPlain || j.state == stStart) && !isBlank(line) && !isIndented(line) &&
			(looksLikeExceptionLine(line) || isGoFuncName(line)) && j.hasHeader() {
			return stHead2, true
		}
	}
	return stNone, false
}

// hasHeader reports whether the pending record's first line has a level of warning or
// worse, computing it once.
func (j *Joiner) hasHeader() bool {
	if !j.hdrSet {
		j.header, j.hdrSet = hasLevelWord(j.lines[0]), true
	}
	return j.header
}

// continues reports whether line continues the pending stack trace, and the state
// after it.
func (j *Joiner) continues(line string) (state, bool) {
	last := j.lines[len(j.lines)-1]
	if isNestedIs(last) && isIndented(line) {
		return j.state, true
	}
	switch j.state {
	case stGo:
		if goContinues(line) {
			return stGo, true
		}
	case stJava:
		if isNodeTrailer(line) {
			return stDone, true
		}
		if javaContinues(line) {
			if isJavaFrame(line) && strings.HasSuffix(trimSpace(line), " {") {
				j.depth = 1
				return stNodeProps, true
			}
			return stJava, true
		}
	case stNodePre:
		if isJavaFrame(line) {
			return stJava, true
		}
		if len(j.lines)+len(j.blanks) < preambleLines {
			return stNodePre, true
		}
	case stNodeProps:
		t := trimSpace(line)
		if strings.HasPrefix(t, "}") {
			j.depth--
		}
		if strings.HasSuffix(t, "{") || strings.HasSuffix(t, "[") {
			j.depth++
		} else if strings.HasPrefix(t, "]") {
			j.depth--
		}
		if j.depth <= 0 {
			return stNodeTail, true
		}
		return stNodeProps, true
	case stNodeTail:
		if isNodeTrailer(line) {
			return stDone, true
		}
	case stPy:
		if isIndented(line) {
			return stPy, true
		}
		// The first line back at column 0 is the exception: "ValueError: msg".
		return stPyAfter, true
	case stPyAfter, stPyGroup:
		if isPyChain(line) {
			return stPyChain, true
		}
		if j.state == stPyGroup && isIndented(line) {
			return stPyGroup, true
		}
	case stPyChain:
		if isPyStart(line) {
			return traceStart(line), true
		}
	case stRuby:
		t := trimSpace(line)
		if strings.HasPrefix(t, "from ") || isIndented(line) || isRubyHeader(line) || isRubyFrame(line) {
			return stRuby, true
		}
	case stPHP:
		t := trimSpace(line)
		switch {
		case strings.HasPrefix(t, "thrown in "):
			return stDone, true
		case t == "Stack trace:", strings.HasPrefix(t, "Next "), isHashFrame(t):
			return stPHP, true
		}
	case stDart:
		t := trimSpace(line)
		if isHashFrame(t) || t == "<asynchronous suspension>" {
			j.framed = true
			return stDart, true
		}
		if !j.framed && len(j.lines)+len(j.blanks) < preambleLines {
			return stDart, true
		}
	}
	return stNone, false
}

// beginStack starts a record with line in stack trace mode.
func (j *Joiner) beginStack(line string) {
	if isBlank(line) {
		j.emit(line, 1)
		return
	}
	j.beginAs(line, traceStart(line))
}

// beginAs starts a record with line, which begins a record in state s.
func (j *Joiner) beginAs(line string, s state) {
	if isBlank(line) {
		j.emit(line, 1)
		return
	}
	j.begin(line, s)
	if s == stPlain {
		j.jul = isJULDate(line)
	}
}

func (j *Joiner) begin(line string, s state) {
	j.lines = append(j.lines, line)
	j.size = len(line)
	j.state = s
}

// fits reports whether the held blank lines and line can join the pending record
// without breaking max_lines or max_bytes.
func (j *Joiner) fits(line string) bool {
	n := len(j.lines) + len(j.blanks) + 1
	size := j.size + len(line) + 1
	for _, b := range j.blanks {
		size += len(b) + 1
	}
	return n <= j.maxLines && size <= j.maxBytes
}

// extend adds the held blank lines and line to the pending record, or, when that would
// break a limit, emits the pending record and starts the next one with line in the
// same state.
func (j *Joiner) extend(line string) {
	if j.fits(line) {
		for _, b := range j.blanks {
			j.lines = append(j.lines, b)
			j.size += len(b) + 1
		}
		clear(j.blanks)
		j.blanks = j.blanks[:0]
		j.lines = append(j.lines, line)
		j.size += len(line) + 1
		return
	}
	s := j.state
	j.flush()
	j.begin(line, s)
}

// flush emits the pending record and the blank lines held after it, each on its own.
// Lines held only on the guess that a stack trace follows (a header and a message that
// no frame confirmed, a preamble without frames) are emitted each on its own.
func (j *Joiner) flush() {
	if j.start == nil && len(j.lines) > 1 &&
		(j.state == stHead2 || j.state == stNodePre || j.state == stDart && !j.framed) {
		for _, l := range j.lines {
			j.emit(l, 1)
		}
	} else if len(j.lines) > 0 {
		j.emit(j.joined(), len(j.lines))
	}
	for _, b := range j.blanks {
		j.emit(b, 1)
	}
	j.Reset()
}

func (j *Joiner) joined() string {
	if len(j.lines) == 1 {
		return j.lines[0]
	}
	var b strings.Builder
	b.Grow(j.size)
	for i, l := range j.lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return b.String()
}

func (j *Joiner) emit(text string, lines int) {
	j.out = append(j.out, Record{Text: text, Lines: lines})
}
