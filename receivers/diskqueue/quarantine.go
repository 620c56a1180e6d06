package diskqueue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/internal/atomicfile"
)

// QuarantineDir is the directory, inside a queue's directory, that holds the entries
// set aside by Quarantine.
const QuarantineDir = "quarantine"

// Suffixes of a quarantined entry's two files.
const (
	quarantineEntry  = ".entry"
	quarantineReason = ".reason"
)

// quarantineName names the files of the entry at p: its place in the queue, so the
// names sort oldest first and the same entry set aside twice (a crash between
// Quarantine and the cursor save) keeps one copy.
func quarantineName(p pos) string { return fmt.Sprintf("%020d-%020d", p.seg, p.off) }

// Quarantine sets aside an entry the consumer cannot process (it does not decode, or
// processing it panicked), so that the entries after it flow and no restart hands it
// out again: it copies the payload to quarantine/<segment>-<offset>.entry and the
// reason to quarantine/<segment>-<offset>.reason (each written atomically), deletes
// the oldest quarantined entries while the directory holds more than
// quarantine_max_size, counts the entry in outrider_queue_quarantined_total, logs it
// once with its ID and reason, and acknowledges it.
//
// The entry is acknowledged even when the copy cannot be written (the error says why;
// it is logged too): a consumer stuck on one entry would stop the whole queue. An
// entry larger than quarantine_max_size is acknowledged without a copy.
func (q *Queue) Quarantine(e Entry, reason string) error {
	defer q.Ack(e.ID)
	q.m.quarantined.Inc()
	err := q.keep(e, reason)
	if err != nil {
		q.log.Error("set aside a queue entry that cannot be processed; its copy was NOT kept",
			"entry", e.ID.String(), "bytes", len(e.Payload), "reason", reason, "error", err)
		return err
	}
	q.log.Error("set aside a queue entry that cannot be processed; the entries after it go on",
		"entry", e.ID.String(), "bytes", len(e.Payload), "reason", reason,
		"file", filepath.Join(q.dir, QuarantineDir, quarantineName(pos{e.ID.seg, e.ID.off})+quarantineEntry))
	return nil
}

// keep writes the quarantine copy of e and trims the directory to its bound.
func (q *Queue) keep(e Entry, reason string) error {
	q.qmu.Lock()
	defer q.qmu.Unlock()
	dir := filepath.Join(q.dir, QuarantineDir)
	name := quarantineName(pos{e.ID.seg, e.ID.off})
	note := fmt.Sprintf("queue: %s\nentry: %s\ntime: %s\nbytes: %d\nreason: %s\n",
		q.name, e.ID, time.Now().UTC().Format(time.RFC3339), len(e.Payload), strings.ToValidUTF8(reason, "\uFFFD"))
	size := int64(len(e.Payload) + len(note))
	if size > int64(q.cfg.QuarantineMaxSize) {
		return fmt.Errorf("the entry (%d bytes) is larger than quarantine_max_size (%s); raise quarantine_max_size to keep such entries",
			size, q.cfg.QuarantineMaxSize)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create quarantine directory: %w", err)
	}
	// Make room first, so the bound holds even if the process dies between the steps.
	if err := q.trimQuarantine(dir, int64(q.cfg.QuarantineMaxSize)-size, name); err != nil {
		return err
	}
	sync := q.cfg.Fsync != FsyncNever
	if err := writeQuarantined(filepath.Join(dir, name+quarantineEntry), e.Payload, sync); err != nil {
		return fmt.Errorf("write quarantine copy: %w", err)
	}
	if err := writeQuarantined(filepath.Join(dir, name+quarantineReason), []byte(note), sync); err != nil {
		return fmt.Errorf("write quarantine reason: %w", err)
	}
	q.quarantineBytes(dir)
	return nil
}

// writeQuarantined replaces path with data atomically: a temporary file in the same
// directory, renamed over path; with sync, the file is fsynced before the rename and
// the directory after it (atomicfile.Write), as every fsync policy but "never" asks.
func writeQuarantined(path string, data []byte, sync bool) error {
	if sync {
		_, err := atomicfile.Write(path, data, atomicfile.Options{Mode: 0o600})
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// quarantined is one entry in the quarantine directory.
type quarantined struct {
	name  string // without suffix
	bytes int64
}

// listQuarantine returns the quarantined entries oldest first, deleting temporary files
// a crash left behind.
func listQuarantine(dir string) ([]quarantined, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list quarantine directory: %w", err)
	}
	byName := map[string]int64{}
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, ".") {
			_ = os.Remove(filepath.Join(dir, n))
			continue
		}
		base, ok := strings.CutSuffix(n, quarantineEntry)
		if !ok {
			if base, ok = strings.CutSuffix(n, quarantineReason); !ok {
				continue
			}
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		byName[base] += info.Size()
	}
	out := make([]quarantined, 0, len(byName))
	for n, b := range byName {
		out = append(out, quarantined{n, b})
	}
	slices.SortFunc(out, func(a, b quarantined) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// trimQuarantine deletes the oldest entries until at most budget bytes remain, not
// counting the entry called keep, which is about to be replaced.
func (q *Queue) trimQuarantine(dir string, budget int64, keep string) error {
	list, err := listQuarantine(dir)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range list {
		if e.name != keep {
			total += e.bytes
		}
	}
	for _, e := range list {
		if total <= budget {
			break
		}
		if e.name == keep {
			continue
		}
		for _, suffix := range []string{quarantineEntry, quarantineReason} {
			if err := os.Remove(filepath.Join(dir, e.name+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("delete an old quarantined entry to make room: %w", err)
			}
		}
		total -= e.bytes
		q.log.Info("deleted the oldest quarantined queue entry to stay within quarantine_max_size",
			"file", filepath.Join(dir, e.name+quarantineEntry), "quarantine_max_size", q.cfg.QuarantineMaxSize.String())
	}
	return nil
}

// quarantineBytes publishes the size of the quarantine directory.
func (q *Queue) quarantineBytes(dir string) {
	list, err := listQuarantine(dir)
	if err != nil {
		return
	}
	var n int64
	for _, e := range list {
		n += e.bytes
	}
	q.m.quarantineBytes.Set(float64(n))
}
