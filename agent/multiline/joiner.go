// Package multiline joins the lines of one event — a stack trace, a record spanning
// several lines — into one record. The Joiner is pure and stateful: it is fed lines
// and returns the records they complete, with no clock and no I/O, so that its user
// decides when a pending record has waited long enough (Config.FlushAfter).
package multiline

import (
	"github.com/outrider-dev/outrider/agent/stacktrace"

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
	stNone    state = iota // nothing pending
	stPlain                // one ordinary line pending (it may be an exception header)
	stGo                   // a Go panic or goroutine dump
	stJava                 // a Java, .NET or JavaScript exception
	stPy                   // a Python traceback, before its exception line
	stPyAfter              // after the exception line of a Python traceback
	stPyChain              // after "During handling of the above exception…"
	stStart                // Start mode: a record is pending
)

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
}

// New returns a Joiner for cfg; zero fields take their defaults.
func New(cfg Config) (*Joiner, error) {
	cfg.ApplyDefaults()
	j := &Joiner{
		stack:    *cfg.StackTraces,
		maxLines: cfg.MaxLines,
		maxBytes: int(cfg.MaxBytes),
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
	switch {
	case j.start != nil:
		j.addStart(line)
	case j.stack:
		j.addStack(line)
	default:
		j.emit(line, 1)
	}
	return j.out
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
}

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

func (j *Joiner) addStack(line string) {
	if isJSON(line) {
		j.flush()
		j.emit(line, 1)
		return
	}
	switch j.state {
	case stNone:
		j.beginStack(line)
	case stPlain:
		switch {
		case isJavaFrame(line):
			j.state = stJava
			j.extend(line)
		case stacktrace.IsGoroutineHeader(line):
			j.state = stGo
			j.extend(line)
		default:
			j.flush()
			j.beginStack(line)
		}
	default:
		if isBlank(line) {
			if j.fits(line) {
				j.blanks = append(j.blanks, line)
				return
			}
			j.flush()
			j.emit(line, 1)
			return
		}
		if next, ok := j.continues(line); ok {
			j.state = next
			j.extend(line)
			return
		}
		j.flush()
		j.beginStack(line)
	}
}

// continues reports whether line continues the pending stack trace, and the state
// after it.
func (j *Joiner) continues(line string) (state, bool) {
	switch j.state {
	case stGo:
		if goContinues(line) {
			return stGo, true
		}
	case stJava:
		if javaContinues(line) {
			return stJava, true
		}
	case stPy:
		if isIndented(line) {
			return stPy, true
		}
		// The first line back at column 0 is the exception: "ValueError: msg".
		return stPyAfter, true
	case stPyAfter:
		if isPyChain(line) {
			return stPyChain, true
		}
	case stPyChain:
		if isPyStart(line) {
			return stPy, true
		}
	}
	return stNone, false
}

// beginStack starts a record with line in stack trace mode.
func (j *Joiner) beginStack(line string) {
	switch {
	case isBlank(line):
		j.emit(line, 1)
	case isGoStart(line):
		j.begin(line, stGo)
	case isPyStart(line):
		j.begin(line, stPy)
	default:
		j.begin(line, stPlain)
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
func (j *Joiner) flush() {
	if len(j.lines) > 0 {
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
