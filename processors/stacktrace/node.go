package stacktrace

import "strings"

// parseNode parses a V8 error stack: an error line ("TypeError: x is not a function",
// possibly after a log prefix, after the source excerpt Node prints for an uncaught
// error, or spanning several lines), "    at" frames, util.inspect's property block
// with "[cause]:" errors, and pino's "caused by:" stacks.
func parseNode(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes   []node
		cur     = -1
		pending nodeHeader // the error line before the first frame
		prev    nodeHeader // the last non-blank line, when no error line was found
		depth   int        // brace depth of util.inspect properties
		elided  []nodeElision
	)
	for {
		line, start, ok := r.next()
		if !ok {
			break
		}
		t := trimLeft(line)
		indented := len(t) < len(line)
		if indented && strings.HasPrefix(t, "at ") {
			ft := strings.TrimRight(t[3:], " ")
			opens := strings.HasSuffix(ft, " {")
			if opens {
				ft = ft[:len(ft)-2]
			}
			if f, ok := parseNodeFrame(ft); ok {
				if cur < 0 {
					h := pending
					if !h.ok {
						h = prev
					}
					if !h.ok {
						continue
					}
					nodes = append(nodes, h.node())
					cur = 0
				}
				nodes[cur].addNewestFirst(f)
				if opens {
					depth++
				}
				continue
			}
		}
		if cur < 0 {
			switch {
			case isBlank(line):
			case pending.ok && pending.lines < 100 && !nodeHeaderStart(line):
				pending.valEnd = start + len(line)
				pending.lines++
			default:
				if h, ok := findNodeHeader(line, true); ok {
					pending = h.at(start)
				} else {
					pending = nodeHeader{}
					prev, _ = findNodeHeader(line, false)
					prev = prev.at(start)
				}
			}
			continue
		}
		rest, isCause := strings.CutPrefix(t, "[cause]: ")
		if !isCause && depth == 0 {
			if len(t) >= len("caused by: ") && strings.EqualFold(t[:len("caused by: ")], "caused by: ") {
				rest, isCause = t[len("caused by: "):], true
			}
		}
		if isCause {
			if len(nodes) == MaxExceptions {
				break
			}
			h, _ := findNodeHeader(rest, false)
			n := h.at(start + len(line) - len(rest)).node()
			n.parent, n.source = cur, "cause"
			nodes = append(nodes, n)
			cur = len(nodes) - 1
			continue
		}
		if nodes[cur].total == 0 && !isBlank(line) {
			nodes[cur].valEnd = start + len(line) // a cause's message spans lines
			continue
		}
		if n, ok := nodeElided(t); ok {
			elided = append(elided, nodeElision{node: cur, at: len(nodes[cur].exc.Frames), n: n})
			continue
		}
		if depth > 0 {
			if strings.HasPrefix(t, "}") || strings.HasPrefix(t, "]") {
				depth--
			}
			if strings.HasSuffix(t, "{") || strings.HasSuffix(t, "[") {
				depth++
			}
			continue
		}
		break
	}
	for i := range nodes {
		nodes[i].exc.Value = text[nodes[i].valStart:nodes[i].valEnd]
	}
	restoreElided(nodes, elided)
	return finish(LangNode, nodes, true)
}

// nodeElision is a "... N lines matching cause stack trace ..." line: N frames of
// node, after its first at frames, are those of its cause.
type nodeElision struct{ node, at, n int }

// nodeElided parses "... 5 lines matching cause stack trace ...".
func nodeElided(t string) (int, bool) {
	rest, ok := strings.CutPrefix(t, "... ")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, " lines matching cause stack trace ...")
	if !ok {
		return 0, false
	}
	return atoi(num)
}

// restoreElided puts back the frames Node left out because they match the cause's:
// they follow, in the cause's stack, the frame printed just before the elision.
func restoreElided(nodes []node, elided []nodeElision) {
	for k := len(elided) - 1; k >= 0; k-- { // from the last, so earlier positions hold
		e := elided[k]
		if e.at == 0 || e.n <= 0 {
			continue
		}
		outer := &nodes[e.node]
		if e.at > len(outer.exc.Frames) {
			continue
		}
		cause := -1
		for i := range nodes {
			if nodes[i].parent == e.node && nodes[i].source == "cause" {
				cause = i
				break
			}
		}
		if cause < 0 {
			continue
		}
		cf := nodes[cause].exc.Frames
		prev := outer.exc.Frames[e.at-1]
		for j := range cf {
			if cf[j] != prev {
				continue
			}
			end := j + 1 + e.n
			if end > len(cf) || len(outer.exc.Frames)+e.n > MaxFrames {
				break
			}
			frames := make([]Frame, 0, len(outer.exc.Frames)+e.n)
			frames = append(frames, outer.exc.Frames[:e.at]...)
			frames = append(frames, cf[j+1:end]...)
			frames = append(frames, outer.exc.Frames[e.at:]...)
			outer.exc.Frames = frames
			outer.total += e.n
			break
		}
	}
}

// nodeHeader is an error line: its type and where its value lies.
type nodeHeader struct {
	ok               bool
	typ              string
	valStart, valEnd int
	lines            int
}

// at moves the offsets of h, relative to a line, to the text the line starts at off in.
func (h nodeHeader) at(off int) nodeHeader {
	h.valStart += off
	h.valEnd += off
	return h
}

func (h nodeHeader) node() node {
	n := node{parent: -1, valStart: h.valStart, valEnd: h.valEnd}
	n.exc.Type = h.typ
	return n
}

