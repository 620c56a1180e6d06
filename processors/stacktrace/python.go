package stacktrace

import (
	"strconv"
	"strings"
)

const (
	pyTracebackMarker = "Traceback (most recent call last):"
	pySepCause        = "The above exception was the direct cause of the following exception:"
	pySepContext      = "During handling of the above exception, another exception occurred:"
)

// Python chain sources, as Sentry's Python SDK names them.
const (
	pySourceCause   = "__cause__"
	pySourceContext = "__context__"
)

// pyChain is one chain of tracebacks at one exception-group depth: the top level, or
// one sub-exception of a group.
type pyChain struct {
	last      int // the exception printed last in this chain, -1 before the first
	state     int // pyNone, pyFrames, pyValue, pyAfter
	sep       string
	lastFrame bool // the previous line was a "File" line: the next one is its code
	group     int  // the group node this chain belongs to, -1 at the top level
	index     int  // its index in the group, -1 when unknown ("... more exceptions")
}

// pyMaxDepth bounds the nesting of exception groups that is told apart; deeper
// framing counts as this depth.
const pyMaxDepth = 32

const (
	pyNone   = iota // before the chain's first traceback
	pyFrames        // in "File" lines
	pyValue         // in the exception line and its continuation lines
	pyAfter         // after a blank line that ended the value
)

// parsePython parses a Python traceback: "Traceback (most recent call last):", "File"
// lines with their code lines, the exception line, chained tracebacks, and exception
// groups (PEP 654: "| " framed sub-exceptions).
func parsePython(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes  []node
		chains = []pyChain{{last: -1, group: -1, index: -1}}
		groups bool
	)
	chainAt := func(d int) *pyChain {
		for len(chains) <= d {
			chains = append(chains, pyChain{last: -1, group: -1, index: -1})
		}
		return &chains[d]
	}
	// closeChains ends the chains at depth d and deeper: their outermost exception
	// belongs to their group.
	closeChains := func(d int) {
		for i := len(chains) - 1; i >= d && i > 0; i-- {
			c := chains[i]
			if c.group >= 0 && c.last >= 0 && c.index >= 0 {
				nodes[c.last].parent = c.group
				nodes[c.last].source = "exceptions[" + strconv.Itoa(c.index) + "]"
				nodes[c.group].exc.IsExceptionGroup = true
			}
			chains = chains[:i]
		}
	}
	newNode := func(c *pyChain) bool {
		if !groups && len(nodes) == 2*MaxExceptions {
			// A plain chain prints oldest first: drop the oldest.
			copy(nodes, nodes[MaxExceptions:])
			nodes = nodes[:MaxExceptions]
			for i := range nodes {
				if nodes[i].parent >= 0 {
					nodes[i].parent -= MaxExceptions
				}
			}
			chains[0].last -= MaxExceptions
		}
		if len(nodes) == 4*MaxExceptions {
			return false
		}
		idx := len(nodes)
		nodes = append(nodes, node{parent: -1})
		if c.last >= 0 {
			nodes[c.last].parent = idx
			nodes[c.last].source = pySourceContext
			if c.sep == pySepCause {
				nodes[c.last].source = pySourceCause
			}
		}
		c.last, c.sep, c.lastFrame = idx, "", false
		return true
	}
	for {
		line, start, ok := r.next()
		if !ok {
			break
		}
		depth, inner, boundary, index := pyUnframe(line)
		if depth > 0 {
			depth = min(depth-1, pyMaxDepth)
			groups = true
		}
		if boundary {
			// "+-+---- 1 ----" starts sub-exception 1 of the group printed just above.
			closeChains(depth)
			if index >= 0 && depth > 0 {
				group := chainAt(depth - 1).last
				c := chainAt(depth)
				c.group, c.index = group, index
				if group < 0 {
					c.index = -1
				}
			}
			continue
		}
		if depth >= len(chains) {
			chainAt(depth)
		} else if depth < len(chains)-1 {
			closeChains(depth + 1)
		}
		c := &chains[depth]
		if i := strings.Index(inner, pyTracebackMarker); i >= 0 {
			if !newNode(c) {
				break
			}
			c.state = pyFrames
			continue
		}
		t := trimLeft(inner)
		indented := len(t) < len(inner)
		switch c.state {
		case pyNone:
			// A sub-exception of a group may be printed without a traceback.
			if depth > 0 && !indented && t != "" && newNode(c) {
				pyExceptionLine(&nodes[c.last], inner, start+len(line)-len(inner))
				c.state = pyValue
			}
		case pyFrames:
			switch {
			case t == "":
			case indented && strings.HasPrefix(t, "File \""):
				if f, ok := parsePyFrame(t); ok {
					nodes[c.last].addOldestFirst(f)
					c.lastFrame = true
					continue
				}
			case indented:
				if c.lastFrame && isPyCode(t) {
					fr := nodes[c.last].exc.Frames
					fr[len(fr)-1].ContextLine = strings.TrimRight(t, " \t")
				}
			default:
				pyExceptionLine(&nodes[c.last], inner, start+len(line)-len(inner))
				c.state = pyValue
			}
			c.lastFrame = false
		case pyValue:
			switch {
			case t == "":
				c.state = pyAfter
			case t == pySepCause || t == pySepContext:
				c.sep, c.state = t, pyAfter
			default:
				nodes[c.last].valEnd = start + len(line)
			}
		case pyAfter:
			if t == pySepCause || t == pySepContext {
				c.sep = t
			}
		}
	}
	closeChains(1)
	for i := range nodes {
		n := &nodes[i]
		if n.valEnd > n.valStart {
			n.exc.Value = pyJoinValue(text[n.valStart:n.valEnd])
		}
		if n.exc.Type == "" {
			n.exc.Type = "Traceback" // the exception line is missing
		}
		if len(n.exc.Frames) > MaxFrames {
			n.exc.Frames = n.exc.Frames[len(n.exc.Frames)-MaxFrames:]
		}
	}
	return finish(LangPython, nodes, false)
}

