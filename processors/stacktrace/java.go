package stacktrace

import (
	"strconv"
	"strings"
)

// parseJava parses a JVM exception: a header line ("com.x.FooException: msg", possibly
// after a log prefix or "Exception in thread \"main\""), "\tat" frames, "... N more",
// "Caused by:", "Suppressed:" (nested by indentation) and logback's "Wrapped by:".
func parseJava(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes   []node
		nsup    []int // suppressed exceptions per node, for their Source
		levels  []int // levels[l]: the current exception whose header sits at level l
		cur     = -1  // the exception frames go to
		unit    int   // indentation of the first frame: one level
		pending javaHeader
	)
	for {
		line, start, ok := r.next()
		if !ok {
			break
		}
		t := trimLeft(line)
		indented := len(t) < len(line)
		if indented && strings.HasPrefix(t, "at ") {
			if f, ok := parseJavaFrame(t[3:]); ok {
				if cur < 0 {
					if !pending.ok {
						continue // frames without an exception line: not a trace we can name
					}
					nodes = append(nodes, pending.node(start))
					nsup = append(nsup, 0)
					cur, levels = 0, []int{0}
					unit = max(1, indentCols(line))
				}
				nodes[cur].addNewestFirst(f)
				continue
			}
		}
		if cur < 0 {
			if pending.ok && nestedIs(text[:start]) {
				// "msg; nested exception is:" goes on with the cause on the next line.
				pending.lines++
				pending.valEnd = start + len(line)
			} else if h, ok := findJavaHeader(line); ok {
				h.valStart += start
				h.valEnd += start
				pending = h
			} else if pending.ok {
				pending.lines++
				pending.valEnd = start + len(line)
				if pending.lines > 100 {
					pending.ok = false
				}
			}
			continue
		}
		if n, ok := javaOmitted(t); ok && indented {
			nodes[cur].omitted = n
			continue
		}
		if kind, rest := javaChainLine(t); kind != "" {
			if len(nodes) == MaxExceptions {
				break
			}
			h := parseJavaChainHeader(rest)
			n := node{level: indentCols(line) / unit, parent: -1}
			n.exc.Type, n.exc.Module = h.typ, h.module
			off := start + len(line) - len(rest)
			n.valStart, n.valEnd = off+h.valStart, off+h.valEnd
			idx := len(nodes)
			l := min(n.level, len(levels)-1)
			switch kind {
			case "cause":
				n.parent, n.source = levels[l], "cause"
				levels = append(levels[:l], idx)
			case "suppressed":
				if n.level-1 < l {
					l = max(0, n.level-1)
				}
				p := levels[l]
				n.parent, n.source = p, "suppressed["+strconv.Itoa(nsup[p])+"]"
				nsup[p]++
				levels = append(levels[:l+1], idx)
			case "wrapped":
				// Root cause first: the new exception wraps the current one.
				old := levels[l]
				n.parent, n.source = nodes[old].parent, nodes[old].source
				nodes[old].parent, nodes[old].source = idx, "cause"
				levels = append(levels[:l], idx)
			}
			nodes = append(nodes, n)
			nsup = append(nsup, 0)
			cur = idx
			continue
		}
		if nodes[cur].total == 0 && nodes[cur].omitted == 0 {
			nodes[cur].valEnd = start + len(line) // the message goes on
			continue
		}
		break
	}
	for i := range nodes {
		nodes[i].exc.Value = text[nodes[i].valStart:nodes[i].valEnd]
	}
	shareOmittedFrames(nodes)
	return finish(LangJava, nodes, true)
}

// shareOmittedFrames resolves "... N more": the last N frames of an exception are the
// last N frames of the exception enclosing it, which are resolved first.
func shareOmittedFrames(nodes []node) {
	done := make([]bool, len(nodes))
	var resolve func(i int)
	resolve = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		n := &nodes[i]
		if n.omitted == 0 || n.parent < 0 || n.parent >= len(nodes) {
			return
		}
		resolve(n.parent)
		p := &nodes[n.parent]
		if p.truncated() {
			return // the frames it shares were not kept
		}
		k := min(n.omitted, len(p.exc.Frames))
		for _, f := range p.exc.Frames[len(p.exc.Frames)-k:] {
			n.addNewestFirst(f)
		}
	}
	for i := range nodes {
		resolve(i)
	}
}

