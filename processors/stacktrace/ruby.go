package stacktrace

import "strings"

// parseRuby parses a Ruby exception as the interpreter prints it ("app.rb:10:in
// 'method': msg (RuntimeError)" then "\tfrom app.rb:5:in 'block in foo'", with
// backtick or straight quotes, a multi-line message, and its causes after the
// backtrace), or as loggers print it: a "msg (Type)" or Rails "Type (msg):" line
// followed by bare "app.rb:10:in 'method'" lines.
func parseRuby(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes   []node
		cur     = -1
		pending Exception // the last line before the first frame, as a header
		hasPend bool
		cont    bool // the current header's message may go on
		snippet bool // inside the source excerpt after a message
	)
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		t := trimLeft(line)
		rest, from := strings.CutPrefix(t, "from ")
		if f, msg, ok := parseRubyLoc(rest); ok {
			if !from && msg != "" {
				// The first frame of a new exception: the outermost one, or the cause of
				// the one before.
				if len(nodes) == MaxExceptions {
					break
				}
				n := node{parent: -1}
				n.exc.Type, n.exc.Value = rubyMessage(msg)
				n.exc.Module = rubyModule(n.exc.Type)
				if cur >= 0 {
					n.parent, n.source = cur, "cause"
				}
				nodes = append(nodes, n)
				cur = len(nodes) - 1
				nodes[cur].addNewestFirst(f)
				cont, snippet = true, false
				continue
			}
			if cur < 0 {
				if !hasPend {
					continue
				}
				nodes = append(nodes, node{parent: -1, exc: pending})
				cur = 0
			}
			nodes[cur].addNewestFirst(f)
			cont, snippet = false, false
			continue
		}
		if strings.HasPrefix(t, "... ") && strings.HasSuffix(t, " levels...") {
			continue // "\t ... 12 levels..." elides frames
		}
		if cur >= 0 {
			if cont && isBlank(line) {
				// Ruby 3.1+ error_highlight: a blank line, the failing source line and
				// a caret line, then the "from" lines.
				cont, snippet = false, true
				continue
			}
			if snippet {
				continue
			}
			if cont && !isBlank(line) {
				n := &nodes[cur]
				if len(n.exc.Value) < MaxValueBytes {
					n.exc.Value += "\n" + line
				}
				continue
			}
			break
		}
		if !isBlank(line) {
			pending, hasPend = rubyLogHeader(line), true
		}
	}
	return finish(LangRuby, nodes, true)
}

// parseRubyLoc parses "app.rb:10:in 'method'" (or "in `method'"), possibly followed by
// ": message (Type)", which it returns as msg. A log prefix before the path is skipped.
func parseRubyLoc(t string) (f Frame, msg string, ok bool) {
	i := strings.Index(t, ":in ")
	if i <= 0 || i+5 > len(t) || t[i+4] != '`' && t[i+4] != '\'' {
		return Frame{}, "", false
	}
	loc := t[:i]
	c := strings.LastIndexByte(loc, ':')
	if c <= 0 {
		return Frame{}, "", false
	}
	lineno, ok := atoi(loc[c+1:])
	if !ok {
		return Frame{}, "", false
	}
	file := loc[:c]
	if sp := strings.LastIndexByte(file, ' '); sp >= 0 {
		file = file[sp+1:]
	}
	if file == "" {
		return Frame{}, "", false
	}
	body := t[i+5:]
	end := -1
	for j := 0; j < len(body); j++ {
		if body[j] == '\'' && (j+1 == len(body) || body[j+1] == ':') {
			end = j
			break
		}
	}
	if end < 0 {
		return Frame{}, "", false
	}
	if end+1 < len(body) {
		msg = strings.TrimSpace(body[end+2:])
	}
	f = Frame{Function: body[:end], Filename: file, Lineno: lineno, InApp: rubyInApp(file)}
	if isAbs(file) {
		f.AbsPath = file
	}
	return f, msg, true
}

// rubyMessage splits "undefined method 'x' for nil (NoMethodError)" into its type and
// message; "unhandled exception" (an empty message) has no type.
func rubyMessage(msg string) (typ, value string) {
	if strings.HasSuffix(msg, ")") {
		if open := strings.LastIndex(msg, " ("); open >= 0 {
			if name := msg[open+2 : len(msg)-1]; isRubyConst(name) {
				return name, msg[:open]
			}
		}
		if len(msg) > 2 && msg[0] == '(' && isRubyConst(msg[1:len(msg)-1]) {
			return msg[1 : len(msg)-1], ""
		}
	}
	return "", msg
}

// rubyLogHeader reads the line a logger prints before a backtrace: "boom
// (RuntimeError)" or Rails' "RuntimeError (boom):", after a log prefix.
func rubyLogHeader(line string) Exception {
	s := strings.TrimSpace(stripLogPrefix(line))
	var e Exception
	if strings.HasSuffix(s, "):") {
		if open := strings.Index(s, " ("); open > 0 && isRubyConst(s[:open]) {
			e.Type, e.Value = s[:open], s[open+2:len(s)-2]
			e.Module = rubyModule(e.Type)
			return e
		}
	}
	e.Type, e.Value = rubyMessage(s)
	e.Module = rubyModule(e.Type)
	return e
}

// rubyModule returns the namespace of a class, "Foo" for "Foo::BarError", as Sentry's
// Ruby SDK does.
func rubyModule(typ string) string {
	if i := strings.LastIndex(typ, "::"); i >= 0 {
		return typ[:i]
	}
	return ""
}

// isRubyConst matches a constant path: "RuntimeError", "ActiveRecord::RecordNotFound".
func isRubyConst(s string) bool {
	if s == "" || !isUpper(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) && s[i] != ':' {
			return false
		}
	}
	return true
}

// rubyInApp: gems, the standard library and the interpreter's internals are not
// application code.
func rubyInApp(file string) bool {
	switch {
	case strings.HasPrefix(file, "<internal:"), strings.Contains(file, "/gems/"),
		strings.Contains(file, "/lib/ruby/"), strings.Contains(file, "/rubygems/"),
		strings.Contains(file, "/vendor/bundle/"), strings.Contains(file, "/.rbenv/"),
		strings.Contains(file, "/.rvm/"):
		return false
	}
	return true
}
