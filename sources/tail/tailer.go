package tail

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/outrider-dev/outrider/internal/strarena"
	"github.com/outrider-dev/outrider/pipeline"
)

// tailer follows one file.
type tailer struct {
	opened time.Time // when the file was opened
	id     fileID
	f      *os.File         // nil while closed: released, or parked until its turn
	meta   []pipeline.Label // shared by the file's records; len == cap

	readOff int64 // bytes of f read so far, held ones included
	// held are bytes read and not yet split into lines: the batch filled up and could
	// not be handed over. They are consumed before f is read again.
	held    []byte
	heldBuf []byte
	split   lineSplitter
	// lineStart is the file offset the next line begins at.
	lineStart int64
	kind      formatKind // the file's format; kindUnknown until auto saw a line
	st        [numStreams]*streamState
	labels    *[numStreams]*pipeline.Stream // the stream of each of the file's streams
	uid       string                        // the pod uid path_metadata found, or ""
	// emitted is, per stream, the end offset of the last record batched (or
	// shipped before a restart): a record ending there or before is not sent again.
	emitted  [numStreams]int64
	batch    []pipeline.Record
	batchEnd int64 // where reading may resume once batch is shipped (streams.go)
	// batchShipped is emitted as of the last record in batch.
	batchShipped [numStreams]int64
	// batchBytes is the size of batch, as pipeline.Record.Size counts it.
	batchBytes int
	lastLen    int // records in the last batch, to size the next

	atEOF      bool
	lastActive time.Time // last data read, or when the tailer began to drain
	gone       bool      // no longer matched: read to its end, then close
	copy       bool      // the copy of a copytruncate: complete; an unfinished last line was cut
	parked     bool      // closed to keep max_rotated_files; reopened by id in dir
	dir        string    // directory a parked file is looked up in
	readFailed bool      // a read error was logged

	// stopAt is, while the source stops, the size the file had then: it is read up
	// to there before the source returns. stopSet says it was taken.
	stopAt  int64
	stopSet bool

	// Guarded by Source.mu.
	path    string
	spans   []*span // batches handed over, in order, until acknowledged
	unacked int     // spans not yet acknowledged, including those from before a truncation
	acked   int64   // offset up to which every batch was acknowledged
	// shipped is, per stream, the end of the last acknowledged record (streams.go).
	shipped [numStreams]int64
	size    int64  // last known size of the file
	fp      uint64 // fingerprint of the first fpLen bytes
	fpLen   int
}

// span is a batch handed to the sink: the file offset just past its last record, and
// its weight against max_inflight_batches.
type span struct {
	s       *Source
	t       *tailer
	recs    []pipeline.Record // the batch, reused once acknowledged
	end     int64
	shipped [numStreams]int64
	lines   int
	bytes   int
	done    bool
}

// ack records the acknowledgement of the span's batch. Acknowledgements may come in
// any order and from any goroutine: the file's acknowledged offset advances over the
// longest run of acknowledged batches from the oldest. A permanent error also
// counts: the sink gave up on those records and said so.
//
// The positions are saved once nothing is in flight any more, or once
// max_inflight_batches acknowledgements were not saved, whichever comes first (and
// on the saver's ticker): a source shipping a backlog saves every few batches rather
// than after each, and a SIGKILL still sends again at most max_inflight_batches
// batches in flight and as many acknowledged.
func (sp *span) ack(error) {
	s, t := sp.s, sp.t
	s.mu.Lock()
	if sp.done {
		s.mu.Unlock()
		return
	}
	sp.done = true
	t.unacked--
	s.recycle(sp.recs)
	sp.recs = nil
	advanced := false
	for len(t.spans) > 0 && t.spans[0].done {
		t.acked = t.spans[0].end
		t.shipped = t.spans[0].shipped
		t.spans[0] = nil
		t.spans = t.spans[1:]
		advanced = true
	}
	s.release(sp)
	s.unsavedAcks++
	save := advanced && (s.inflight == 0 || s.unsavedAcks >= s.saveEvery)
	if save {
		s.unsavedAcks = 0
	}
	s.mu.Unlock()
	signal(s.ackC)
	if save {
		signal(s.saveC)
	}
}

