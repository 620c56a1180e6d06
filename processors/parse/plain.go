package parse

import (
	"strings"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/correlate"
	"github.com/outrider-dev/outrider/processors/stacktrace"
)

// levelWords is how many leading words of a plain line are searched for a level.
const levelWords = 8

// parsePlain applies the plain-text heuristics described in the package
// documentation.
func (p *parser) parsePlain(line string, r *pipeline.Record) {
	var sl slots
	p.scanKeyValues(line, &sl)
	x := p.resolve(line, &sl, textValues, r)
	if x.found&(1<<kindLevel) == 0 {
		if l := plainLevel(line); l != pipeline.LevelUnknown {
			r.Level = l
		} else if l := p.crashLevel(line); l != pipeline.LevelUnknown {
			r.Level = l
		}
	}
	if p.time.format == timeAuto || p.time.format == timeRFC3339 {
		if t, ok := leadingTime(line); ok {
			r.Time = t
		}
	}
	if x.trace == "" && x.tpTrace == "" {
		x.tpTrace, x.tpSpan, _ = correlate.FindTraceparent(line)
	}
	x.apply(r)
}

// scanKeyValues records in sl the values of key=value tokens anywhere in line whose
// key is one of the field names. A key is the run of letters, digits and "_.-@"
// before '='; a value is quoted, or runs to a space or one of ,;)]}"'<>.
func (p *parser) scanKeyValues(line string, sl *slots) {
	fs := &p.fields
	for off := 0; off < len(line); {
		k := strings.IndexByte(line[off:], '=')
		if k < 0 {
			return
		}
		eq := off + k
		off = eq + 1
		ks := eq
		for ks > 0 && isKeyByte(line[ks-1]) {
			ks--
		}
		m := fs.match(line[ks:eq], fs.all)
		if m == 0 {
			continue
		}
		vs, ve := eq+1, eq+1
		if ve < len(line) && line[ve] == '"' {
			end, ok := scanQuoted(line, ve)
			if !ok {
				continue
			}
			ve = end
		} else {
			for ve < len(line) && !isValueStop(line[ve]) {
				ve++
			}
		}
		fs.set(sl, m, 0, vs, ve, false)
		off = ve
	}
}

func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == '@'
}

func isValueStop(c byte) bool {
	switch c {
	case ',', ';', ')', ']', '}', '"', '\'', '<', '>':
		return true
	}
	return c <= ' '
}

// plainLevel finds a level word in the first levelWords words of line.
func plainLevel(line string) pipeline.Level {
	i := 0
	for w := 0; w < levelWords; w++ {
		for i < len(line) && line[i] <= ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		start := i
		for i < len(line) && line[i] > ' ' {
			i++
		}
		word := line[start:i]
		if w == 0 {
			if l := klogLevel(word); l != pipeline.LevelUnknown {
				return l
			}
			if l := dotnetConsoleLevel(word); l != pipeline.LevelUnknown {
				return l
			}
		}
		if l := levelInWord(word); l != pipeline.LevelUnknown {
			return l
		}
	}
	return pipeline.LevelUnknown
}

// dotnetConsoleLevel reads the level of .NET's console logger: "fail:", "crit:",
// "warn:", "info:", "dbug:", "trce:".
func dotnetConsoleLevel(word string) pipeline.Level {
	switch word {
	case "fail:":
		return pipeline.LevelError
	case "crit:":
		return pipeline.LevelFatal
	case "warn:":
		return pipeline.LevelWarn
	case "info:":
		return pipeline.LevelInfo
	case "dbug:":
		return pipeline.LevelDebug
	case "trce:":
		return pipeline.LevelTrace
	}
	return pipeline.LevelUnknown
}

// klogLevel reads the level letter of a klog/glog header such as "E0102".
func klogLevel(word string) pipeline.Level {
	if len(word) != 5 || digits(word[1:]) < 0 {
		return pipeline.LevelUnknown
	}
	switch word[0] {
	case 'I':
		return pipeline.LevelInfo
	case 'W':
		return pipeline.LevelWarn
	case 'E':
		return pipeline.LevelError
	case 'F':
		return pipeline.LevelFatal
	}
	return pipeline.LevelUnknown
}

// levelInWord looks at each run of letters in word that is not glued to a digit:
// an upper-case run of 3 or more letters, any run enclosed in [ ], or a capitalised
// run followed by ':' is a level if parseLevel knows it.
func levelInWord(word string) pipeline.Level {
	for j := 0; j < len(word); {
		if !isLetter(word[j]) {
			j++
			continue
		}
		rs := j
		for j < len(word) && isLetter(word[j]) {
			j++
		}
		run := word[rs:j]
		var before, after byte
		if rs > 0 {
			before = word[rs-1]
		}
		if j < len(word) {
			after = word[j]
		}
		if len(run) < 3 || len(run) > 12 || isDigit(before) || isDigit(after) {
			continue
		}
		upper, capitalised := letterCase(run)
		if !upper && !(before == '[' && after == ']') && !(capitalised && after == ':') {
			continue
		}
		if l := parseLevel(run); l != pipeline.LevelUnknown {
			return l
		}
	}
	return pipeline.LevelUnknown
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// letterCase reports whether run is all upper case, or upper case then lower case.
func letterCase(run string) (upper, capitalised bool) {
	upper = true
	rest := true
	for i := 0; i < len(run); i++ {
		if run[i] >= 'a' {
			upper = false
		} else if i > 0 {
			rest = false
		}
	}
	return upper, run[0] < 'a' && rest
}

// leadingTime parses a timestamp at the start of line, optionally after '[', that is
// followed by the end of the line or a byte other than a letter or digit.
func leadingTime(line string) (time.Time, bool) {
	s := line
	if len(s) > 0 && s[0] == '[' {
		s = s[1:]
	}
	t, n, ok := parseDateTimePrefix(s)
	if !ok || (n < len(s) && (isLetter(s[n]) || isDigit(s[n]))) {
		return time.Time{}, false
	}
	if !inRange(t) {
		return time.Time{}, false
	}
	return t, true
}

// parseLevel is pipeline.ParseLevel, plus java.util.logging's SEVERE (error).
func parseLevel(s string) pipeline.Level {
	if len(s) == 6 && strings.EqualFold(s, "severe") {
		return pipeline.LevelError
	}
	return pipeline.ParseLevel(s)
}

// crashLevel returns the level of a record without one that is crash output (see
// Config.CrashLevel), or LevelUnknown.
func (p *parser) crashLevel(text string) pipeline.Level {
	if p.crash == CrashLevelNone || strings.IndexByte(text, '\n') < 0 {
		return pipeline.LevelUnknown
	}
	c := stacktrace.Classify(text)
	switch {
	case c == stacktrace.NoCrash:
		return pipeline.LevelUnknown
	case p.crash == CrashLevelFatal, p.crash == CrashLevelAuto && c == stacktrace.Fatal:
		return pipeline.LevelFatal
	}
	return pipeline.LevelError
}
