package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Errors callers branch on, with errors.Is.
var (
	// ErrFull is returned by Append when the entry would take the queue over max_size.
	// The caller refuses the data with a retryable error (HTTP 429, gRPC
	// RESOURCE_EXHAUSTED).
	ErrFull = errors.New("disk queue is full")
	// ErrClosed is returned by Append and Next after Close.
	ErrClosed = errors.New("disk queue is closed")
	// ErrTooLarge is returned by Append for a payload larger than segment_size minus
	// the framing; the entry can never be stored.
	ErrTooLarge = errors.New("entry is too large for the disk queue")
	// ErrLocked is returned by Open when another Queue holds the directory.
	ErrLocked = errors.New("queue directory is locked")
)

// Settings are what a Queue needs besides configuration.
type Settings struct {
	// Name is the queue's name ("traces", "logs"), used as the queue label and in log
	// lines and errors.
	Name string
	// Dir is the queue's directory; it is created (0700) if missing. One Queue per
	// directory.
	Dir string
	// Logger receives warnings about damaged segments and failed background work; nil
	// discards.
	Logger *slog.Logger
	// Metrics are shared by all queues of the process; nil uses an unregistered set.
	Metrics *Metrics
}

// ID identifies an entry handed out by Next, for Ack. The zero ID is never handed out.
type ID struct {
	seg   uint64
	off   int64
	epoch uint64
}

// String returns the entry's place as segment:offset, for log lines.
func (id ID) String() string { return fmt.Sprintf("%d:%d", id.seg, id.off) }

// Entry is one stored payload handed out by Next.
type Entry struct {
	// ID is passed to Ack once the entry is delivered or dropped.
	ID ID
	// Payload is the appended bytes; it belongs to the caller.
	Payload []byte
}

