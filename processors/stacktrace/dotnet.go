package stacktrace

import "strings"

// .NET markers: the prefix the runtime prints for an unhandled exception (.NET 5 and
// later, and .NET Framework's), an inner exception, and the end of its frames.
const (
	dotnetUnhandled    = "Unhandled exception. "
	dotnetUnhandledOld = "Unhandled Exception: "
	dotnetInner        = "---> "
	dotnetEndInner     = "--- End of inner exception stack trace ---"
)

// parseDotnet parses a .NET exception as Exception.ToString prints it: "Type: msg",
// " ---> Inner: msg" lines for the inner exceptions, then the innermost exception's
// "   at Ns.Type.Method(Args) in /src/File.cs:line 12" frames, "--- End of inner
// exception stack trace ---", the frames of the exception around it, and so on.
func parseDotnet(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes []node
		cur   = -1 // the exception frames go to
	)
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		t := trimLeft(line)
		switch {
		case strings.HasPrefix(t, "at "):
			if f, ok := parseDotnetFrame(t[3:]); ok && cur >= 0 {
				nodes[cur].addNewestFirst(f)
			}
			continue
		case strings.HasPrefix(t, dotnetInner):
			if len(nodes) == 0 || len(nodes) == MaxExceptions {
				continue
			}
			n := dotnetHeader(t[len(dotnetInner):])
			n.parent, n.source = len(nodes)-1, "cause"
			nodes = append(nodes, n)
			cur = len(nodes) - 1
			continue
		case strings.HasPrefix(t, dotnetEndInner):
			if cur > 0 {
				cur = nodes[cur].parent
			}
			continue
		case strings.HasPrefix(t, "--- End of stack trace from previous location"):
			continue
		}
		if len(nodes) > 0 {
			if nodes[cur].total == 0 && cur == len(nodes)-1 && !isBlank(line) {
				nodes[cur].exc.Value += "\n" + line // the message goes on
				continue
			}
			if isBlank(line) {
				continue
			}
			break
		}
		h := line
		if i := strings.Index(h, dotnetUnhandled); i >= 0 {
			h = h[i+len(dotnetUnhandled):]
		} else if i := strings.Index(h, dotnetUnhandledOld); i >= 0 {
			h = h[i+len(dotnetUnhandledOld):]
		} else if h = stripLogPrefix(h); !looksDotnetType(h) {
			continue
		}
		nodes = append(nodes, dotnetHeader(h))
		cur = 0
	}
	return finish(LangDotnet, nodes, true)
}

// dotnetHeader parses "System.Net.Sockets.SocketException (111): Connection refused".
func dotnetHeader(h string) node {
	n := node{parent: -1}
	typ, msg, _ := strings.Cut(h, ": ")
	if i := strings.Index(typ, " ("); i > 0 {
		typ = typ[:i] // the error code SocketException and Win32Exception print
	}
	typ = strings.TrimSpace(typ)
	if d := strings.LastIndexByte(typ, '.'); d > 0 {
		n.exc.Module, typ = typ[:d], typ[d+1:]
	}
	n.exc.Type, n.exc.Value = typ, msg
	return n
}

// looksDotnetType reports whether h starts with a dotted type name followed by ":".
func looksDotnetType(h string) bool {
	typ, _, ok := strings.Cut(h, ":")
	if !ok || strings.IndexByte(typ, '.') < 0 {
		return false
	}
	if i := strings.Index(typ, " ("); i > 0 {
		typ = typ[:i]
	}
	for i := 0; i < len(typ); i++ {
		if !isIdentByte(typ[i]) && typ[i] != '.' && typ[i] != '`' {
			return false
		}
	}
	return true
}

// IsDotnetFrame reports whether s, what follows "at ", is a .NET frame: arguments
// with their types ("Main(String[] args)") or none, and optionally " in File.cs:line
// 12". Java frames carry "(File.java:12)" instead.
func IsDotnetFrame(s string) bool {
	_, ok := parseDotnetFrame(s)
	return ok
}

// parseDotnetFrame parses "Ns.Type.Method(Int32 id) in /src/File.cs:line 12".
func parseDotnetFrame(s string) (Frame, bool) {
	var f Frame
	loc := ""
	if i := strings.LastIndex(s, ") in "); i >= 0 {
		s, loc = s[:i+1], s[i+5:]
	}
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return Frame{}, false
	}
	args := s[open+1 : len(s)-1]
	if loc == "" && args != "" && strings.IndexByte(args, ' ') < 0 {
		return Frame{}, false // Java's "(Main.java:10)"
	}
	if args == "Native Method" || args == "Unknown Source" {
		return Frame{}, false
	}
	name := s[:open]
	if strings.ContainsAny(name, " \t/") {
		return Frame{}, false
	}
	d := strings.LastIndexByte(name, '.')
	for d > 0 && name[d-1] == '.' {
		d-- // ".ctor" and ".cctor"
	}
	if d <= 0 || d == len(name)-1 {
		return Frame{}, false
	}
	f.Module, f.Function = name[:d], name[d+1:]
	if loc != "" {
		c := strings.LastIndex(loc, ":line ")
		if c <= 0 {
			return Frame{}, false
		}
		n, ok := atoi(loc[c+6:])
		if !ok {
			return Frame{}, false
		}
		path := loc[:c]
		f.Lineno, f.Filename = n, path
		if isAbs(path) {
			f.AbsPath = path
			if k := strings.LastIndexAny(path, `/\`); k >= 0 {
				f.Filename = path[k+1:]
			}
		}
	}
	f.InApp = !strings.HasPrefix(f.Module, "System.") && !strings.HasPrefix(f.Module, "Microsoft.") &&
		f.Module != "System"
	return f, true
}