// pyJoinValue removes exception-group framing ("    | ") from the continuation lines of
// a value; a value without framing is returned as it is.
func pyJoinValue(v string) string {
	if strings.IndexByte(v, '\n') < 0 || !strings.Contains(v, "| ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	r := lineReader{s: v}
	first := true
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		if !first {
			b.WriteByte('\n')
			_, line, _, _ = pyUnframe(line)
		}
		first = false
		b.WriteString(line)
	}
	return b.String()
}

// pyUnframe removes PEP 654 exception-group framing from a line. depth is 0 for an
// unframed line and the framing depth otherwise ("  | " is 1, "    | " is 2, the
// top-level exception group being at depth 1); boundary
// reports a "+---- N ----" line, index is N-1 (-1 without a number).
func pyUnframe(line string) (depth int, inner string, boundary bool, index int) {
	s := 0
	for s < len(line) && line[s] == ' ' {
		s++
	}
	if s == len(line) {
		return 0, line, false, -1
	}
	switch line[s] {
	case '|':
		return s / 2, strings.TrimPrefix(line[s+1:], " "), false, -1
	case '+':
		if strings.HasPrefix(line[s:], "+ ") {
			return s / 2, line[s+2:], false, -1
		}
		k := s
		for strings.HasPrefix(line[k:], "+-+") {
			k += 2
		}
		if !strings.HasPrefix(line[k:], "+-") {
			return 0, line, false, -1
		}
		n, ok := atoi(strings.Trim(line[k+1:], "- "))
		if !ok || n == 0 {
			return k / 2, "", true, -1
		}
		return k / 2, "", true, n - 1
	}
	return 0, line, false, -1
}