// segmentFile is the writer's handle on a segment file. Tests substitute one that
// fails, to exercise full disks.
type segmentFile interface {
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// createSegmentFile creates a new segment file; a variable so tests can inject
// write errors.
var createSegmentFile = func(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// cursorDelay is how long acknowledgements are collected before the cursor is saved.
// It bounds, with out-of-order acknowledgements, what a crash re-delivers.
var cursorDelay = 150 * time.Millisecond

// maxKeptBuffer is the largest write buffer kept between appends.
const maxKeptBuffer = 256 << 10

// segment is the state of one segment file.
type segment struct {
	id     uint64
	path   string
	size   int64 // bytes in the file; for the segment being written, its published length
	sealed bool  // no longer written to
	count  int   // records in the file after the cursor (as counted at Open, or appended)
	acked  int   // of those, acknowledged in this run
	// corruptAt is where the reader found damage (the rest is skipped), or -1.
	corruptAt int64
	// removed: every entry is acknowledged and the segment left the queue (its file
	// is deleted); nothing in it needs an fsync any more.
	removed bool
}

// retiredFile is a segment rotated out and not yet fsynced and closed.
type retiredFile struct {
	f   segmentFile
	seg *segment
}

// handed is an entry handed out by Next and not yet behind the acknowledged frontier.
type handed struct {
	pos
	end   int64
	acked bool
}

// Queue is a durable FIFO of opaque payloads in a directory of segment files; see the
// package documentation. All methods are safe for concurrent use.
type Queue struct {
	cfg         Config
	name, dir   string
	log         *slog.Logger
	m           *instrument
	maxPayload  int
	cursorDelay time.Duration
	lock        *os.File
	qmu         sync.Mutex // serialises Quarantine's writes
	proc        processing // Begin and End

	// The writer; wseg.size is also written under mu.
	wmu         sync.Mutex
	wclosed     bool
	wfile       segmentFile // written under wmu and filesMu
	wseg        *segment
	nextSeg     uint64
	wbuf        []byte
	wseq        atomic.Uint64 // bytes appended in this run: the fsync sequence
	forceRotate atomic.Bool   // start a new segment before the next write

	// Files the syncer must handle.
	filesMu     sync.Mutex
	retired     []retiredFile // rotated out, not yet fsynced and closed
	dirDirty    bool
	filesClosed bool

	// Group commit: one fsync round at a time; waiters share it.
	smu        sync.Mutex
	scond      *sync.Cond
	syncing    bool
	synced     uint64 // every write ending at or before this sequence is fsynced
	syncGen    uint64 // completed rounds
	lastTarget uint64
	lastErr    error

	// Shared state.
	mu           sync.Mutex
	closed       bool
	segs         []*segment // oldest first; the last one is being written
	bytes        int64
	entries      int
	inflight     []handed // handed out, in order; inflight[head] is not acked
	head         int
	skip         []pos // acknowledged before a Rewind, not to be handed out again
	epoch        uint64
	rpos         pos // where the reader goes on
	cursorKicked bool
	saved        pos // last saved cursor; used by the background goroutine and Close

	// The reader.
	rmu      sync.Mutex
	rd       *segmentReader
	rfile    *os.File
	rfileSeg uint64

	ready     chan struct{} // capacity 1: something may be readable
	kick      chan struct{} // capacity 1: the frontier moved
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the queue in set.Dir and locks the directory. It
// applies defaults to cfg and validates it. Entries stored by an earlier run after its
// saved cursor are handed out again by Next, oldest first; new entries go to a new
// segment.
func Open(cfg Config, set Settings) (*Queue, error) {
	cfg.ApplyDefaults()
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("disk queue %q: %w", set.Name, err)
	}
	if set.Dir == "" {
		return nil, fmt.Errorf("disk queue %q: no directory given", set.Name)
	}
	if err := os.MkdirAll(set.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create queue directory %s: %w", set.Dir, err)
	}
	lock, err := lockDir(set.Dir)
	if err != nil {
		return nil, err
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		cfg:         cfg,
		name:        set.Name,
		dir:         set.Dir,
		log:         log.With("queue", set.Name),
		m:           set.Metrics.bind(set.Name),
		maxPayload:  int(cfg.SegmentSize) - framing,
		cursorDelay: cursorDelay,
		lock:        lock,
		rd:          newSegmentReader(),
		epoch:       1,
		ready:       make(chan struct{}, 1),
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	q.scond = sync.NewCond(&q.smu)
	q.rd.alloc = payloadBuffer
	if err := q.load(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	q.quarantineBytes(filepath.Join(q.dir, QuarantineDir))
	q.openProcessing()
	q.wg.Add(1)
	go q.run()
	return q, nil
}

// load reads the directory: cursor, old segments, and starts the segment to write.
func (q *Queue) load() error {
	dirents, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("list queue directory %s: %w", q.dir, err)
	}
	var ids []uint64
	for _, e := range dirents {
		name := e.Name()
		if id, ok := parseSegmentName(name); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		} else if strings.HasPrefix(name, "."+cursorName+".tmp-") {
			_ = os.Remove(filepath.Join(q.dir, name)) // left by a crash during a cursor save
		}
	}
	slices.Sort(ids)
	cur, err := readCursor(q.dir)
	if err != nil {
		q.log.Warn("queue cursor unreadable; delivering every stored entry again",
			"file", filepath.Join(q.dir, cursorName), "error", err)
		cur = pos{}
	}
	q.saved = cur
	for _, id := range ids {
		path := filepath.Join(q.dir, segmentName(id))
		if id < cur.seg {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("delete consumed queue segment %s: %w", path, err)
			}
			continue
		}
		s, err := q.loadSegment(id, path, cur)
		if err != nil {
			return err
		}
		q.segs = append(q.segs, s)
		q.bytes += s.size
		q.entries += s.count
	}
	q.nextSeg = cur.seg + 1
	if n := len(q.segs); n > 0 {
		q.nextSeg = max(q.nextSeg, q.segs[n-1].id+1)
		q.rpos = pos{seg: q.segs[0].id}
		if q.segs[0].id == cur.seg {
			q.rpos = cur
			if cur.off > q.segs[0].size {
				q.log.Warn("queue cursor is past the end of its segment; going on with the next one",
					"file", q.segs[0].path, "cursor_offset", cur.off, "size", q.segs[0].size)
			}
		}
	}
	f, s, err := q.createSegment()
	if err != nil {
		return fmt.Errorf("start a segment of queue %q in %s: %w", q.name, q.dir, err)
	}
	if len(q.segs) == 0 {
		q.rpos = pos{seg: s.id}
	}
	q.wfile, q.wseg = f, s
	q.segs = append(q.segs, s)
	q.bytes += s.size
	q.dirDirty = true
	q.setGauges()
	return nil
}

func (q *Queue) loadSegment(id uint64, path string, cur pos) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open queue segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat queue segment: %w", err)
	}
	start := int64(0)
	if id == cur.seg {
		start = cur.off
	}
	return &segment{
		id:        id,
		path:      path,
		size:      st.Size(),
		sealed:    true,
		count:     countRecords(f, st.Size(), start, q.rd.br),
		corruptAt: -1,
	}, nil
}