// turn is what a read turn left a file in.
type turn int

const (
	turnMore    turn = iota // more to read
	turnEOF                 // read to its end
	turnStalled             // a full batch waits for acknowledgements
)

// readAll gives each open file turns until every one is at its end or stalled, or
// turnsPerLoop turns were taken; it reports whether some file may have more.
func (s *Source) readAll() bool {
	for range turnsPerLoop {
		more := false
		for _, t := range s.tailers {
			if t.f == nil {
				continue
			}
			if t.atEOF && len(t.held) == 0 {
				if len(t.batch) > 0 {
					s.handOver(t, false)
				}
				continue
			}
			if s.readTurn(t) == turnMore {
				more = true
			}
		}
		if !more {
			return false
		}
	}
	return true
}

// readTurn reads up to chunksPerTurn buffers of t. At the end of the file it hands the
// batch over and checks for truncation.
func (s *Source) readTurn(t *tailer) turn {
	now := time.Now()
	if len(t.held) > 0 {
		n := s.feed(t, t.held, t.readOff-int64(len(t.held)), now)
		t.held = t.held[n:]
		if len(t.held) > 0 {
			return turnStalled
		}
	}
	if s.full(t) && !s.handOver(t, false) {
		return turnStalled
	}
	for range chunksPerTurn {
		n, err := t.f.Read(s.buf)
		if n > 0 {
			// Lines without a time of their own get the time of their read, one per
			// buffer: a stream's entries sharing one timestamp are hard to page through.
			now = time.Now()
			t.lastActive = now
			base := t.readOff
			t.readOff += int64(n)
			s.m.bytesRead.Add(float64(n))
			t.readFailed = false
			if used := s.feed(t, s.buf[:n], base, now); used < n {
				t.held = append(t.heldBuf[:0], s.buf[used:n]...)
				t.heldBuf = t.held
				s.refreshFingerprint(t)
				return turnStalled
			}
		}
		if err != nil || n == 0 {
			if err != nil && !errors.Is(err, io.EOF) && !t.readFailed {
				s.log.Warn("cannot read file; will retry", "path", t.path, "error", err)
				t.readFailed = true
			}
			t.atEOF = true
			break
		}
	}
	s.refreshFingerprint(t)
	if !t.atEOF {
		return turnMore
	}
	if len(t.batch) > 0 {
		s.handOver(t, false)
	}
	s.check(t)
	if t.atEOF {
		return turnEOF
	}
	return turnMore
}

// check looks for truncation of t: shorter than what was read, or other first bytes
// (truncated and written again past the read position before it was noticed).
func (s *Source) check(t *tailer) {
	if t.f == nil || t.copy {
		return
	}
	fi, err := t.f.Stat()
	if err != nil {
		return
	}
	size := fi.Size()
	if size < t.readOff || s.rewritten(t) {
		s.truncated(t, size)
		return
	}
	if size != t.readOff && !t.readFailed {
		t.atEOF = false
	}
	s.setSize(t, size)
}

// rewritten reports whether the first bytes of t are no longer those it was
// fingerprinted with.
func (s *Source) rewritten(t *tailer) bool {
	if t.fpLen == 0 {
		return false
	}
	h, ok := hashPrefix(t.f, t.fpLen)
	return !ok || h != t.fp
}

// feed splits p, the bytes of t from file offset base, into lines and feeds them on.
// It stops after a line that filled the batch when the batch cannot be handed over,
// and returns how many bytes of p it used.
func (s *Source) feed(t *tailer, p []byte, base int64, now time.Time) int {
	var lines, truncated, invalid int
	defer func() { s.m.linesRead.Add(float64(lines)) }()
	defer func() {
		if truncated > 0 {
			s.m.linesTruncated.Add(float64(truncated))
		}
		if invalid > 0 {
			s.m.invalidUTF8.Add(float64(invalid))
		}
	}()
	used := 0
	for used < len(p) {
		if s.full(t) && !s.handOver(t, false) {
			break
		}
		line, cut, n, ok := t.split.next(p[used:])
		used += n
		if !ok {
			break
		}
		lines++
		end := base + int64(used)
		start := t.lineStart
		t.lineStart = end
		cut, bad := s.takeLine(t, line, cut, start, end, now)
		if cut {
			truncated++
		}
		if bad {
			invalid++
		}
	}
	return used
}

