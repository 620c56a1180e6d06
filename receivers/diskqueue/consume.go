package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Next returns the oldest entry not handed out since Open or the last Rewind,
// waiting until one is appended, ctx is done (it returns ctx.Err()) or the queue is
// closed (ErrClosed). It reads from the segment files and skips damaged parts of them
// (counted in outrider_queue_corrupt_total and logged). Any other error is an I/O
// error reading a segment; the call may be retried. Safe for concurrent use; each
// entry goes to one caller.
func (q *Queue) Next(ctx context.Context) (Entry, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Entry{}, err
		}
		e, ok, err := q.next()
		if err != nil || ok {
			return e, err
		}
		select {
		case <-q.ready:
		case <-q.done:
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		}
	}
}

// next hands out the next entry if one is readable now.
func (q *Queue) next() (Entry, bool, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Entry{}, false, ErrClosed
		}
		s := q.segLocked(q.rpos.seg)
		if s == nil {
			// Deleted because it was consumed: go on with the next.
			q.mu.Unlock()
			q.moveOn(q.rpos.seg)
			continue
		}
		off, limit, sealed, corruptAt, path := q.rpos.off, s.size, s.sealed, s.corruptAt, s.path
		q.mu.Unlock()

		if (corruptAt >= 0 && off >= corruptAt) || (off >= headerSize && off >= limit) {
			if !sealed {
				return Entry{}, false, nil
			}
			q.moveOn(s.id)
			continue
		}
		if q.rfile == nil || q.rfileSeg != s.id || q.rd.off != max(off, headerSize) {
			err := q.openReader(s.id, path, off, limit)
			switch {
			case err == nil:
				q.mu.Lock()
				q.rpos.off = q.rd.off
				q.mu.Unlock()
			case errors.Is(err, errEmptySegment):
				if !sealed {
					return Entry{}, false, nil
				}
				q.moveOn(s.id)
			case errors.Is(err, os.ErrNotExist):
				q.damaged(s, &corruption{ReasonMissing, off, "segment file is missing"})
			default:
				var c *corruption
				if !errors.As(err, &c) {
					return Entry{}, false, fmt.Errorf("read queue %q segment %s: %w", q.name, path, err)
				}
				q.damaged(s, c)
			}
			continue
		}
		q.rd.setLimit(limit)
		payload, at, err := q.rd.next()
		if err != nil {
			var c *corruption
			if !errors.As(err, &c) {
				q.closeReader()
				return Entry{}, false, fmt.Errorf("read queue %q segment %s: %w", q.name, path, err)
			}
			q.damaged(s, c)
			continue
		}
		p, end := pos{seg: s.id, off: at}, q.rd.off
		q.mu.Lock()
		q.rpos.off = end
		for len(q.skip) > 0 && q.skip[0].less(p) {
			q.skip = q.skip[1:]
		}
		if len(q.skip) > 0 && q.skip[0] == p {
			// Acknowledged before a Rewind: not handed out again.
			q.skip = q.skip[1:]
			var paths []string
			if q.head < len(q.inflight) {
				q.inflight = append(q.inflight, handed{pos: p, end: end, acked: true})
			} else {
				paths = q.gcLocked()
				q.kickLocked()
			}
			q.mu.Unlock()
			q.removeSegments(paths)
			continue
		}
		q.inflight = append(q.inflight, handed{pos: p, end: end})
		id := ID{seg: s.id, off: at, epoch: q.epoch}
		more := end < s.size || s.sealed
		q.mu.Unlock()
		if more {
			q.signal()
		}
		return Entry{ID: id, Payload: payload}, true, nil
	}
}

// openReader opens segment id for reading at off; rmu is held.
func (q *Queue) openReader(id uint64, path string, off, limit int64) error {
	q.closeReader()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := q.rd.start(f, limit, off); err != nil {
		_ = f.Close()
		return err
	}
	q.rfile, q.rfileSeg = f, id
	return nil
}

// closeReader closes the reader's file; rmu is held.
func (q *Queue) closeReader() {
	if q.rfile != nil {
		_ = q.rfile.Close()
		q.rfile, q.rfileSeg = nil, 0
	}
}

// moveOn moves the reader to the segment after id; rmu is held.
func (q *Queue) moveOn(id uint64) {
	q.closeReader()
	q.mu.Lock()
	i := sort.Search(len(q.segs), func(i int) bool { return q.segs[i].id > id })
	// A later segment exists: only sealed segments are moved past, and the segment
	// being written is the last.
	q.rpos = pos{seg: q.segs[min(i, len(q.segs)-1)].id}
	paths := q.gcLocked()
	q.kickLocked()
	q.mu.Unlock()
	q.removeSegments(paths)
}

