package stacktrace

import "strings"

// Go chain sources: how an earlier panic relates to the one printed after it.
const (
	goSourceRecovered = "recovered" // "panic: first [recovered]" then "\tpanic: second"
	goSourcePanicking = "panicking" // a deferred call panicked while the first panic ran
)

// parseGo parses a Go crash or, failing that, Go frames without a goroutine header.
func parseGo(text string) (Trace, bool) {
	if t, ok := parseGoDump(text); ok {
		return t, true
	}
	return parseGoFrames(text)
}

// parseGoDump parses a Go crash: a header ("panic: …", nested panics, "fatal error: …",
// a fatal signal, net/http's "http: panic serving …", or any message) followed by
// goroutine blocks.
func parseGoDump(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes     []node
		cont      bool   // the next line may continue the last value
		msg       string // last other line before the dump, the fallback value
		header    string // first goroutine header
		recovered []bool // per node: printed with "[recovered]"
	)
	for {
		line, start, ok := r.next()
		if !ok {
			return Trace{}, false
		}
		if IsGoroutineHeader(line) {
			header = line
			break
		}
		t := trimLeft(line)
		switch {
		case isBlank(line):
			cont = false
			continue
		case strings.HasPrefix(t, "[signal "), strings.HasPrefix(t, "[originating from"):
			continue
		}
		typ, vstart := "", -1
		if i := IndexWord(line, "panic: "); i >= 0 {
			typ, vstart = "panic", i+len("panic: ")
		} else if i := IndexWord(line, "fatal error: "); i >= 0 {
			typ, vstart = "fatal error", i+len("fatal error: ")
		} else if i := strings.Index(line, "http: panic serving "); i >= 0 {
			// net/http: "http: panic serving 10.0.0.1:5000: <value>".
			rest := line[i+len("http: panic serving "):]
			if j := strings.Index(rest, ": "); j >= 0 {
				typ, vstart = "panic", len(line)-len(rest)+j+2
			}
		} else if sig, ok := signalName(t); ok && len(nodes) == 0 {
			n := node{parent: -1, valStart: start + len(line) - len(t) + len(sig) + 2, valEnd: start + len(line)}
			n.exc.Type = sig
			nodes = append(nodes, n)
			recovered = append(recovered, false)
			cont = false
			continue
		}
		if vstart >= 0 {
			if len(nodes) == MaxExceptions {
				// Nested panics print oldest first: keep the newest, which crashed.
				copy(nodes, nodes[1:])
				copy(recovered, recovered[1:])
				nodes, recovered = nodes[:len(nodes)-1], recovered[:len(recovered)-1]
			}
			n := node{parent: -1, valStart: start + vstart, valEnd: start + len(line)}
			n.exc.Type = typ
			nodes = append(nodes, n)
			recovered = append(recovered, false)
			cont = true
			continue
		}
		if cont && len(nodes) > 0 {
			nodes[len(nodes)-1].valEnd = start + len(line)
			continue
		}
		if len(nodes) == 0 {
			msg = line
		}
	}

	for i := range nodes {
		n := &nodes[i]
		v := text[n.valStart:n.valEnd]
		for _, suffix := range []string{" [recovered]", " [recovered, repanicked]"} {
			if strings.HasSuffix(v, suffix) {
				v = v[:len(v)-len(suffix)]
				recovered[i] = suffix == " [recovered]"
			}
		}
		n.exc.Value = v
		if n.exc.Type == "panic" {
			n.exc.Type, n.exc.Module = goPanicType(v)
		}
		if i+1 < len(nodes) {
			n.parent = i + 1
			n.source = goSourcePanicking
			if recovered[i] {
				n.source = goSourceRecovered
			}
		}
	}
	if len(nodes) == 0 {
		n := node{parent: -1}
		n.exc.Type = "goroutine dump"
		if m := strings.TrimSpace(stripLogPrefix(msg)); m != "" {
			n.exc.Type, n.exc.Value = "error", m
		}
		nodes = append(nodes, n)
	}
	crashed := &nodes[len(nodes)-1]

	var threads []Thread
	g := goroutine{}
	g.start(header)
	crashed.exc.ThreadID = g.id
	first := true
	flush := func() {
		if first {
			crashed.exc.Frames = g.frames
			crashed.total = g.total
			first = false
		} else {
			frames := validFrames(g.frames)
			reverseFrames(frames)
			if frames == nil {
				frames = []Frame{}
			}
			threads = append(threads, Thread{ID: g.id, State: g.state, Frames: frames})
		}
		g = goroutine{}
	}
	inBlock := true
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		if IsGoroutineHeader(line) {
			if inBlock {
				flush()
			}
			if len(threads) == MaxThreads {
				break
			}
			g.start(line)
			inBlock = true
			continue
		}
		if isBlank(line) {
			if inBlock {
				flush()
				inBlock = false
			}
			continue
		}
		if !inBlock || !g.add(line) {
			break
		}
	}
	if inBlock {
		flush()
	}
	t, ok := build(LangGo, nodes, true)
	if !ok || !hasFrames(t) && !threadsHaveFrames(threads) {
		return Trace{}, false
	}
	t.Threads = threads
	return t, true
}

