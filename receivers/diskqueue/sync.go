package diskqueue

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// waitSynced returns once an fsync round that started after the write ending at seq
// completed (group commit): the first waiter that finds no round running runs one for
// everyone written so far, the others wait for it.
func (q *Queue) waitSynced(seq uint64) error {
	q.smu.Lock()
	defer q.smu.Unlock()
	for q.synced < seq {
		if !q.syncing {
			if err := q.syncLocked(); err != nil && seq <= q.lastTarget {
				return err
			}
			continue
		}
		gen := q.syncGen
		for gen == q.syncGen {
			q.scond.Wait()
		}
		if q.lastErr != nil && seq <= q.lastTarget {
			return q.lastErr
		}
	}
	return nil
}

// syncNow waits for a running round and runs one more.
func (q *Queue) syncNow() error {
	q.smu.Lock()
	defer q.smu.Unlock()
	for q.syncing {
		q.scond.Wait()
	}
	return q.syncLocked()
}

// syncLocked runs one fsync round. smu is held on entry and return, released during
// the fsyncs.
func (q *Queue) syncLocked() error {
	q.syncing = true
	q.smu.Unlock()
	target, err := q.syncFiles()
	q.smu.Lock()
	q.syncing = false
	q.syncGen++
	q.lastTarget, q.lastErr = target, err
	if err == nil && target > q.synced {
		q.synced = target
	}
	q.scond.Broadcast()
	return err
}

// dirty reports whether something written is not yet fsynced.
func (q *Queue) dirty() bool {
	q.smu.Lock()
	synced := q.synced
	q.smu.Unlock()
	if q.wseq.Load() > synced {
		return true
	}
	q.filesMu.Lock()
	defer q.filesMu.Unlock()
	return len(q.retired) > 0 || q.dirDirty
}

// syncFiles fsyncs the segment being written, the segments rotated out since the last
// round and not yet deleted (and closes them all) and, after creations, the
// directory. It returns the write sequence it covers: every write that ended at or
// before it.
func (q *Queue) syncFiles() (uint64, error) {
	q.filesMu.Lock()
	if q.filesClosed {
		q.filesMu.Unlock()
		return 0, ErrClosed
	}
	target := q.wseq.Load()
	cur, retired, dir := q.wfile, q.retired, q.dirDirty
	q.retired, q.dirDirty = nil, false
	q.filesMu.Unlock()

	start := time.Now()
	var errs []error
	for _, r := range retired {
		// A segment whose entries are all acknowledged is deleted: what it holds
		// has been delivered, and writing it to disk would only cost. Segments of a
		// queue that keeps up mostly end this way.
		q.mu.Lock()
		removed := r.seg.removed
		q.mu.Unlock()
		if !removed {
			if err := r.f.Sync(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := r.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cur.Sync(); err != nil {
		errs = append(errs, err)
	}
	if dir {
		if err := syncDir(q.dir); err != nil {
			errs = append(errs, err)
			q.filesMu.Lock()
			q.dirDirty = true
			q.filesMu.Unlock()
		}
	}
	q.m.fsync.Observe(time.Since(start).Seconds())
	if err := errors.Join(errs...); err != nil {
		q.m.writeErrors.Inc()
		// After a failed fsync the kernel may have dropped the dirty pages; later
		// entries go to a fresh file.
		q.forceRotate.Store(true)
		return target, fmt.Errorf("fsync queue %q in %s: %w", q.name, q.dir, err)
	}
	return target, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