// damaged records damage in segment s: counted, logged once, and the rest of the
// segment skipped. Damage in the segment being written (only possible if something
// else writes to it) makes the writer start a new one, so the reader can go on.
func (q *Queue) damaged(s *segment, c *corruption) {
	q.closeReader()
	q.m.corrupt.WithLabelValues(c.reason).Inc()
	level, msg := q.log.Warn, "queue segment damaged; skipping the rest of it, entries stored there after this offset are lost"
	if c.reason == ReasonTruncated {
		level, msg = q.log.Info, "queue segment ends inside an entry (the process stopped while writing it); skipping the partial entry"
	}
	level(msg, "file", s.path, "offset", c.off, "reason", c.reason, "detail", c.detail)
	q.mu.Lock()
	s.corruptAt = c.off
	sealed := s.sealed
	q.mu.Unlock()
	if !sealed {
		q.wmu.Lock()
		if !q.wclosed && q.wseg == s {
			if err := q.rotateLocked(); err != nil {
				q.log.Warn("cannot start a new segment after damage; will retry on the next append", "error", err)
			}
		}
		q.wmu.Unlock()
	}
}

// segLocked returns the live segment id, or nil; mu is held.
func (q *Queue) segLocked(id uint64) *segment {
	i := sort.Search(len(q.segs), func(i int) bool { return q.segs[i].id >= id })
	if i < len(q.segs) && q.segs[i].id == id {
		return q.segs[i]
	}
	return nil
}

// Ack marks the entry delivered or dropped. Entries may be acknowledged in any order;
// the queue deletes a segment once every entry in it is acknowledged and the reader
// has moved past it. Acknowledging an ID twice, an ID handed out before the last
// Rewind, or after Close does nothing.
func (q *Queue) Ack(id ID) {
	q.mu.Lock()
	if q.closed || id.epoch != q.epoch {
		q.mu.Unlock()
		return
	}
	list := q.inflight[q.head:]
	p := pos{seg: id.seg, off: id.off}
	i := sort.Search(len(list), func(i int) bool { return !list[i].less(p) })
	if i == len(list) || list[i].pos != p || list[i].acked {
		q.mu.Unlock()
		return
	}
	list[i].acked = true
	q.entries = max(q.entries-1, 0)
	if s := q.segLocked(id.seg); s != nil {
		s.acked++
	}
	q.m.ackedEntries.Inc()
	var paths []string
	if i == 0 {
		for q.head < len(q.inflight) && q.inflight[q.head].acked {
			q.head++
		}
		switch {
		case q.head == len(q.inflight):
			q.inflight, q.head = q.inflight[:0], 0
		case q.head > 1024 && q.head*2 > len(q.inflight):
			n := copy(q.inflight, q.inflight[q.head:])
			q.inflight, q.head = q.inflight[:n], 0
		}
		paths = q.gcLocked()
		q.kickLocked()
	}
	q.setGauges()
	q.mu.Unlock()
	q.removeSegments(paths)
}

// frontierLocked is the cursor: the position of the first entry not acknowledged;
// mu is held.
func (q *Queue) frontierLocked() pos {
	if q.head < len(q.inflight) {
		return q.inflight[q.head].pos
	}
	return q.rpos
}

// gcLocked drops the segments wholly behind the frontier from the accounting and
// returns their paths for removal; mu is held. The segment being written stays.
func (q *Queue) gcLocked() []string {
	low := q.rpos.seg
	if q.head < len(q.inflight) {
		low = q.inflight[q.head].seg
	} else if s := q.segLocked(q.rpos.seg); s != nil && s.sealed && q.rpos.off >= headerSize && q.rpos.off >= s.size {
		low = s.id + 1
	}
	var paths []string
	for len(q.segs) > 1 && q.segs[0].id < low {
		s := q.segs[0]
		q.segs[0] = nil
		q.segs = q.segs[1:]
		s.removed = true
		q.bytes -= s.size
		// Entries counted but never read (past damage) leave with their segment.
		q.entries = max(q.entries-(s.count-s.acked), 0)
		paths = append(paths, s.path)
	}
	if paths != nil {
		q.setGauges()
	}
	return paths
}

// kickLocked asks the background goroutine to save the cursor soon; mu is held.
func (q *Queue) kickLocked() {
	if q.cursorKicked || q.closed {
		return
	}
	q.cursorKicked = true
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *Queue) removeSegments(paths []string) {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			q.log.Warn("cannot delete a consumed queue segment; it is deleted at the next start, or delete it by hand", "file", p, "error", err)
		}
	}
}

// Rewind makes Next hand out again every entry not yet acknowledged, oldest first,
// with new IDs; acknowledgements of IDs handed out before it are ignored. Call it
// when a new consumer replaces one that has finished with or abandoned its entries.
func (q *Queue) Rewind() {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if q.head < len(q.inflight) {
		for len(q.skip) > 0 && q.skip[0].less(q.rpos) {
			q.skip = q.skip[1:]
		}
		var skip []pos
		for _, h := range q.inflight[q.head:] {
			if h.acked {
				skip = append(skip, h.pos)
			}
		}
		q.skip = append(skip, q.skip...)
		q.rpos = q.inflight[q.head].pos
	}
	q.inflight, q.head = q.inflight[:0], 0
	q.epoch++
	q.mu.Unlock()
	q.closeReader()
	q.signal()
}