// addOldestFirst appends a frame of a trace printed oldest first. It keeps at least
// the newest MaxFrames frames; the caller trims the rest at the end.
func (n *node) addOldestFirst(f Frame) {
	n.total++
	if len(n.exc.Frames) == 2*MaxFrames {
		copy(n.exc.Frames, n.exc.Frames[MaxFrames:])
		n.exc.Frames = n.exc.Frames[:MaxFrames]
	}
	if n.exc.Frames == nil {
		n.exc.Frames = make([]Frame, 0, 16)
	}
	n.exc.Frames = append(n.exc.Frames, f)
}

// pyExceptionLine reads "requests.exceptions.ConnectionError: msg" (also a bare
// "KeyboardInterrupt") into n; off is the offset of line in the text.
func pyExceptionLine(n *node, line string, off int) {
	i := 0
	for i < len(line) && (isIdentByte(line[i]) || line[i] == '.') {
		i++
	}
	name := line[:i]
	if name == "" || line[0] == '.' || line[0] >= '0' && line[0] <= '9' ||
		i < len(line) && line[i] != ':' {
		n.exc.Type = "Error"
		n.valStart, n.valEnd = off, off+len(line)
		return
	}
	if d := strings.LastIndexByte(name, '.'); d >= 0 {
		n.exc.Type, n.exc.Module = name[d+1:], name[:d]
	} else {
		n.exc.Type = name
	}
	v := min(i+1, len(line))
	if v < len(line) && line[v] == ' ' {
		v++
	}
	n.valStart, n.valEnd = off+v, off+len(line)
}

// isPyCode reports whether an indented line after a "File" line is its source code,
// not a caret line ("~~~^^^") or a repetition note.
func isPyCode(t string) bool {
	if strings.HasPrefix(t, "[Previous line repeated") || strings.HasPrefix(t, "...<") {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '^', '~', ' ', '\t':
		default:
			return true
		}
	}
	return false
}

// parsePyFrame parses `File "/app/main.py", line 10, in main` (also without ", in …"
// for syntax errors).
func parsePyFrame(t string) (Frame, bool) {
	rest := t[len(`File "`):]
	q := strings.Index(rest, `", line `)
	if q < 0 {
		q = strings.IndexByte(rest, '"')
		if q <= 0 {
			return Frame{}, false
		}
		return pyFrameFor(rest[:q], 0, ""), true
	}
	file := rest[:q]
	rest = rest[q+len(`", line `):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	lineno, _ := atoi(rest[:end])
	fn := ""
	if i := strings.Index(rest[end:], ", in "); i >= 0 {
		fn = strings.TrimSpace(rest[end+i+len(", in "):])
	}
	if file == "" && fn == "" {
		return Frame{}, false
	}
	return pyFrameFor(file, lineno, fn), true
}

// pyFrameFor builds a frame, deriving the module of installed packages and the
// standard library from the path; those are not application code.
func pyFrameFor(file string, lineno int, fn string) Frame {
	f := Frame{Function: fn, Filename: file, Lineno: lineno, InApp: true}
	if isAbs(file) {
		f.AbsPath = file
	}
	rel := ""
	switch {
	case strings.HasPrefix(file, "<frozen "):
		f.InApp = false
		f.Module = strings.TrimSuffix(file[len("<frozen "):], ">")
		return f
	case strings.Contains(file, "/site-packages/"):
		rel = file[strings.LastIndex(file, "/site-packages/")+len("/site-packages/"):]
	case strings.Contains(file, "/dist-packages/"):
		rel = file[strings.LastIndex(file, "/dist-packages/")+len("/dist-packages/"):]
	case strings.Contains(file, "/lib/python"):
		rest := file[strings.Index(file, "/lib/python")+len("/lib/python"):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rel = rest[i+1:]
		}
	default:
		return f
	}
	f.InApp = false
	if rel != "" {
		rel = strings.TrimSuffix(strings.TrimSuffix(rel, ".py"), "/__init__")
		f.Module = strings.ReplaceAll(rel, "/", ".")
	}
	return f
}