// full reports whether t's batch is full.
func (s *Source) full(t *tailer) bool {
	return len(t.batch) >= s.cfg.BatchMaxLines || t.batchBytes >= int(s.cfg.BatchMaxBytes)
}

// flushPending hands over everything held for t: an unfinished last line, the pending
// multi-line record and the batch. It is for a file that has been quiet for
// flush_after.
func (s *Source) flushPending(t *tailer) {
	if t.kind != kindRaw {
		// The runtimes write whole lines; an unfinished one is still being written.
	} else if line, cut, ok := t.split.flush(); ok {
		s.m.linesRead.Inc()
		if cut {
			s.m.linesTruncated.Inc()
		}
		str, bad := lineString(&s.lines, line, s.maxLine)
		if bad {
			s.m.invalidUTF8.Inc()
		}
		s.addLine(t, streamRaw, str, t.lineStart, t.readOff, time.Now(), false)
		// A '\n' right after is taken as the end of this line (lineSplitter.flush),
		// so the next line starts past it; resume offsets of raw files are record
		// ends, never line starts, so this byte does not matter.
		t.lineStart = t.readOff
	}
	s.flushJoined(t)
	if len(t.batch) > 0 {
		s.handOver(t, false)
	}
}

// dropCut drops the unfinished line t holds: a truncation destroyed its rest. It
// returns the bytes dropped.
func (s *Source) dropCut(t *tailer) int {
	if !t.split.pending() {
		return 0
	}
	n := len(t.split.partial)
	t.split.reset()
	s.m.cutLines.Inc()
	return n
}

// handOver queues t's batch for the sink when max_inflight_batches leaves room for
// it (or force is set), and reports whether the batch is gone. Reading goes on while
// earlier batches wait for their acknowledgements; only a full batch waits.
func (s *Source) handOver(t *tailer, force bool) bool {
	if len(t.batch) == 0 {
		return true
	}
	recs, end, bytes := t.batch, t.batchEnd, t.batchBytes
	sp := &span{s: s, t: t, recs: recs, end: end, shipped: t.batchShipped, lines: len(recs), bytes: bytes}
	s.mu.Lock()
	if !force && s.inflight > 0 &&
		(s.inflightLines+sp.lines > s.capLines || s.inflightBytes+sp.bytes > s.capBytes) {
		s.mu.Unlock()
		return false
	}
	s.inflight++
	s.inflightLines += sp.lines
	s.inflightBytes += sp.bytes
	t.spans = append(t.spans, sp)
	t.unacked++
	s.mu.Unlock()
	s.m.batchesInflight.Inc()
	t.batch, t.lastLen, t.batchBytes = nil, len(recs), 0
	s.out.put(outBatch{b: pipeline.Batch{Records: recs, Ack: sp.ack}, sp: sp})
	return true
}

// recycle keeps the records of an acknowledged batch for a later batch: the sink
// is done with them (pipeline.Batch), and a batch of records is the largest
// allocation per line that holds pointers. Their strings are cleared first, so that
// they do not keep lines alive. Call with s.mu held.
func (s *Source) recycle(recs []pipeline.Record) {
	if cap(recs) == 0 || len(s.free) >= cap(s.free) {
		return
	}
	clear(recs)
	s.free = append(s.free, recs[:0])
}

// newBatch returns an empty batch for about n records: a recycled one if any.
func (s *Source) newBatch(n int) []pipeline.Record {
	s.batchesBegun++
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := len(s.free); k > 0 {
		recs := s.free[k-1]
		s.free[k-1] = nil
		s.free = s.free[:k-1]
		return recs
	}
	return make([]pipeline.Record, 0, n)
}

