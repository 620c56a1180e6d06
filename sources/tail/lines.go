package tail

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/outrider-dev/outrider/internal/strarena"
	"github.com/outrider-dev/outrider/pipeline"
)

// lineSplitter cuts a byte stream, fed in chunks of any size, into lines of at most
// max bytes. The bytes of a longer line past max are dropped. A trailing "\r" is
// removed from each line unless keepCR is set.
type lineSplitter struct {
	max     int
	keepCR  bool   // keep a trailing "\r": it is part of the message (CRI)
	partial []byte // the current line so far, at most max+1 bytes
	over    bool   // bytes of the current line were dropped
	skip    bool   // drop everything up to and including the next '\n'
	eatNL   bool   // a partial line was flushed: a '\n' right after it ends it
}

// next returns the next complete line of the stream from p, which continues what
// earlier calls were given. n is how many bytes of p it consumed; when p holds no
// complete line, ok is false and all of p was consumed and kept. line is only valid
// until the next call; cut reports that the line was longer than max.
func (s *lineSplitter) next(p []byte) (line []byte, cut bool, n int, ok bool) {
	if s.eatNL && len(p) > 0 {
		s.eatNL = false
		if p[0] == '\n' {
			n = 1
			p = p[1:]
		}
	}
	if s.skip {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return nil, false, n + len(p), false
		}
		s.skip = false
		n += i + 1
		p = p[i+1:]
	}
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		s.keep(p)
		return nil, false, n + len(p), false
	}
	n += i + 1
	seg := p[:i]
	if len(s.partial) == 0 && !s.over {
		line = seg
	} else {
		s.keep(seg)
		line, cut = s.partial, s.over
		s.partial, s.over = s.partial[:0], false
	}
	line, cut = s.finish(line, cut)
	return line, cut, n, true
}

// flush returns the incomplete line held, if any, as a line of its own: the writer
// has not finished it and has been quiet for a while. The rest of an over-long line
// that arrives later is still dropped; a lone "\n" that arrives later is taken as the
// end of the flushed line.
func (s *lineSplitter) flush() (line []byte, cut bool, ok bool) {
	if !s.pending() {
		return nil, false, false
	}
	line, cut = s.partial, s.over
	if cut {
		s.skip = true
	} else {
		s.eatNL = true
	}
	s.partial, s.over = s.partial[:0], false
	line, cut = s.finish(line, cut)
	return line, cut, true
}

// pending reports whether an incomplete line is held.
func (s *lineSplitter) pending() bool { return len(s.partial) > 0 || s.over }

// reset forgets everything held, for a file read again from its start.
func (s *lineSplitter) reset() {
	s.partial, s.over, s.skip, s.eatNL = s.partial[:0], false, false, false
}

// keep appends b to the current line, up to max+1 bytes (one more than max so that a
// line of exactly max bytes and a "\r" is not taken as cut).
func (s *lineSplitter) keep(b []byte) {
	room := s.max + 1 - len(s.partial)
	if len(b) > room {
		s.partial = append(s.partial, b[:room]...)
		s.over = true
		return
	}
	s.partial = append(s.partial, b...)
}

func (s *lineSplitter) finish(line []byte, cut bool) ([]byte, bool) {
	if !cut && !s.keepCR && len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) > s.max {
		line = cutAtRune(line, s.max)
		cut = true
	}
	return line, cut
}

// cutAtRune returns b cut to at most max bytes, at a rune boundary when the bytes
// around max are valid UTF-8.
func cutAtRune(b []byte, max int) []byte {
	if len(b) <= max {
		return b
	}
	n := max
	for k := 0; k < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(b[n]); k++ {
		n--
	}
	if !utf8.RuneStart(b[n]) {
		n = max
	}
	return b[:n]
}

// lineString returns line as a string of valid UTF-8 of at most max bytes: each run
// of invalid bytes becomes U+FFFD, and the line is cut at max bytes if the
// replacements made it longer. invalid reports whether anything was replaced.
//
// A valid line's string comes from a: the lines of a backlog cost a copy into a
// shared block each instead of an allocation each.
func lineString(a *strarena.Arena, line []byte, max int) (s string, invalid bool) {
	if len(line) == 0 || pipeline.ValidUTF8(unsafe.String(&line[0], len(line))) {
		return a.Str(line), false
	}
	out := make([]byte, 0, len(line)+8)
	const repl = "\uFFFD"
	lastBad := false
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		if r == utf8.RuneError && size == 1 {
			i++
			if lastBad {
				continue
			}
			if len(out)+len(repl) > max {
				break
			}
			out = append(out, repl...)
			lastBad = true
			continue
		}
		if len(out)+size > max {
			break
		}
		out = append(out, line[i:i+size]...)
		i += size
		lastBad = false
	}
	return string(out), true
}