// javaHeader is an exception line: its type and where its value lies (offsets in the
// line while it is parsed, in the text once found).
type javaHeader struct {
	ok               bool
	typ, module      string
	thread           string
	valStart, valEnd int
	lines            int // continuation lines seen
}

// node starts the exception of header h, whose value ends before the line at end.
func (h javaHeader) node(end int) node {
	n := node{parent: -1, valStart: h.valStart, valEnd: min(h.valEnd, end)}
	n.exc.Type, n.exc.Module, n.exc.ThreadID = h.typ, h.module, h.thread
	return n
}

// findJavaHeader finds an exception line: a class name followed by ": " or the end of
// the line, at the start of the line, after "Exception in thread \"name\"" or after a
// log prefix. Offsets in the result are relative to line.
func findJavaHeader(line string) (javaHeader, bool) {
	var h javaHeader
	pos := 0
	const thread = "Exception in thread \""
	if i := strings.Index(line, thread); i >= 0 {
		rest := line[i+len(thread):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			h.thread = rest[:j]
			pos = i + len(thread) + j + 1
		}
	}
	for pos < len(line) {
		for pos < len(line) && (line[pos] == ' ' || line[pos] == '\t') {
			pos++
		}
		if end, ok := javaClassAt(line, pos); ok {
			h.ok = true
			h.typ, h.module = splitJavaClass(line[pos:end])
			h.valStart = min(end+2, len(line))
			h.valEnd = len(line)
			return h, true
		}
		sp := strings.IndexByte(line[pos:], ' ')
		if sp < 0 {
			break
		}
		pos += sp
	}
	return javaHeader{}, false
}

// parseJavaChainHeader reads the exception after "Caused by: "; offsets are relative
// to s. An unusual class name is kept as it is.
func parseJavaChainHeader(s string) javaHeader {
	if end, ok := javaClassAt(s, 0); ok {
		h := javaHeader{ok: true, valStart: min(end+2, len(s)), valEnd: len(s)}
		h.typ, h.module = splitJavaClass(s[:end])
		return h
	}
	h := javaHeader{ok: true, typ: s, valStart: len(s), valEnd: len(s)}
	if i := strings.Index(s, ": "); i > 0 {
		h.typ, h.valStart = s[:i], i+2
	}
	return h
}

// javaClassAt matches a throwable class name at s[pos:] followed by ':' or the end of
// s, and returns where the name ends. The name is dotted identifiers whose last one
// starts upper case; an undotted name must end in Exception, Error or Throwable.
func javaClassAt(s string, pos int) (int, bool) {
	i, dots, seg := pos, 0, pos
scan:
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case isIdentByte(c):
			if i == seg && c >= '0' && c <= '9' {
				return 0, false
			}
		case c == '.' && i > seg:
			dots++
			seg = i + 1
		default:
			break scan
		}
	}
	if i == seg || !isUpper(s[seg]) {
		return 0, false
	}
	if i < len(s) && s[i] != ':' {
		return 0, false
	}
	if i < len(s)-1 && s[i+1] != ' ' {
		return 0, false
	}
	if dots == 0 {
		name := s[pos:i]
		if !strings.HasSuffix(name, "Exception") && !strings.HasSuffix(name, "Error") &&
			!strings.HasSuffix(name, "Throwable") {
			return 0, false
		}
	}
	return i, true
}

// splitJavaClass splits "java.lang.IllegalStateException" into the type
// "IllegalStateException" and the module "java.lang", as Sentry's Java SDK does.
func splitJavaClass(class string) (typ, module string) {
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		return class[i+1:], class[:i]
	}
	return class, ""
}

// javaChainLine recognises "Caused by: ", "Suppressed: " and "Wrapped by: ".
func javaChainLine(t string) (kind, rest string) {
	switch {
	case strings.HasPrefix(t, "Caused by: "):
		return "cause", t[len("Caused by: "):]
	case strings.HasPrefix(t, "Suppressed: "):
		return "suppressed", t[len("Suppressed: "):]
	case strings.HasPrefix(t, "Wrapped by: "):
		return "wrapped", t[len("Wrapped by: "):]
	}
	return "", ""
}