// releaseIdle lets the recycled batches and the lines' block go when no batch was
// begun since the last call (a poll interval): a source that went quiet after a burst
// keeps no memory for the next one.
func (s *Source) releaseIdle() {
	if s.batchesBegun > 0 {
		s.batchesBegun = 0
		return
	}
	s.mu.Lock()
	clear(s.free)
	s.free = s.free[:0]
	s.mu.Unlock()
	s.lines = strarena.Arena{}
}

// release takes sp's weight out of the in-flight totals. Call with s.mu held.
func (s *Source) release(sp *span) {
	s.inflight--
	s.inflightLines -= sp.lines
	s.inflightBytes -= sp.bytes
	if !s.stopped {
		s.m.batchesInflight.Dec()
	}
}

// withdraw forgets a span whose batch the sink did not take.
func (s *Source) withdraw(sp *span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp.done {
		return
	}
	sp.done = true
	t := sp.t
	for i, x := range t.spans {
		if x == sp {
			t.spans = append(t.spans[:i], t.spans[i+1:]...)
			break
		}
	}
	t.unacked--
	s.release(sp)
}

// truncated handles t found shorter than what was read, or rewritten. With
// copytruncate the file was copied first: t then follows the copy, from where it was,
// to the copy's end (so nothing unread is lost and an unfinished line is completed),
// and a new tailer follows the truncated file from its start. Without a copy, what
// was read of the old content is handed over, an unfinished line is dropped, and t
// reads the file again from its start.
func (s *Source) truncated(t *tailer, size int64) {
	s.m.truncations.Inc()
	s.mu.Lock()
	seen := max(t.size, t.readOff)
	s.mu.Unlock()
	if c := s.findCopy(t); c != nil {
		s.followCopy(t, c, size, seen)
		return
	}
	lost := seen - t.readOff + int64(s.dropCut(t))
	if lost > 0 {
		s.m.lostTruncated.Add(float64(lost))
	}
	s.log.Warn("file truncated and no copy of it found; reading it again from the start",
		"path", t.path, "size", size, "offset", t.readOff, "lost_bytes", lost)
	s.flushJoined(t)
	t.held = nil
	s.handOver(t, true)
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		s.log.Warn("cannot rewind truncated file", "path", t.path, "error", err)
		return
	}
	t.split.reset()
	t.resetStreams()
	t.batch, t.batchBytes = nil, 0
	t.readOff, t.lineStart = 0, 0
	t.emitted = [numStreams]int64{}
	t.atEOF = false
	t.lastActive = time.Now()
	n := int(min(size, fingerprintBytes))
	fp, ok := hashPrefix(t.f, n)
	if !ok {
		n = 0
		fp, _ = hashPrefix(t.f, 0)
	}
	s.mu.Lock()
	t.spans = nil // acknowledgements of the old content no longer move the position
	t.acked = 0
	t.shipped = [numStreams]int64{}
	t.size = size
	t.fp, t.fpLen = fp, n
	s.mu.Unlock()
}

// followCopy makes t the tailer of the copy c of its file, which was truncated to
// size, and starts a new tailer on the truncated file. seen is how far the file was
// known to reach before.
func (s *Source) followCopy(t *tailer, c *foundCopy, size, seen int64) {
	orig, origID, path := t.f, t.id, t.path
	if _, err := c.f.Seek(t.readOff, io.SeekStart); err != nil {
		_ = c.f.Close()
		s.log.Warn("cannot read the copy of a truncated file", "path", c.path, "error", err)
		return
	}
	t.f = c.f
	delete(s.byID, origID)
	s.byID[c.id] = t
	t.gone, t.copy, t.atEOF = true, true, false
	t.lastActive = time.Now()
	s.mu.Lock()
	t.id = c.id
	t.path = c.path
	t.size = c.size
	s.mu.Unlock()
	lost := seen - max(c.size, t.readOff)
	if lost > 0 {
		s.m.lostTruncated.Add(float64(lost))
	}
	s.m.copies.Inc()
	s.log.Info("file copied and truncated (copytruncate); reading the rest from the copy",
		"path", path, "copy", c.path, "offset", t.readOff, "copy_size", c.size, "lost_bytes", max(lost, 0))

	// t's share of files_open moves to the copy; the new tailer adds its own.
	if _, err := orig.Seek(0, io.SeekStart); err != nil {
		_ = orig.Close()
		s.log.Warn("cannot rewind truncated file; will open it again at the next scan", "path", path, "error", err)
		delete(s.lastOwner, path)
		return
	}
	nt, err := s.newTailer(orig, path, origID, size, 0)
	if err != nil {
		_ = orig.Close()
		delete(s.lastOwner, path)
		return
	}
	s.lastOwner[path] = nt
}

