package tail

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/outrider-dev/outrider/pipeline"
)

// scan expands the glob: files no longer matched are read to their end and closed,
// renamed files keep their tailer, and new files are opened. A new file at the path
// of a tracked one (rename and create) is read at once, while the old one drains.
func (s *Source) scan() {
	s.watchDirs()
	matches, _ := filepath.Glob(s.cfg.Path) // the pattern was validated
	found := make(map[fileID]string, len(matches))
	order := make([]fileID, 0, len(matches))
	for _, p := range matches {
		if s.excluded(p) {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		id := idOf(fi)
		if _, dup := found[id]; dup {
			continue // a hard link or symlink to a file already matched
		}
		found[id] = p
		order = append(order, id)
	}
	now := time.Now()
	for _, t := range s.tailers {
		if t.f == nil {
			continue
		}
		p, ok := found[t.id]
		switch {
		case ok:
			if p != t.path {
				s.log.Info("file renamed; still following it", "from", t.path, "to", p)
				s.setPath(t, p)
			}
			t.gone = false
			delete(found, t.id)
		case !t.gone:
			s.log.Debug("file no longer matched; reading it to its end before closing", "path", t.path)
			t.gone, t.atEOF, t.lastActive = true, false, now
		}
	}
	for _, id := range order {
		if p, ok := found[id]; ok {
			s.open(p, id)
		}
	}
	s.balanceRotated()
}

// open starts following the file at path.
func (s *Source) open(path string, id fileID) {
	f, err := os.Open(path)
	if err != nil {
		if !s.warned[path] {
			s.log.Warn("cannot open file; will retry at the next scan", "path", path, "error", err)
			s.warned[path] = true
		}
		return
	}
	delete(s.warned, path)
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return
	}
	if got := idOf(fi); got != id { // replaced between stat and open
		if s.byID[got] != nil {
			_ = f.Close()
			return
		}
		id = got
	}
	size := fi.Size()
	var (
		off      int64
		restored position
	)
	how, known := "new file", false
	if pos, ok := s.saved[id]; ok {
		switch {
		case pos.Offset > size:
			s.m.truncations.Inc()
			how, known = "saved position past the end: file truncated", true
		case pos.matches(f):
			off, how, known, restored = pos.Offset, "saved position", true, pos
		default:
			how = "new file with the inode of a saved one"
		}
		delete(s.saved, id)
	}
	// start_at applies to files found at start with no position, but not to a file
	// that took the path of one that had a position (rotated while stopped).
	if !known && s.firstScan && !s.savedPath[path] && s.cfg.StartAt == StartAtEnd {
		off, how = size, "start_at end"
	}
	t, err := s.newTailer(f, path, id, size, off)
	if err != nil {
		s.log.Warn("cannot start reading file; will retry at the next scan", "path", path, "error", err)
		_ = f.Close()
		return
	}
	s.restore(t, restored)
	if prev := s.lastOwner[path]; prev != nil && prev != t {
		prev.atEOF, prev.lastActive = false, time.Now()
		s.m.rotations.Inc()
		s.log.Info("file rotated; reading the new file while the old one drains", "path", path)
	}
	s.lastOwner[path] = t
	s.log.Info("following file", "path", path, "offset", off, "from", how)
}

// newTailer registers a tailer for f positioned at off.
func (s *Source) newTailer(f *os.File, path string, id fileID, size, off int64) (*tailer, error) {
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
	}
	n := int(min(size, fingerprintBytes))
	fp, ok := hashPrefix(f, n)
	if !ok {
		n = 0
		fp, _ = hashPrefix(f, 0)
	}
	t := &tailer{
		opened:     time.Now(),
		id:         id,
		f:          f,
		readOff:    off,
		lineStart:  off,
		kind:       kindOf(s.cfg.Format),
		split:      lineSplitter{max: physicalMax(s.cfg.Format, s.maxLine), keepCR: s.cfg.Format == FormatCRI},
		lastActive: time.Now(),
		path:       path,
		acked:      off,
		size:       size,
		fp:         fp,
		fpLen:      n,
	}
	for i := range t.emitted {
		t.emitted[i], t.shipped[i] = off, off
	}
	s.pathLabels(t, path)
	t.meta = s.fileMeta(t, path)
	s.state(t, streamRaw)
	s.byID[id] = t
	s.mu.Lock()
	s.tailers = append(s.tailers, t)
	s.mu.Unlock()
	s.m.filesOpen.Inc()
	return t, nil
}

// fileMeta returns the metadata of t's records when its file is at path.
func (s *Source) fileMeta(t *tailer, path string) []pipeline.Label {
	if t.uid != "" {
		return []pipeline.Label{{Name: "filename", Value: path}, {Name: "pod_uid", Value: t.uid}}[:2:2]
	}
	return []pipeline.Label{{Name: "filename", Value: path}}[:1:1]
}

// restore makes t skip the records of each stream that the saved position says
// were shipped past its offset.
func (s *Source) restore(t *tailer, pos position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range t.emitted {
		if v, ok := pos.Shipped[shippedKey(i)]; ok && v > t.emitted[i] {
			t.emitted[i], t.shipped[i] = v, v
		}
	}
}

