package tail

import (
	"time"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/processors/multiline"
)

// A file in a runtime format (cri, docker) interleaves two streams, stdout and
// stderr, and the runtime splits long lines of each into parts. Each stream of a
// file is put back together on its own (streamState): its parts joined into the
// application's lines, its lines joined into records (stack traces), so that a
// stderr trace is not broken by stdout lines between its lines.
//
// Records then complete out of file order: a stdout record may end after the start
// of a stderr line still in parts. A file's saved position is therefore two things
// (position.Offset and position.Shipped): the offset reading resumes at, which is
// never past the start of anything not yet shipped (resume), and, per stream, the
// end of the last record shipped. Reading again from the offset rebuilds the
// unfinished lines, and the records that end at or before their stream's shipped
// offset are not sent again. A raw file has one stream, whose records complete in
// file order: there both are the same offset.

// lineInfo is a line a joiner holds: where it is in the file and when it was
// written.
type lineInfo struct {
	start, end int64
	time       time.Time
	runtime    bool // time is the runtime's, not when the line was read
}

// lineQueue is a FIFO of lineInfo.
type lineQueue struct {
	q    []lineInfo
	head int
}

func (o *lineQueue) push(v lineInfo) {
	if o.head == len(o.q) {
		o.q, o.head = o.q[:0], 0
	}
	o.q = append(o.q, v)
}

func (o *lineQueue) len() int { return len(o.q) - o.head }

// pop removes n lines and returns the first and the last of them.
func (o *lineQueue) pop(n int) (first, last lineInfo) {
	if o.len() == 0 {
		return lineInfo{}, lineInfo{}
	}
	n = min(max(n, 1), o.len())
	first, last = o.q[o.head], o.q[o.head+n-1]
	o.head += n
	return first, last
}

func (o *lineQueue) reset() { o.q, o.head = o.q[:0], 0 }

// streamState puts one stream of one file back together.
type streamState struct {
	join  *multiline.Joiner
	lines lineQueue // the lines join holds

	// The line the runtime split, while its parts arrive.
	partOn    bool
	part      []byte // at most max_line_bytes+1 bytes
	partOver  bool   // bytes past max_line_bytes were dropped
	partStart int64  // file offset of its first part
	partTime  time.Time
}

// keep appends b to the split line, up to max+1 bytes.
func (ss *streamState) keep(b []byte, maxLen int) {
	room := maxLen + 1 - len(ss.part)
	if len(b) > room {
		ss.part = append(ss.part, b[:max(room, 0)]...)
		ss.partOver = true
		return
	}
	ss.part = append(ss.part, b...)
}

// keepPartCap is the capacity of a split line's buffer kept for the next one; a
// larger one is let go once its line is done.
const keepPartCap = 64 << 10

// state returns t's stream i, creating it.
func (s *Source) state(t *tailer, i int) *streamState {
	if ss := t.st[i]; ss != nil {
		return ss
	}
	j, err := multiline.New(s.cfg.Multiline)
	if err != nil {
		// New checked this configuration already.
		panic("tail: multiline configuration changed after New: " + err.Error())
	}
	t.st[i] = &streamState{join: j}
	return t.st[i]
}

// joinPending reports whether a joiner of t holds lines.
func (t *tailer) joinPending() bool {
	for _, ss := range t.st {
		if ss != nil && ss.join.Pending() {
			return true
		}
	}
	return false
}

// partsPending reports whether t holds part of a line the runtime split.
func (t *tailer) partsPending() bool {
	for _, ss := range t.st {
		if ss != nil && ss.partOn {
			return true
		}
	}
	return false
}

// resetStreams forgets everything t's streams hold: the file is read again from
// its start.
func (t *tailer) resetStreams() {
	for _, ss := range t.st {
		if ss != nil {
			ss.join.Reset()
			ss.lines.reset()
			ss.partOn, ss.part, ss.partOver = false, ss.part[:0], false
		}
	}
}

// resume returns the offset reading may resume at once every record up to end is
// shipped: end, or the start of the earliest line of t still held.
func (t *tailer) resume(end int64) int64 {
	r := end
	for _, ss := range t.st {
		if ss == nil {
			continue
		}
		if ss.partOn && ss.partStart < r {
			r = ss.partStart
		}
		if ss.lines.len() > 0 {
			if h := ss.lines.q[ss.lines.head].start; h < r {
				r = h
			}
		}
	}
	return r
}