// createSegment creates the next segment file with its header written.
func (q *Queue) createSegment() (segmentFile, *segment, error) {
	id := q.nextSeg
	q.nextSeg++
	path := filepath.Join(q.dir, segmentName(id))
	f, err := createSegmentFile(path)
	if err != nil {
		return nil, nil, err
	}
	h := encodeHeader(uint32(q.cfg.SegmentSize))
	if _, err := f.WriteAt(h[:], 0); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, nil, fmt.Errorf("write header of %s: %w", path, err)
	}
	return f, &segment{id: id, path: path, size: headerSize, corruptAt: -1}, nil
}

// setGauges publishes bytes, entries and segments; mu is held (or the queue is not
// shared yet).
func (q *Queue) setGauges() {
	q.m.bytes.Set(float64(q.bytes))
	q.m.entries.Set(float64(q.entries))
	q.m.segments.Set(float64(len(q.segs)))
}

// Append stores payload at the end of the queue. When it returns nil the payload is
// in a segment file (in the page cache: it survives the process being killed) and,
// with fsync "always", on disk. It returns an error wrapping ErrTooLarge for a payload
// over segment_size minus 24 bytes, ErrFull when the queue holds max_size, ErrClosed
// after Close, ctx.Err() if ctx is done before the write, and an error wrapping the
// cause (for example syscall.ENOSPC) when writing or fsyncing fails; then nothing
// partial is left behind and later appends work again once the cause is gone. The
// write and its fsync are not interrupted by ctx.
func (q *Queue) Append(ctx context.Context, payload []byte) error {
	if len(payload) > q.maxPayload {
		return fmt.Errorf("%w: an entry of %d bytes, queue %q takes at most %d (segment_size %s minus %d bytes of framing); raise segment_size",
			ErrTooLarge, len(payload), q.name, q.maxPayload, q.cfg.SegmentSize, framing)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rec := int64(frameSize + len(payload))
	q.wmu.Lock()
	if q.wclosed {
		q.wmu.Unlock()
		return ErrClosed
	}
	rotate := q.forceRotate.Load() || q.wseg.size+rec > int64(q.cfg.SegmentSize)
	need := rec
	if rotate {
		need += headerSize
	}
	q.mu.Lock()
	used := q.bytes
	q.mu.Unlock()
	if used+need > int64(q.cfg.MaxSize) {
		q.wmu.Unlock()
		q.m.rejectedFull.Inc()
		return fmt.Errorf("%w: queue %q holds %s of segments and max_size is %s; its consumer is behind (is the backend reachable?), retry later",
			ErrFull, q.name, confval.ByteSize(used), q.cfg.MaxSize)
	}
	if rotate {
		if err := q.rotateLocked(); err != nil {
			q.wmu.Unlock()
			return err
		}
	}
	seg, off := q.wseg, q.wseg.size
	buf := appendRecord(q.wbuf[:0], payload)
	_, err := q.wfile.WriteAt(buf, off)
	if cap(buf) <= maxKeptBuffer {
		q.wbuf = buf[:0]
	}
	if err != nil {
		err = q.writeFailedLocked(seg, off, err)
		q.wmu.Unlock()
		return err
	}
	q.mu.Lock()
	seg.size += rec
	seg.count++
	q.bytes += rec
	q.entries++
	q.setGauges()
	q.mu.Unlock()
	seq := q.wseq.Add(uint64(rec))
	q.wmu.Unlock()
	q.m.appendedEntries.Inc()
	q.m.appendedBytes.Add(float64(len(payload)))
	q.signal()
	if q.cfg.Fsync == FsyncAlways {
		return q.waitSynced(seq)
	}
	return nil
}

// writeFailedLocked cuts a failed write off the segment; wmu is held.
func (q *Queue) writeFailedLocked(seg *segment, off int64, cause error) error {
	q.m.writeErrors.Inc()
	if err := q.wfile.Truncate(off); err != nil {
		// The reader stops at the published length, so the garbage is never read in
		// this run; a new segment keeps it at the end of this one for later runs.
		q.forceRotate.Store(true)
		q.log.Error("cannot cut a failed write off a queue segment; starting a new segment",
			"file", seg.path, "offset", off, "error", err)
	}
	return fmt.Errorf("write an entry to queue %q (%s): %w; the entry was not stored: free space on the queue volume or lower max_size",
		q.name, seg.path, cause)
}

// rotateLocked seals the segment being written and starts the next; wmu is held.
func (q *Queue) rotateLocked() error {
	f, s, err := q.createSegment()
	if err != nil {
		q.m.writeErrors.Inc()
		q.forceRotate.Store(true)
		return fmt.Errorf("start a new segment of queue %q in %s: %w; free space on the queue volume", q.name, q.dir, err)
	}
	q.forceRotate.Store(false)
	q.filesMu.Lock()
	old := q.wfile
	q.wfile = f
	keep := q.cfg.Fsync != FsyncNever
	if keep {
		q.retired = append(q.retired, retiredFile{old, q.wseg}) // the syncer fsyncs and closes it
	}
	q.dirDirty = true
	q.filesMu.Unlock()
	if !keep {
		if err := old.Close(); err != nil {
			q.log.Warn("closing a full queue segment failed", "file", q.wseg.path, "error", err)
		}
	}
	q.mu.Lock()
	q.wseg.sealed = true
	q.wseg = s
	q.segs = append(q.segs, s)
	q.bytes += s.size
	q.setGauges()
	q.mu.Unlock()
	q.signal()
	return nil
}

// signal wakes a Next waiting for an entry.
func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Len returns the entries stored and not yet acknowledged, and the bytes of segment
// files on disk (what max_size bounds).
func (q *Queue) Len() (entries int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.entries, q.bytes
}

// run is the background goroutine: interval fsyncs and coalesced cursor saves.
func (q *Queue) run() {
	defer q.wg.Done()
	var tick <-chan time.Time
	if q.cfg.Fsync == FsyncInterval {
		t := time.NewTicker(q.cfg.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var save <-chan time.Time
	for {
		select {
		case <-q.done:
			return
		case <-tick:
			if q.dirty() {
				if err := q.syncNow(); err != nil {
					q.log.Warn("background fsync failed; entries written since the last fsync may be lost if the machine crashes", "error", err)
				}
			}
		case <-q.kick:
			if save == nil {
				timer.Reset(q.cursorDelay)
				save = timer.C
			}
		case <-save:
			save = nil
			if err := q.saveCursor(); err != nil {
				q.log.Warn("saving the queue cursor failed; a restart may deliver acknowledged entries again", "error", err)
			}
		}
	}
}

// saveCursor persists the acknowledged frontier if it moved. Only the background
// goroutine and Close (after it) call it.
func (q *Queue) saveCursor() error {
	q.mu.Lock()
	p := q.frontierLocked()
	q.cursorKicked = false
	q.mu.Unlock()
	if p == q.saved {
		return nil
	}
	if err := writeCursor(q.dir, p); err != nil {
		return fmt.Errorf("save cursor of queue %q: %w", q.name, err)
	}
	q.saved = p
	return nil
}

// Close stops the background goroutine, fsyncs, saves the cursor, closes the files
// and releases the directory lock. Waiting Next calls and later calls return
// ErrClosed. It is idempotent; later calls return the first call's result.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { q.closeErr = q.close() })
	return q.closeErr
}

func (q *Queue) close() error {
	q.wmu.Lock()
	q.wclosed = true
	q.wmu.Unlock()
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	close(q.done)
	q.wg.Wait()

	var errs []error
	if err := q.syncNow(); err != nil {
		errs = append(errs, err)
	}
	q.filesMu.Lock()
	q.filesClosed = true
	files := []segmentFile{q.wfile}
	for _, r := range q.retired {
		files = append(files, r.f)
	}
	q.retired = nil
	q.filesMu.Unlock()
	for _, f := range files {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close segment of queue %q: %w", q.name, err))
		}
	}
	q.rmu.Lock()
	q.closeReader()
	q.rmu.Unlock()
	if err := q.saveCursor(); err != nil {
		errs = append(errs, err)
	}
	if err := q.closeProcessing(); err != nil {
		errs = append(errs, fmt.Errorf("close processing file of queue %q: %w", q.name, err))
	}
	if err := q.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release lock of queue directory %s: %w", q.dir, err))
	}
	return errors.Join(errs...)
}