func (s *Source) setPath(t *tailer, path string) {
	s.mu.Lock()
	t.path = path
	s.mu.Unlock()
	t.meta = s.fileMeta(t, path)
	s.lastOwner[path] = t
}

// recoverRotated finds, after the first scan, the files that had a saved position
// but are no longer matched: rotated while the agent was down (app.log renamed to
// app.log.1, or the copy of a copytruncate). Each is looked up by inode in its old
// directory and read from its saved position to its end.
func (s *Source) recoverRotated() {
	for id, pos := range s.saved {
		path, f := findByID(filepath.Dir(pos.Path), id)
		if f == nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil || !pos.matches(f) || pos.Offset >= fi.Size() {
			_ = f.Close()
			continue
		}
		t, err := s.newTailer(f, path, id, fi.Size(), pos.Offset)
		if err != nil {
			_ = f.Close()
			continue
		}
		s.restore(t, pos)
		t.gone = true
		s.m.rotations.Inc()
		s.log.Info("file rotated while stopped; reading the rest of it", "path", path, "was", pos.Path, "offset", pos.Offset)
	}
	s.balanceRotated()
}

// poll checks every open file for growth and truncation, and its path for rotation.
func (s *Source) poll() {
	rescan := false
	for _, t := range s.tailers {
		if t.f == nil {
			continue
		}
		s.check(t)
		if !t.gone && t.f != nil {
			pfi, err := os.Stat(t.path)
			if err != nil || idOf(pfi) != t.id {
				rescan = true
			}
		}
	}
	if rescan {
		s.scan()
	}
}

// foundCopy is the copy of a truncated file.
type foundCopy struct {
	path string
	id   fileID
	f    *os.File
	size int64
}

// copySlack allows for coarse file times when findCopy compares a candidate's
// modification time with when the truncated file was opened.
const copySlack = 2 * time.Second

// findCopy looks, in t's directory, for the copy copytruncate made of t before
// truncating it: another file, not followed, written since t was opened, whose first
// bytes have t's fingerprint, whatever its name (app.log.1, app.log-20240501; a
// delaycompress copy is still plain). The most recently modified one wins.
func (s *Source) findCopy(t *tailer) *foundCopy {
	if t.fpLen == 0 {
		return nil
	}
	dir := filepath.Dir(t.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var best *foundCopy
	var bestTime time.Time
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() < int64(t.fpLen) {
			continue
		}
		id := idOf(info)
		if id == t.id || s.byID[id] != nil || info.ModTime().Before(t.opened.Add(-copySlack)) {
			continue // not a copy made since t was opened
		}
		if best != nil && !info.ModTime().After(bestTime) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil || idOf(fi) != id {
			_ = f.Close()
			continue
		}
		if h, ok := hashPrefix(f, t.fpLen); !ok || h != t.fp {
			_ = f.Close()
			continue
		}
		if best != nil {
			_ = best.f.Close()
		}
		best = &foundCopy{path: p, id: id, f: f, size: fi.Size()}
		bestTime = info.ModTime()
	}
	return best
}

// findByID opens the regular file in dir with identity id, if there is one.
func findByID(dir string, id fileID) (string, *os.File) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || idOf(info) != id {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			return "", nil
		}
		if fi, err := f.Stat(); err != nil || idOf(fi) != id {
			_ = f.Close()
			return "", nil
		}
		return p, f
	}
	return "", nil
}

// excluded reports whether an exclude pattern matches path or its base name. The
// positions file and its temporary files are never tailed, whatever the glob.
func (s *Source) excluded(path string) bool {
	base := filepath.Base(path)
	if s.cfg.Format != FormatRaw && strings.HasSuffix(base, ".gz") {
		return true // a rotated runtime log the kubelet or Docker compressed; read before
	}
	if s.posPath != "" && filepath.Dir(path) == filepath.Dir(s.posPath) {
		pb := filepath.Base(s.posPath)
		if base == pb || strings.HasPrefix(base, "."+pb+".tmp-") {
			return true
		}
	}
	for _, e := range s.cfg.Exclude {
		if ok, _ := filepath.Match(e, path); ok {
			return true
		}
		if ok, _ := filepath.Match(e, base); ok {
			return true
		}
	}
	return false
}

// startWatcher watches the directories of the glob for changes. Without it (it may
// be unavailable, or run out of watches), polling still finds everything, later.
func (s *Source) startWatcher(ctx context.Context, wg *sync.WaitGroup) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("file system notifications unavailable; polling only", "error", err)
		return
	}
	s.watcher = w
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					signal(s.scanC)
				}
				if ev.Has(fsnotify.Write) {
					signal(s.readC)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if errors.Is(err, fsnotify.ErrEventOverflow) {
					signal(s.scanC)
				}
				s.log.Debug("file system notification error", "error", err)
			}
		}
	}()
}

// watchDirs adds a watch on each directory the glob's directory part matches.
func (s *Source) watchDirs() {
	if s.watcher == nil {
		return
	}
	dirs, _ := filepath.Glob(filepath.Dir(s.cfg.Path))
	for _, d := range dirs {
		if s.watched[d] {
			continue
		}
		if err := s.watcher.Add(d); err != nil {
			if !s.warned[d] {
				s.log.Warn("cannot watch directory; relying on polling", "dir", d, "error", err)
				s.warned[d] = true
			}
			continue
		}
		s.watched[d] = true
	}
}