// refreshFingerprint hashes more of the start of t, up to fingerprintBytes, as the
// file grows.
func (s *Source) refreshFingerprint(t *tailer) {
	if t.fpLen >= fingerprintBytes || t.readOff <= int64(t.fpLen) {
		return
	}
	n := int(min(t.readOff, fingerprintBytes))
	h, ok := hashPrefix(t.f, n)
	if !ok {
		return
	}
	s.mu.Lock()
	t.fp, t.fpLen = h, n
	s.mu.Unlock()
}

func (s *Source) setSize(t *tailer, size int64) {
	s.mu.Lock()
	t.size = max(size, t.readOff)
	s.mu.Unlock()
}

// housekeep hands over what files that have been quiet for flush_after still hold,
// closes files no longer followed once read through, and returns when it wants to run
// again (0: no need).
func (s *Source) housekeep(now time.Time) time.Duration {
	after := s.cfg.Multiline.FlushAfter
	var next time.Time
	wake := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for _, t := range s.tailers {
		if t.f == nil || !t.atEOF || len(t.held) > 0 {
			continue
		}
		if t.copy && t.split.pending() {
			// The copy is complete: its unfinished last line was cut by the
			// truncation, and its rest is gone.
			if n := s.dropCut(t); n > 0 {
				s.m.lostTruncated.Add(float64(n))
				s.log.Warn("dropped a line cut by copytruncate", "path", t.path, "bytes", n)
			}
		}
		pending := (t.kind == kindRaw && t.split.pending()) || t.joinPending()
		if !pending && !t.gone {
			continue
		}
		due := t.lastActive.Add(after)
		if pending && now.Before(due) {
			wake(due)
			continue
		}
		if t.gone {
			quiet := t.copy
			if due := t.lastActive.Add(max(after, s.releaseQuiet)); !quiet && now.Before(due) {
				wake(due)
			} else if t.kind != kindRaw && (t.partsPending() || t.split.pending()) {
				// The file is done: the rest of a line it holds parts of went to
				// the next file, and is read there as a line of its own.
				if n := s.finishParts(t); n > 0 {
					s.log.Info("a file no longer written ends in part of a line; shipped that part as a line of its own",
						"path", t.path, "bytes", n)
				}
				pending = true
			}
		}
		if pending {
			s.flushPending(t)
		}
	}
	s.releaseFiles(now)
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(now), time.Millisecond)
}

// readThrough reports whether t, no longer followed, has nothing left to read: at its
// end, nothing held, and quiet for releaseQuiet (a renamed file may still be written
// until its writer reopens its path; a copy is complete).
func (s *Source) readThrough(t *tailer, now time.Time) bool {
	if !t.gone || t.f == nil || !t.atEOF || len(t.held) > 0 || len(t.batch) > 0 ||
		t.split.pending() || t.joinPending() || t.partsPending() {
		return false
	}
	if !t.copy && now.Sub(t.lastActive) < max(s.cfg.Multiline.FlushAfter, s.releaseQuiet) {
		return false
	}
	fi, err := t.f.Stat()
	return err == nil && fi.Size() <= t.readOff
}