// javaOmitted parses "... 2 more" and logback's "... 12 common frames omitted".
func javaOmitted(t string) (int, bool) {
	if !strings.HasPrefix(t, "... ") {
		return 0, false
	}
	t = t[4:]
	sp := strings.IndexByte(t, ' ')
	if sp < 0 {
		return 0, false
	}
	n, ok := atoi(t[:sp])
	if !ok {
		return 0, false
	}
	switch strings.TrimSpace(t[sp:]) {
	case "more", "common frames omitted":
		return n, true
	}
	return 0, false
}

// parseJavaFrame parses what follows "at ": "com.x.Y.method(Y.java:88)", also with a
// class loader or module ("app//", "java.base/", "java.base@17/"), "(Native Method)",
// "(Unknown Source)", hidden classes ("App$$Lambda/0x0000000800c03000.run", kept as
// "App$$Lambda") and logback's packaging data ("~[spring-web-5.3.9.jar:5.3.9]").
func parseJavaFrame(s string) (Frame, bool) {
	open := strings.IndexByte(s, '(')
	if open <= 0 {
		return Frame{}, false
	}
	closeRel := strings.IndexByte(s[open:], ')')
	if closeRel < 0 {
		return Frame{}, false
	}
	name, loc := s[:open], s[open+1:open+closeRel]
	if rest := strings.TrimSpace(s[open+closeRel+1:]); rest != "" && rest[0] != '~' && rest[0] != '[' {
		return Frame{}, false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isIdentByte(c) && strings.IndexByte("./<>@-", c) < 0 {
			return Frame{}, false
		}
	}
	for {
		i := strings.IndexByte(name, '/')
		if i < 0 || strings.HasPrefix(name[i+1:], "0x") {
			break
		}
		name = name[i+1:]
	}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 || dot == len(name)-1 {
		return Frame{}, false
	}
	f := Frame{Module: name[:dot], Function: name[dot+1:]}
	if i := strings.Index(f.Module, "/0x"); i > 0 {
		// A hidden class's address changes from run to run: drop it so grouping holds.
		f.Module = f.Module[:i]
	}
	switch loc {
	case "Native Method", "Unknown Source", "Unknown", "":
	default:
		if strings.IndexByte(loc, ' ') >= 0 {
			return Frame{}, false
		}
		f.Filename = loc
		if c := strings.LastIndexByte(loc, ':'); c >= 0 {
			n, ok := atoi(loc[c+1:])
			if !ok {
				return Frame{}, false
			}
			f.Filename, f.Lineno = loc[:c], n
		}
	}
	f.InApp = javaInApp(f.Module)
	return f, true
}

// javaLibraryPrefixes are the packages of the JDK, the JVM languages' runtimes and
// common libraries and frameworks: their frames are not application code.
var javaLibraryPrefixes = []string{
	"java.", "javax.", "jakarta.", "jdk.", "sun.", "com.sun.", "kotlin.", "kotlinx.",
	"scala.", "akka.", "org.springframework.", "org.apache.", "io.netty.", "reactor.",
	"org.hibernate.", "com.fasterxml.", "okhttp3.", "okio.", "org.junit.", "junit.",
	"org.gradle.", "groovy.", "org.codehaus.", "ch.qos.logback.", "org.slf4j.",
	"io.micrometer.", "com.google.", "io.grpc.", "org.eclipse.", "io.undertow.",
	"com.zaxxer.", "org.postgresql.", "com.mysql.", "io.reactivex.", "android.",
	"androidx.", "dalvik.", "com.android.", "io.opentelemetry.", "io.sentry.",
	"org.jboss.", "net.bytebuddy.", "org.mockito.", "_COROUTINE.", "io.ktor.",
	"io.vertx.", "io.quarkus.", "io.micronaut.", "org.glassfish.", "feign.",
}

// javaInApp reports whether class is application code: not in javaLibraryPrefixes.
func javaInApp(class string) bool {
	for _, p := range javaLibraryPrefixes {
		if strings.HasPrefix(class, p) {
			return false
		}
	}
	return true
}

// nestedIs reports whether text, the input before a line, ends with
// "nested exception is:" (java.rmi.RemoteException and older Spring exceptions put
// their cause on the next line of the message).
func nestedIs(text string) bool {
	return strings.HasSuffix(strings.TrimRight(text, " \t\r\n"), "nested exception is:")
}