// nodeHeaderStart reports whether line starts a new error line.
func nodeHeaderStart(line string) bool {
	_, ok := findNodeHeader(line, true)
	return ok
}

// findNodeHeader finds "Name: message", "Name [CODE]: message" or a bare "Name" in
// line. Strictly, Name must end in Error or Exception and may follow a log prefix or
// "Uncaught "; otherwise the line after its log prefix is taken as it is, with Name
// any identifier or else "Error". Offsets are relative to line.
func findNodeHeader(line string, strict bool) (nodeHeader, bool) {
	if !strict {
		s := strings.TrimPrefix(stripLogPrefix(line), "Uncaught ")
		off := len(line) - len(s)
		if end, vs, ok := nodeNameAt(s, 0); ok {
			return nodeHeader{ok: true, typ: s[:end], valStart: off + vs, valEnd: len(line)}, true
		}
		return nodeHeader{ok: true, typ: "Error", valStart: off, valEnd: len(line)}, true
	}
	pos := 0
	for pos < len(line) {
		for pos < len(line) && (line[pos] == ' ' || line[pos] == '\t') {
			pos++
		}
		if end, vs, ok := nodeNameAt(line, pos); ok {
			name := line[pos:end]
			if strings.HasSuffix(name, "Error") || strings.HasSuffix(name, "Exception") {
				return nodeHeader{ok: true, typ: name, valStart: vs, valEnd: len(line)}, true
			}
		}
		sp := strings.IndexByte(line[pos:], ' ')
		if sp < 0 {
			break
		}
		pos += sp
	}
	return nodeHeader{}, false
}

// nodeNameAt matches an error name at s[pos:] followed by an optional " [CODE]" and
// ": " or the end of s. It returns where the name ends and where the message starts.
func nodeNameAt(s string, pos int) (end, valStart int, ok bool) {
	i := pos
	for i < len(s) && (isIdentByte(s[i]) || s[i] == '.') {
		i++
	}
	if i == pos || s[pos] >= '0' && s[pos] <= '9' || s[pos] == '.' {
		return 0, 0, false
	}
	end = i
	if strings.HasPrefix(s[i:], " [") {
		// Node's error codes: "TypeError [ERR_INVALID_ARG_TYPE]: …".
		if c := strings.IndexByte(s[i:], ']'); c > 0 {
			i += c + 1
		}
	}
	switch {
	case i == len(s):
		return end, i, true
	case s[i] == ':' && (i+1 == len(s) || s[i+1] == ' '):
		return end, min(i+2, len(s)), true
	}
	return 0, 0, false
}

// parseNodeFrame parses what follows "at ": "fn (/app/x.js:10:5)", "/app/x.js:10:5",
// "async fn (…)", "new Foo (…)", "Object.<anonymous> (…)", "Promise.all (index 0)",
// "fn (native)" and eval frames, whose location is the code that called eval.
func parseNodeFrame(s string) (Frame, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "async ")
	var fn, loc string
	if strings.HasSuffix(s, ")") {
		open := openingParen(s)
		switch {
		case open < 0:
			return Frame{}, false
		case open == 0:
			loc = s[1 : len(s)-1]
		case s[open-1] != ' ':
			return Frame{}, false
		default:
			fn, loc = strings.TrimSpace(s[:open-1]), s[open+1:len(s)-1]
		}
	} else {
		loc = s
	}
	if strings.HasPrefix(loc, "eval at ") {
		if i := strings.LastIndexByte(loc, '('); i >= 0 {
			if j := strings.IndexByte(loc[i:], ')'); j > 0 {
				loc = loc[i+1 : i+j]
			}
		}
	}
	file, line, col := splitJSLoc(loc)
	if fn == "" && line == 0 {
		return Frame{}, false
	}
	if file == "" && fn == "" {
		return Frame{}, false
	}
	f := Frame{Function: fn, Filename: file, Lineno: line, Colno: col, InApp: nodeInApp(file)}
	switch {
	case strings.HasPrefix(file, "file://"):
		f.AbsPath = file[len("file://"):]
	case isAbs(file):
		f.AbsPath = file
	}
	return f, true
}

// openingParen returns the index of the '(' matching the ')' that ends s, or -1.
func openingParen(s string) int {
	depth := 0
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitJSLoc splits "/app/x.js:10:5" into file, line and column; locations that are
// not files ("native", "index 0", "unknown location") give no file.
func splitJSLoc(loc string) (file string, line, col int) {
	switch {
	case loc == "native", loc == "unknown location", strings.HasPrefix(loc, "index "):
		return "", 0, 0
	}
	c2 := strings.LastIndexByte(loc, ':')
	if c2 < 0 {
		return loc, 0, 0
	}
	n2, ok := atoi(loc[c2+1:])
	if !ok {
		return loc, 0, 0
	}
	rest := loc[:c2]
	if c1 := strings.LastIndexByte(rest, ':'); c1 >= 0 {
		if n1, ok := atoi(rest[c1+1:]); ok {
			return rest[:c1], n1, n2
		}
	}
	return rest, n2, 0
}

// nodeInApp: Node's own modules ("node:internal/…", "internal/…"), dependencies
// (node_modules) and frames without a file are not application code.
func nodeInApp(file string) bool {
	switch {
	case file == "", file == "<anonymous>", strings.HasPrefix(file, "node:"),
		strings.HasPrefix(file, "internal/"), strings.Contains(file, "/node_modules/"),
		strings.Contains(file, `\node_modules\`):
		return false
	}
	return true
}