func threadsHaveFrames(threads []Thread) bool {
	for i := range threads {
		if len(threads[i].Frames) > 0 {
			return true
		}
	}
	return false
}

// parseGoFrames parses Go frames printed without a goroutine header, as zap's
// "stacktrace" field and pkg/errors' "%+v" print them: pairs of a function line (with
// or without arguments) and a tab-indented file line, after a message line that gives
// the value.
func parseGoFrames(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		g        goroutine
		msg      string
		prevName string // the previous line, when it was a function name
		inFrames bool
	)
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		if !inFrames {
			if prevName != "" && isGoFileLine(line) {
				g.push(prevName)
				g.add(line)
				inFrames = true
				continue
			}
			if name, ok := goBareFuncName(line); ok {
				prevName = name
				continue
			}
			prevName = ""
			if !isBlank(line) {
				msg = line
			}
			continue
		}
		if name, ok := goBareFuncName(line); ok {
			g.push(name)
			continue
		}
		if line == "" || line[0] != '\t' || !g.add(line) {
			break
		}
	}
	if g.total == 0 {
		return Trace{}, false
	}
	n := node{parent: -1}
	n.exc.Type, n.exc.Value = "error", strings.TrimSpace(stripLogPrefix(msg))
	if i := IndexWord(msg, "panic: "); i >= 0 {
		v := strings.TrimSuffix(msg[i+len("panic: "):], " [recovered]")
		n.exc.Value = v
		n.exc.Type, n.exc.Module = goPanicType(v)
	}
	n.exc.Frames, n.total = g.frames, g.total
	return finish(LangGo, []node{n}, true)
}

// goBareFuncName matches a function line of a headerless stack: "main.handler",
// "github.com/x/y.(*T).M" or, with arguments, "main.main()".
func goBareFuncName(line string) (string, bool) {
	if line == "" || line[0] == ' ' || line[0] == '\t' {
		return "", false
	}
	if name, ok := goFuncName(line); ok && strings.IndexByte(name, '.') > 0 {
		return name, true
	}
	if strings.IndexByte(line, '.') <= 0 || strings.ContainsAny(line, " \t:,") {
		return "", false
	}
	return line, true
}

// isGoFileLine matches a tab-indented "/app/main.go:33" (also with " +0x1d").
// IsGoFileLine reports whether line is the file line of a Go frame:
// "\t/app/main.go:12 +0x1d".
func IsGoFileLine(line string) bool { return isGoFileLine(line) }

func isGoFileLine(line string) bool {
	if line == "" || line[0] != '\t' {
		return false
	}
	path, n := goFileLine(trimLeft(line))
	return n > 0 && (strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".s"))
}

// goroutine collects the frames of one goroutine block, newest first.
type goroutine struct {
	id, state string
	frames    []Frame
	total     int
	open      bool // the last function line still waits for its file line
	openKept  bool // and its frame was kept (not beyond MaxFrames)
}

// start reads a goroutine header: "goroutine 18 [chan receive, 2 minutes]:", also
// "goroutine 1 gp=0xc000002380 m=0 mp=0x5a3d20 [running]:".
func (g *goroutine) start(header string) {
	t := strings.TrimSpace(header)
	i := IndexWord(t, "goroutine ")
	rest := t[i+len("goroutine "):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	g.id = rest[:n]
	if open := strings.IndexByte(rest, '['); open >= 0 && strings.HasSuffix(rest, "]:") {
		g.state = rest[open+1 : len(rest)-2]
	}
}

// add reads one line of a goroutine block and reports whether it belonged to it.
func (g *goroutine) add(line string) bool {
	switch {
	case line[0] == '\t' || line[0] == ' ':
		if !g.open {
			return true // a file line without its function line: nothing to attach it to
		}
		g.open = false
		if g.openKept {
			f := &g.frames[len(g.frames)-1]
			path, lineno := goFileLine(trimLeft(line))
			f.Filename, f.Lineno = path, lineno
			if isAbs(path) {
				f.AbsPath = path
			}
			f.InApp = goInApp(f.Module, path)
		}
		return true
	case strings.HasPrefix(line, "created by "):
		name := line[len("created by "):]
		if i := strings.Index(name, " in goroutine "); i >= 0 {
			name = name[:i]
		}
		g.push(name)
		return true
	case strings.HasPrefix(line, "...additional frames elided..."),
		strings.HasPrefix(line, "[originating from goroutine "):
		return true
	}
	name, ok := goFuncName(line)
	if !ok {
		return false
	}
	g.push(name)
	return true
}

// push starts a frame for the qualified function name.
func (g *goroutine) push(name string) {
	g.total++
	g.open = true
	g.openKept = len(g.frames) < MaxFrames
	if !g.openKept {
		return
	}
	module, fn := splitGoFunc(name)
	if fn == "" {
		fn = name
	}
	if g.frames == nil {
		g.frames = make([]Frame, 0, 16)
	}
	g.frames = append(g.frames, Frame{Function: fn, Module: module, InApp: goInApp(module, "")})
}

// goFuncName returns the qualified function name of a traceback function line,
// "main.(*Server).handle(0x0, {0x4b2f1e, 0x3})" or "panic({0x5c8e40?, 0x6e7a90?})": the
// line without its final, balanced argument list.
func goFuncName(line string) (string, bool) {
	if line == "" || line[len(line)-1] != ')' {
		return "", false
	}
	depth := 0
	for i := len(line) - 1; i > 0; i-- {
		switch line[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				name := line[:i]
				if strings.IndexByte(name, ' ') >= 0 {
					return "", false
				}
				return name, true
			}
		}
	}
	return "", false
}