// releaseFiles closes the files no longer followed that were read through, forgets
// them once their batches are acknowledged, and keeps at most max_rotated_files of
// them open.
func (s *Source) releaseFiles(now time.Time) {
	var forget []*tailer
	for _, t := range s.tailers {
		if !t.gone {
			continue
		}
		if s.readThrough(t, now) {
			s.closeFile(t)
			delete(s.byID, t.id)
			for p, o := range s.lastOwner {
				if o == t {
					delete(s.lastOwner, p)
				}
			}
			s.log.Debug("file released", "path", t.path)
		}
		if t.f == nil && !t.parked {
			s.mu.Lock()
			n := t.unacked
			s.mu.Unlock()
			if n == 0 {
				forget = append(forget, t)
			}
		}
	}
	for _, t := range forget {
		s.forget(t)
	}
	s.balanceRotated()
}

// closeFile closes t's file.
func (s *Source) closeFile(t *tailer) {
	if t.f == nil {
		return
	}
	_ = t.f.Close()
	t.f = nil
	s.m.filesOpen.Dec()
}

// forget drops t, closed and with nothing in flight: its position is no longer saved.
func (s *Source) forget(t *tailer) {
	s.closeFile(t)
	if s.byID[t.id] == t {
		delete(s.byID, t.id)
	}
	for p, o := range s.lastOwner {
		if o == t {
			delete(s.lastOwner, p)
		}
	}
	s.mu.Lock()
	for i, o := range s.tailers {
		if o == t {
			s.tailers = append(s.tailers[:i:i], s.tailers[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
}

// balanceRotated keeps at most max_rotated_files files open that are no longer
// followed: beyond it the newest are parked (closed, remembered by device, inode and
// directory); below it the oldest parked are opened again.
func (s *Source) balanceRotated() {
	var open, parked []*tailer
	for _, t := range s.tailers {
		switch {
		case t.parked:
			parked = append(parked, t)
		case t.gone && t.f != nil:
			open = append(open, t)
		}
	}
	limit := s.cfg.MaxRotatedFiles
	for i := len(open) - 1; i >= limit; i-- {
		s.park(open[i])
	}
	for i := 0; i < len(parked) && len(open) < limit; i++ {
		if s.unpark(parked[i]) {
			open = append(open, parked[i])
		}
	}
}

// park closes t, no longer followed, until there is room to read it.
func (s *Source) park(t *tailer) {
	t.dir = filepath.Dir(t.path)
	t.parked = true
	s.closeFile(t)
	s.log.Info("too many rotated files open; closing one until its turn", "path", t.path,
		"max_rotated_files", s.cfg.MaxRotatedFiles)
}

// unpark opens a parked file again, found by device and inode in its directory, and
// reports whether it is open. One that is no longer there is lost.
func (s *Source) unpark(t *tailer) bool {
	t.parked = false
	path, f := findByID(t.dir, t.id)
	if f != nil && t.fpLen > 0 {
		if h, ok := hashPrefix(f, t.fpLen); !ok || h != t.fp {
			_ = f.Close()
			f = nil
		}
	}
	if f == nil {
		s.mu.Lock()
		lost := max(t.size-t.readOff, 0)
		s.mu.Unlock()
		lost += int64(len(t.held)) + int64(s.dropCut(t))
		if lost > 0 {
			s.m.lostDeleted.Add(float64(lost))
		}
		s.log.Warn("a rotated file was deleted before it could be read; raise max_rotated_files or keep more rotations",
			"path", t.path, "lost_bytes", max(lost, 0))
		t.held = nil
		s.flushJoined(t)
		s.handOver(t, true)
		return false
	}
	if _, err := f.Seek(t.readOff, io.SeekStart); err != nil {
		_ = f.Close()
		return false
	}
	t.f = f
	t.atEOF = false
	s.m.filesOpen.Inc()
	s.mu.Lock()
	t.path = path
	s.mu.Unlock()
	return true
}

// markUnread makes every open file be read again: something was written.
func (s *Source) markUnread() {
	for _, t := range s.tailers {
		t.atEOF = false
	}
}
