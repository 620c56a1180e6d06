package stacktrace

import "strings"

// IsPHPFatal reports whether line starts an uncaught PHP exception as PHP logs it:
// "PHP Fatal error:  Uncaught RuntimeException: msg in /app/x.php:5" (error_log) or
// "Fatal error: Uncaught …" (display_errors), possibly after a log prefix.
func IsPHPFatal(line string) bool {
	i := strings.Index(line, "Fatal error: ")
	if i < 0 {
		return false
	}
	return strings.HasPrefix(trimLeft(line[i+len("Fatal error: "):]), "Uncaught ")
}

// PHPExceptionHead returns where the exception begins in line, the first line of a
// PHP exception as Throwable::__toString writes it and an application logs it with
// error_log("payment failed: " . $e): "… RuntimeException: msg in /app/x.php:12",
// which "Stack trace:" follows. The type is the first word before ": " that names an
// exception (ends in Exception, Error or Throwable, or is namespaced), else the last
// capitalised one (not in capitals only: that is a level); the line must end in the
// throw position. -1: line is not such a line.
func PHPExceptionHead(line string) int {
	_, pos := phpMessageEnd(line)
	if pos.Lineno == 0 || pos.Filename == "" {
		return -1
	}
	fallback := -1
	for i := 0; i < len(line); {
		k := strings.Index(line[i:], ": ")
		if k < 0 {
			break
		}
		end := i + k
		start := end
		for start > 0 && isPHPNameByte(line[start-1]) {
			start--
		}
		if start < end && (start == 0 || line[start-1] == ' ' || line[start-1] == ']' || line[start-1] == ':') {
			word := line[start:end]
			switch {
			case word[0] >= '0' && word[0] <= '9':
			case strings.HasSuffix(word, "Exception"), strings.HasSuffix(word, "Error"),
				strings.HasSuffix(word, "Throwable"), strings.Contains(word, `\`):
				return start
			case word[0] >= 'A' && word[0] <= 'Z' && strings.ToUpper(word) != word:
				fallback = start
			}
		}
		i = end + 2
	}
	return fallback
}

func isPHPNameByte(c byte) bool {
	return c == '_' || c == '\\' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parsePHP parses a PHP exception: the "Uncaught Type: msg in file:line" line of an
// uncaught one (or "… Type: msg in file:line" of one an application logged),
// "Stack trace:" and "#N file(line): function()" frames, then a "Next Type: msg in
// file:line" block for each exception wrapping the previous one (PHP prints the
// innermost first), and "thrown in file on line N".
func parsePHP(text string) (Trace, bool) {
	r := lineReader{s: text}
	var (
		nodes []node
		cur   = -1
		prev  Frame // the position of the previous "#N" line: where the next function runs
	)
	for {
		line, _, ok := r.next()
		if !ok {
			break
		}
		t := trimLeft(line)
		var head string
		switch {
		case cur < 0 && IsPHPFatal(line):
			i := strings.Index(line, "Uncaught ")
			head = line[i+len("Uncaught "):]
		case cur < 0 && trimLeft(r.peek()) == "Stack trace:" && PHPExceptionHead(line) >= 0:
			head = line[PHPExceptionHead(line):]
		case cur >= 0 && strings.HasPrefix(t, "Next "):
			head = t[len("Next "):]
		case cur >= 0 && t == "Stack trace:", cur >= 0 && strings.HasPrefix(t, "thrown in "):
			continue
		case cur >= 0 && isBlank(line):
			continue
		case cur >= 0 && strings.HasPrefix(t, "#"):
			f, pos, ok := parsePHPFrame(t)
			if !ok {
				return finish(LangPHP, nodes, true)
			}
			// "#0 file(10): connect()": connect runs at the throw position (for #0) or at
			// the position of the line before; file(10) is where the next one runs.
			f.Filename, f.AbsPath, f.Lineno = prev.Filename, prev.AbsPath, prev.Lineno
			f.InApp = phpInApp(f.AbsPath)
			nodes[cur].addNewestFirst(f)
			prev = pos
			continue
		case cur >= 0:
			if nodes[cur].total == 0 {
				// The message goes on over several lines.
				v, loc := phpMessageEnd(line)
				nodes[cur].exc.Value += "\n" + v
				if loc.Lineno > 0 {
					prev = loc
				}
				continue
			}
			return finish(LangPHP, nodes, true)
		default:
			continue
		}
		if len(nodes) == MaxExceptions {
			break
		}
		n := node{parent: -1}
		typ, rest, _ := strings.Cut(head, ": ")
		typ = strings.TrimSpace(typ)
		if k := strings.LastIndexByte(typ, '\\'); k >= 0 {
			n.exc.Module, typ = typ[:k], typ[k+1:]
		}
		n.exc.Type = typ
		v, loc := phpMessageEnd(rest)
		n.exc.Value = v
		prev = loc
		if cur >= 0 {
			// "Next": the new exception wraps the one before it.
			nodes[cur].parent, nodes[cur].source = len(nodes), "cause"
		}
		nodes = append(nodes, n)
		cur = len(nodes) - 1
	}
	return finish(LangPHP, nodes, true)
}

// phpMessageEnd splits "message in /app/x.php:12" into the message and the position.
func phpMessageEnd(s string) (string, Frame) {
	i := strings.LastIndex(s, " in ")
	if i < 0 {
		return s, Frame{}
	}
	loc := s[i+4:]
	c := strings.LastIndexByte(loc, ':')
	if c <= 0 {
		return s, Frame{}
	}
	n, ok := atoi(loc[c+1:])
	if !ok {
		return s, Frame{}
	}
	return s[:i], phpPos(loc[:c], n)
}

func phpPos(path string, line int) Frame {
	f := Frame{Filename: path, Lineno: line}
	if isAbs(path) {
		f.AbsPath = path
		if k := strings.LastIndexAny(path, `/\`); k >= 0 {
			f.Filename = path[k+1:]
		}
	}
	return f
}

// parsePHPFrame parses "#0 /app/x.php(10): Class->method()" or "#2 {main}": the
// function called and the position it was called from.
func parsePHPFrame(t string) (f Frame, pos Frame, ok bool) {
	i := 1
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 1 || i >= len(t) || t[i] != ' ' {
		return Frame{}, Frame{}, false
	}
	rest := t[i+1:]
	if rest == "{main}" {
		return Frame{Function: "{main}"}, Frame{}, true
	}
	c := strings.Index(rest, "): ")
	if c > 0 {
		loc := rest[:c]
		if o := strings.LastIndexByte(loc, '('); o > 0 {
			if n, ok := atoi(loc[o+1:]); ok {
				pos = phpPos(loc[:o], n)
			}
		}
		rest = rest[c+3:]
	} else if strings.HasPrefix(rest, "[internal function]: ") {
		rest = rest[len("[internal function]: "):]
	}
	if o := strings.IndexByte(rest, '('); o > 0 {
		rest = rest[:o]
	}
	if rest == "" {
		return Frame{}, Frame{}, false
	}
	for _, sep := range []string{"->", "::"} {
		if k := strings.LastIndex(rest, sep); k > 0 {
			return Frame{Module: rest[:k], Function: rest[k+len(sep):]}, pos, true
		}
	}
	return Frame{Function: rest}, pos, true
}

// phpInApp: code outside Composer's vendor directory is the application's.
func phpInApp(path string) bool {
	return path != "" && !strings.Contains(path, "/vendor/")
}