// splitGoFunc splits "github.com/x/y.(*T).M" into the import path "github.com/x/y" and
// the function "(*T).M"; a name without a package ("panic") has no module.
func splitGoFunc(name string) (module, fn string) {
	slash := strings.LastIndexByte(name, '/')
	if slash < 0 {
		slash = 0
	}
	dot := strings.IndexByte(name[slash:], '.')
	if dot < 0 {
		return "", name
	}
	module, fn = name[:slash+dot], name[slash+dot+1:]
	if strings.Contains(module, "%2e") {
		// The linker escapes dots in the last path element: "gopkg.in/yaml%2ev3".
		module = strings.ReplaceAll(module, "%2e", ".")
	}
	return module, fn
}

// goFileLine parses "/app/server.go:42 +0x25" (also with " fp=… sp=… pc=…").
func goFileLine(s string) (string, int) {
	if i := strings.Index(s, " +0x"); i >= 0 {
		s = s[:i]
	} else if i := strings.Index(s, " fp=0x"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if c := strings.LastIndexByte(s, ':'); c > 0 {
		if n, ok := atoi(s[c+1:]); ok {
			return s[:c], n
		}
	}
	return s, 0
}

// goInApp tells application code from the standard library and dependencies: package
// main is the application; a path in the module cache or a vendor directory, a
// function without a package (the runtime's "panic") and an import path whose first
// element has no dot (the standard library) are not.
func goInApp(module, file string) bool {
	if module == "main" {
		return true
	}
	if strings.Contains(file, "/pkg/mod/") || strings.Contains(file, "/vendor/") ||
		strings.Contains(file, "@v") || strings.Contains(module, "/vendor/") {
		return false
	}
	if module == "" {
		return false
	}
	first := module
	if i := strings.IndexByte(module, '/'); i >= 0 {
		first = module[:i]
	}
	return strings.IndexByte(first, '.') >= 0
}

// goPanicType derives a type from a panic value: runtime errors are runtime.Error, a
// value printed as "(main.T) 0xc000012345" is of type main.T, anything else is "panic".
func goPanicType(value string) (typ, module string) {
	if strings.HasPrefix(value, "runtime error: ") {
		return "runtime.Error", "runtime"
	}
	if len(value) > 2 && value[0] == '(' {
		if i := strings.Index(value, ") "); i > 1 && strings.IndexByte(value[1:i], ' ') < 0 {
			t := value[1:i]
			m, _ := splitGoFunc(t)
			return t, m
		}
	}
	return "panic", ""
}

// IsGoroutineHeader reports whether line is a goroutine header of a Go traceback,
// "goroutine 1 [running]:" (also "goroutine 7 gp=0x.. m=0 [chan receive]:"), possibly
// after a log prefix. The multiline joiner uses it too.
func IsGoroutineHeader(line string) bool {
	t := strings.TrimSpace(line)
	if !strings.HasSuffix(t, "]:") {
		return false
	}
	i := IndexWord(t, "goroutine ")
	if i < 0 {
		return false
	}
	rest := t[i+len("goroutine "):]
	n := 0
	for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
		n++
	}
	return n > 0 && n < len(rest) && rest[n] == ' ' && strings.IndexByte(rest[n:], '[') >= 0
}

// signalName matches the first line of a Go signal dump, "SIGQUIT: quit", and returns
// the signal.
func signalName(t string) (string, bool) {
	if !strings.HasPrefix(t, "SIG") {
		return "", false
	}
	i := 3
	for i < len(t) && isUpper(t[i]) {
		i++
	}
	return t[:i], i > 3 && strings.HasPrefix(t[i:], ": ")
}

// IndexWord returns the index of the first occurrence of word in line that is at the
// start of the line or after a space, tab, '"' or ']' (a log prefix), or -1.
func IndexWord(line, word string) int {
	off := 0
	for {
		i := strings.Index(line[off:], word)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || strings.IndexByte(" \t\"]", line[i-1]) >= 0 {
			return i
		}
		off = i + 1
	}
}
