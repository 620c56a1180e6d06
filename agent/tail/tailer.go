package tail

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/outrider-dev/outrider/agent/multiline"
	"github.com/outrider-dev/outrider/agent/pipeline"
)

// tailer follows one open file.
type tailer struct {
	id   fileID
	f    *os.File
	meta []pipeline.Label // shared by the file's records; len == cap

	readOff  int64 // bytes of f read so far
	split    lineSplitter
	join     *multiline.Joiner
	ends     offsets // end offset of each line the joiner holds
	batch    []pipeline.Record
	batchEnd int64 // offset just past the last record in batch
	// batchBytes is the size of batch, as pipeline.Record.Size counts it.
	batchBytes int
	lastLen    int // records in the last batch, to size the next

	atEOF      bool
	lastActive time.Time // last data read, or when the tailer began to drain
	gone       bool      // no longer matched: drain, then close
	rotated    bool      // another file took its path: drain before that one is read
	blockedBy  *tailer   // the file that had this path before: read once it is drained
	readFailed bool      // a read error was logged

	// Guarded by Source.mu.
	path    string
	spans   []*span // batches handed over, in order, until acknowledged
	unacked int     // spans not yet acknowledged, including those from before a truncation
	acked   int64   // offset up to which every batch was acknowledged
	size    int64   // last known size of the file
	fp      uint64  // fingerprint of the first fpLen bytes
	fpLen   int
}

// span is a batch handed to the sink: the file offset just past its last record.
type span struct {
	s    *Source
	t    *tailer
	end  int64
	done bool
}

// ack records the acknowledgement of the span's batch. Acknowledgements may come in
// any order and from any goroutine: the file's acknowledged offset advances over the
// longest run of acknowledged batches from the oldest. A permanent error also
// counts: the sink gave up on those records and said so.
func (sp *span) ack(error) {
	s, t := sp.s, sp.t
	s.mu.Lock()
	if sp.done {
		s.mu.Unlock()
		return
	}
	sp.done = true
	t.unacked--
	advanced := false
	for len(t.spans) > 0 && t.spans[0].done {
		t.acked = t.spans[0].end
		t.spans[0] = nil
		t.spans = t.spans[1:]
		advanced = true
	}
	s.inflight--
	if !s.stopped {
		s.m.batchesInflight.Dec()
	}
	s.mu.Unlock()
	signal(s.ackC)
	if advanced {
		signal(s.saveC)
	}
}

// offsets is a FIFO of file offsets.
type offsets struct {
	q    []int64
	head int
}

func (o *offsets) push(v int64) {
	if o.head == len(o.q) {
		o.q, o.head = o.q[:0], 0
	}
	o.q = append(o.q, v)
}

// pop removes n offsets and returns the last of them.
func (o *offsets) pop(n int) int64 {
	o.head += n
	if o.head > len(o.q) {
		o.head = len(o.q)
	}
	if o.head == 0 {
		return 0
	}
	return o.q[o.head-1]
}

func (o *offsets) reset() { o.q, o.head = o.q[:0], 0 }