// takeLine handles one complete line of t's file, from file offset start to end
// (its newline included); cut says bytes of it past the reader's limit were
// dropped. It reports whether the line the application wrote was cut, and whether
// it held invalid UTF-8.
func (s *Source) takeLine(t *tailer, line []byte, cut bool, start, end int64, now time.Time) (trunc, invalid bool) {
	if t.kind == kindUnknown {
		t.kind = detectKind(line)
		t.split.keepCR = t.kind == kindCRI
		s.log.Debug("file format detected", "path", t.path, "format", t.kind.String())
	}
	var (
		e  entry
		ok bool
	)
	switch t.kind {
	case kindCRI:
		e, ok = parseCRI(line)
	case kindDocker:
		if !cut {
			e, s.scratch, ok = parseDocker(line, s.scratch[:0])
		}
	}
	if !ok {
		if t.kind != kindRaw {
			s.malformedLine(t)
		}
		if len(line) > s.maxLine {
			line, cut = cutAtRune(line, s.maxLine), true
		}
		str, bad := lineString(&s.lines, line, s.maxLine)
		s.addLine(t, streamRaw, str, start, end, now, false)
		return cut, bad
	}
	ss := s.state(t, e.stream)
	if !ss.partOn && !e.partial {
		msg := e.msg
		if len(msg) > s.maxLine {
			msg, cut = cutAtRune(msg, s.maxLine), true
		}
		str, bad := lineString(&s.lines, msg, s.maxLine)
		s.addLine(t, e.stream, str, start, end, e.time, true)
		return cut, bad
	}
	s.m.partsJoined.Inc()
	if !ss.partOn {
		ss.partOn, ss.partStart, ss.partTime = true, start, e.time
		ss.part, ss.partOver = ss.part[:0], false
	}
	ss.keep(e.msg, s.maxLine)
	if cut {
		ss.partOver = true
	}
	if e.partial {
		return false, false
	}
	return s.endPart(t, e.stream, end)
}

// endPart hands on the line stream i of t was putting together, ending at end.
func (s *Source) endPart(t *tailer, i int, end int64) (trunc, invalid bool) {
	ss := t.st[i]
	msg, trunc := ss.part, ss.partOver
	if len(msg) > s.maxLine {
		msg, trunc = cutAtRune(msg, s.maxLine), true
	}
	str, bad := lineString(&s.lines, msg, s.maxLine)
	ss.partOn = false
	s.addLine(t, i, str, ss.partStart, end, ss.partTime, true)
	if cap(ss.part) > keepPartCap {
		ss.part = nil
	} else {
		ss.part = ss.part[:0]
	}
	return trunc, bad
}

// detectKind picks the format of a file from its first line.
func detectKind(line []byte) formatKind {
	if _, ok := parseCRI(line); ok {
		return kindCRI
	}
	if len(line) > 0 && line[0] == '{' {
		if _, _, ok := parseDocker(line, nil); ok {
			return kindDocker
		}
	}
	return kindRaw
}

// malformedEvery is how often at most a source logs lines not in its format.
const malformedEvery = time.Minute

// malformedLine counts a line of t not in its runtime format, passed on as it is,
// and logs it at most once per malformedEvery.
func (s *Source) malformedLine(t *tailer) {
	s.m.malformed.Inc()
	s.malformedSince++
	if now := time.Now(); now.Sub(s.malformedLogged) >= malformedEvery {
		s.log.Warn("lines not in the file's format; passing them on as they are",
			"path", t.path, "format", t.kind.String(), "lines", s.malformedSince, "next_report_after", malformedEvery)
		s.malformedLogged, s.malformedSince = now, 0
	}
}

// addLine feeds one line of stream i, which spans [start, end) of the file, to the
// stream's joiner and batches the records it completes.
func (s *Source) addLine(t *tailer, i int, line string, start, end int64, at time.Time, runtime bool) {
	ss := s.state(t, i)
	ss.lines.push(lineInfo{start: start, end: end, time: at, runtime: runtime})
	for _, r := range ss.join.Add(line) {
		first, last := ss.lines.pop(r.Lines)
		s.addRecord(t, i, r.Text, first, last.end)
	}
}

// flushJoined hands the multi-line records the joiners hold to the batch: their
// lines are complete.
func (s *Source) flushJoined(t *tailer) {
	for i, ss := range t.st {
		if ss == nil || !ss.join.Pending() {
			continue
		}
		for _, r := range ss.join.Flush() {
			first, last := ss.lines.pop(r.Lines)
			s.addRecord(t, i, r.Text, first, last.end)
		}
	}
}

// finishParts hands on what a file that will not grow any more (renamed away and
// quiet, or the copy of a copytruncate) still holds of lines the runtime split:
// their rest, if any, went to the next file. It returns the bytes of parts flushed.
func (s *Source) finishParts(t *tailer) int {
	n := 0
	if t.kind != kindRaw && t.split.pending() {
		line, cut, _ := t.split.flush()
		n += len(line)
		s.takeLine(t, line, cut, t.lineStart, t.readOff, time.Now())
		t.lineStart = t.readOff
	}
	for i, ss := range t.st {
		if ss != nil && ss.partOn {
			n += len(ss.part)
			s.endPart(t, i, t.readOff)
		}
	}
	return n
}

// addRecord appends a record of stream i, whose first line is first and which ends
// at file offset end, to t's batch. A record that ends where one of its stream was
// shipped before a restart, or earlier, was sent then and is skipped.
func (s *Source) addRecord(t *tailer, i int, text string, first lineInfo, end int64) {
	if end <= t.emitted[i] {
		return
	}
	t.emitted[i] = end
	if t.batch == nil {
		t.batch = s.newBatch(min(max(t.lastLen, 16), s.cfg.BatchMaxLines))
	}
	t.batch = append(t.batch, pipeline.Record{Time: first.time, Line: text, Stream: t.labels[i], Metadata: t.meta})
	r := &t.batch[len(t.batch)-1]
	s.parser.Parse(text, r)
	if first.runtime {
		r.Time = first.time // the runtime's time wins over one in the text
	}
	t.batchEnd = t.resume(end)
	t.batchShipped = t.emitted
	t.batchBytes += r.Size()
}
