package stacktrace

import "strings"

const dartUnhandled = "Unhandled exception:"

// IsDartUnhandled reports whether line is the first line of an uncaught Dart
// exception, "Unhandled exception:", possibly after a log prefix.
func IsDartUnhandled(line string) bool {
	t := line
	for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t' || t[len(t)-1] == '\r') {
		t = t[:len(t)-1]
	}
	return strings.HasSuffix(t, dartUnhandled) && (len(t) == len(dartUnhandled) || t[len(t)-len(dartUnhandled)-1] == ' ')
}

// parseDart parses an uncaught Dart exception: "Unhandled exception:", the exception's
// toString (possibly several lines), then "#N      function (uri:line:col)" frames
// with "<asynchronous suspension>" markers.
func parseDart(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		n       node
		started bool
		msg     []string
	)
	n.parent = -1
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		t := trimLeft(line)
		if f, ok := parseDartFrame(t); ok {
			n.addNewestFirst(f)
			continue
		}
		switch {
		case t == "<asynchronous suspension>":
			continue
		case n.total > 0:
			if isBlank(line) {
				continue
			}
		case IsDartUnhandled(line):
			started, msg = true, msg[:0]
			continue
		case started && (len(msg) > 0 || !isBlank(line)):
			msg = append(msg, line)
			continue
		default:
			continue
		}
		break
	}
	if n.total == 0 {
		return Trace{}, false
	}
	for len(msg) > 0 && isBlank(msg[len(msg)-1]) {
		msg = msg[:len(msg)-1]
	}
	n.exc.Type, n.exc.Value = dartType(strings.Join(msg, "\n"))
	return finish(LangDart, []node{n}, true)
}

// dartType names the exception from its toString: "FormatException: …", "Bad state:
// …" (StateError), "Instance of 'Foo'".
func dartType(s string) (typ, value string) {
	for _, p := range []struct{ prefix, typ string }{
		{"Bad state: ", "StateError"},
		{"Invalid argument(s)", "ArgumentError"},
		{"Invalid argument", "ArgumentError"},
		{"RangeError", "RangeError"},
		{"Unsupported operation: ", "UnsupportedError"},
		{"Concurrent modification", "ConcurrentModificationError"},
		{"Null check operator used on a null value", "TypeError"},
		{"Exception: ", "Exception"},
	} {
		if strings.HasPrefix(s, p.prefix) {
			v := strings.TrimPrefix(s, p.prefix)
			if p.prefix[len(p.prefix)-1] != ' ' {
				v = s
			}
			return p.typ, v
		}
	}
	if rest, ok := strings.CutPrefix(s, "Instance of '"); ok {
		if q := strings.IndexByte(rest, '\''); q > 0 {
			return rest[:q], ""
		}
	}
	if name, v, ok := strings.Cut(s, ": "); ok && name != "" && strings.IndexFunc(name, func(r rune) bool {
		return !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		return name, v
	}
	return "Error", s
}

// parseDartFrame parses "#4      quantity (file:///app/bin/shop.dart:4:14)".
func parseDartFrame(t string) (Frame, bool) {
	if len(t) < 4 || t[0] != '#' {
		return Frame{}, false
	}
	i := 1
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 1 || i >= len(t) || t[i] != ' ' || !strings.HasSuffix(t, ")") {
		return Frame{}, false
	}
	rest := trimLeft(t[i:])
	o := strings.LastIndex(rest, " (")
	if o <= 0 {
		return Frame{}, false
	}
	fn, loc := rest[:o], rest[o+2:len(rest)-1]
	if !strings.Contains(loc, ".dart") {
		return Frame{}, false
	}
	var f Frame
	if d := strings.IndexByte(fn, '.'); d > 0 {
		f.Module, f.Function = fn[:d], fn[d+1:]
	} else {
		f.Function = fn
	}
	path, line, col := loc, 0, 0
	if c := strings.LastIndexByte(path, ':'); c > 0 {
		if n, ok := atoi(path[c+1:]); ok {
			path, col = path[:c], n
			if c2 := strings.LastIndexByte(path, ':'); c2 > 0 {
				if n2, ok := atoi(path[c2+1:]); ok {
					path, line = path[:c2], n2
				}
			}
		}
	}
	if line == 0 && col > 0 {
		line, col = col, 0
	}
	f.Lineno, f.Colno = line, col
	f.Filename = path
	if p, ok := strings.CutPrefix(path, "file://"); ok {
		f.AbsPath = p
		if k := strings.LastIndexByte(p, '/'); k >= 0 {
			f.Filename = p[k+1:]
		}
	}
	f.InApp = !strings.HasPrefix(path, "dart:") && !strings.HasPrefix(path, "package:flutter/")
	return f, true
}