// readAll gives each readable file turns until every one is at its end or
// turnsPerLoop turns were taken; it reports whether some file may have more.
func (s *Source) readAll(ctx context.Context) bool {
	for turn := 0; turn < turnsPerLoop; turn++ {
		more := false
		for _, t := range s.tailers {
			if t.atEOF || t.blockedBy != nil {
				continue
			}
			s.readTurn(ctx, t)
			if ctx.Err() != nil {
				return false
			}
			if !t.atEOF {
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
func (s *Source) readTurn(ctx context.Context, t *tailer) {
	for i := 0; i < chunksPerTurn; i++ {
		n, err := t.f.Read(s.buf)
		if n > 0 {
			if !s.consume(ctx, t, s.buf[:n]) {
				return
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
		t.readFailed = false
	}
	if t.fpLen < fingerprintBytes && t.readOff > int64(t.fpLen) {
		s.refreshFingerprint(t)
	}
	if !t.atEOF {
		return
	}
	if len(t.batch) > 0 && s.export(ctx, t) != nil {
		return
	}
	fi, err := t.f.Stat()
	if err != nil {
		return
	}
	if fi.Size() < t.readOff {
		s.truncated(ctx, t, fi.Size())
		return
	}
	s.setSize(t, fi.Size())
}

// consume splits p, the next bytes of t, into lines and feeds them on. It returns false
// when ctx ended while a batch waited to be handed over.
func (s *Source) consume(ctx context.Context, t *tailer, p []byte) bool {
	now := time.Now()
	t.lastActive = now
	base := t.readOff
	t.readOff += int64(len(p))
	s.m.bytesRead.Add(float64(len(p)))
	var lines, truncated, invalid int
	defer func() {
		s.m.linesRead.Add(float64(lines))
		if truncated > 0 {
			s.m.linesTruncated.Add(float64(truncated))
		}
		if invalid > 0 {
			s.m.invalidUTF8.Add(float64(invalid))
		}
	}()
	used := 0
	for used < len(p) {
		line, cut, n, ok := t.split.next(p[used:])
		used += n
		if !ok {
			break
		}
		lines++
		if cut {
			truncated++
		}
		str, bad := lineString(line, t.split.max)
		if bad {
			invalid++
		}
		if !s.addLine(ctx, t, str, base+int64(used), now) {
			return false
		}
	}
	return true
}

// addLine feeds one line, which ends at file offset end, to the joiner and batches
// the records it completes.
func (s *Source) addLine(ctx context.Context, t *tailer, line string, end int64, now time.Time) bool {
	t.ends.push(end)
	for _, r := range t.join.Add(line) {
		if !s.addRecord(ctx, t, r.Text, t.ends.pop(r.Lines), now) {
			return false
		}
	}
	return true
}

// addRecord appends a record to t's batch, handing the batch over when it is full.
func (s *Source) addRecord(ctx context.Context, t *tailer, text string, end int64, now time.Time) bool {
	if t.batch == nil {
		t.batch = make([]pipeline.Record, 0, min(max(t.lastLen, 16), s.cfg.BatchMaxLines))
	}
	t.batch = append(t.batch, pipeline.Record{Time: now, Line: text, Stream: s.stream, Metadata: t.meta})
	s.parser.Parse(text, &t.batch[len(t.batch)-1])
	t.batchEnd = end
	t.batchBytes += t.batch[len(t.batch)-1].Size()
	if len(t.batch) >= s.cfg.BatchMaxLines || t.batchBytes >= int(s.cfg.BatchMaxBytes) {
		return s.export(ctx, t) == nil
	}
	return true
}

// flushPending hands over everything held for t: an unfinished last line, the pending
// multi-line record and the batch.
func (s *Source) flushPending(ctx context.Context, t *tailer) {
	now := time.Now()
	if line, cut, ok := t.split.flush(); ok {
		s.m.linesRead.Inc()
		if cut {
			s.m.linesTruncated.Inc()
		}
		str, bad := lineString(line, t.split.max)
		if bad {
			s.m.invalidUTF8.Inc()
		}
		if !s.addLine(ctx, t, str, t.readOff, now) {
			return
		}
	}
	for _, r := range t.join.Flush() {
		if !s.addRecord(ctx, t, r.Text, t.ends.pop(r.Lines), now) {
			return
		}
	}
	if len(t.batch) > 0 {
		_ = s.export(ctx, t)
	}
}

// export hands t's batch to the sink, first waiting while max_inflight_batches are
// unacknowledged. It returns an error only when ctx ended first; the batch's lines
// are then read again on the next start.
func (s *Source) export(ctx context.Context, t *tailer) error {
	recs, end := t.batch, t.batchEnd
	t.batch, t.lastLen, t.batchBytes = nil, len(recs), 0
	sp := &span{s: s, t: t, end: end}
	for {
		s.mu.Lock()
		if s.inflight < s.cfg.MaxInflightBatches {
			s.inflight++
			t.spans = append(t.spans, sp)
			t.unacked++
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		select {
		case <-s.ackC:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.m.batchesInflight.Inc()
	b := pipeline.Batch{Records: recs, Ack: sp.ack}
	backoff := 100 * time.Millisecond
	for {
		err := s.sink.Export(ctx, b)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			s.withdraw(sp)
			return ctx.Err()
		}
		s.log.Warn("sink refused a batch; retrying", "path", t.path, "records", len(recs), "error", err, "retry_in", backoff)
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			s.withdraw(sp)
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
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
	s.inflight--
	s.m.batchesInflight.Dec()
}

// truncated starts t over from offset 0: the file is shorter than what was read
// (copytruncate, or truncated in place). What was held from the old content is handed
// over first; batches of the old content no longer move the position.
func (s *Source) truncated(ctx context.Context, t *tailer, size int64) {
	s.m.truncations.Inc()
	s.log.Info("file truncated; reading it again from the start", "path", t.path, "size", size, "offset", t.readOff)
	s.flushPending(ctx, t)
	if ctx.Err() != nil {
		return
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		s.log.Warn("cannot rewind truncated file", "path", t.path, "error", err)
		return
	}
	t.split.reset()
	t.join.Reset()
	t.ends.reset()
	t.batch, t.batchBytes = nil, 0
	t.readOff = 0
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
	t.size = size
	t.fp, t.fpLen = fp, n
	s.mu.Unlock()
}

// refreshFingerprint hashes more of the start of t, up to fingerprintBytes, as the
// file grows.
func (s *Source) refreshFingerprint(t *tailer) {
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
// releases drained files, and returns when it wants to run again (0: no need).
func (s *Source) housekeep(ctx context.Context, now time.Time) time.Duration {
	after := s.cfg.Multiline.FlushAfter
	var next time.Time
	for _, t := range s.tailers {
		if t.blockedBy != nil {
			continue
		}
		pending := t.split.pending() || t.join.Pending()
		if !pending && !t.gone && !t.rotated {
			continue
		}
		due := t.lastActive.Add(after)
		if now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if pending && t.atEOF {
			s.flushPending(ctx, t)
			if ctx.Err() != nil {
				return 0
			}
		}
	}
	s.release(now)
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(now), time.Millisecond)
}

// drained reports whether t has nothing left: read to its end, quiet for flush_after,
// nothing held, every batch acknowledged.
func (s *Source) drained(t *tailer, now time.Time) bool {
	if !t.atEOF || t.blockedBy != nil || now.Sub(t.lastActive) < s.cfg.Multiline.FlushAfter ||
		t.split.pending() || t.join.Pending() || len(t.batch) > 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.unacked == 0
}

// release lets go of drained files: a rotated file lets its successor be read; a
// file that is gone is closed.
func (s *Source) release(now time.Time) {
	var closing []*tailer
	for _, t := range s.tailers {
		if (!t.gone && !t.rotated) || !s.drained(t, now) {
			continue
		}
		if t.rotated {
			t.rotated = false
			s.unblock(t)
		}
		if t.gone {
			closing = append(closing, t)
		}
	}
	for _, t := range closing {
		s.closeTailer(t)
	}
}

// unblock lets the files waiting for t be read.
func (s *Source) unblock(t *tailer) {
	for _, o := range s.tailers {
		if o.blockedBy == t {
			o.blockedBy = nil
			o.atEOF = false
			o.lastActive = time.Now()
		}
	}
}

// closeTailer closes t and forgets it; its position is no longer saved.
func (s *Source) closeTailer(t *tailer) {
	s.unblock(t)
	_ = t.f.Close()
	s.m.filesOpen.Dec()
	delete(s.byID, t.id)
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
	s.log.Debug("file released", "path", t.path)
}

// markUnread makes every file be read again: something was written.
func (s *Source) markUnread() {
	for _, t := range s.tailers {
		t.atEOF = false
	}
}
