package tail

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/outrider-dev/outrider/agent/multiline"
	"github.com/outrider-dev/outrider/agent/pipeline"
)

// scan expands the glob: files no longer matched are drained and closed, renamed
// files keep their tailer, and new files are opened. A new file at the path of a
// tracked one (rename and create) is read only after the old one is drained.
func (s *Source) scan(ctx context.Context) {
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
	var off int64
	how, known := "new file", false
	if pos, ok := s.saved[id]; ok {
		switch {
		case pos.Offset > size:
			s.m.truncations.Inc()
			how, known = "saved position past the end: file truncated", true
		case pos.matches(f):
			off, how, known = pos.Offset, "saved position", true
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
	if prev := s.lastOwner[path]; prev != nil {
		t.blockedBy = prev
		prev.rotated, prev.atEOF, prev.lastActive = true, false, time.Now()
		s.m.rotations.Inc()
		s.log.Info("file rotated; reading the new file once the old one is drained", "path", path)
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
	j, err := multiline.New(s.cfg.Multiline)
	if err != nil {
		return nil, err
	}
	n := int(min(size, fingerprintBytes))
	fp, ok := hashPrefix(f, n)
	if !ok {
		n = 0
		fp, _ = hashPrefix(f, 0)
	}
	t := &tailer{
		id:         id,
		f:          f,
		meta:       fileMeta(path),
		readOff:    off,
		split:      lineSplitter{max: int(s.cfg.MaxLineBytes)},
		join:       j,
		lastActive: time.Now(),
		path:       path,
		acked:      off,
		size:       size,
		fp:         fp,
		fpLen:      n,
	}
	s.byID[id] = t
	s.mu.Lock()
	s.tailers = append(s.tailers, t)
	s.mu.Unlock()
	s.m.filesOpen.Inc()
	return t, nil
}

func fileMeta(path string) []pipeline.Label {
	return []pipeline.Label{{Name: "filename", Value: path}}[:1:1]
}

func (s *Source) setPath(t *tailer, path string) {
	s.mu.Lock()
	t.path = path
	s.mu.Unlock()
	t.meta = fileMeta(path)
	s.lastOwner[path] = t
}

// recoverRotated finds, after the first scan, the files that had a saved position
// but are no longer matched: rotated while the agent was down (app.log renamed to
// app.log.1). Each is looked up by inode in its old directory and read from its saved
// position to its end before the file now at its old path.
func (s *Source) recoverRotated() {
	dirs := map[string][]fs.DirEntry{}
	for id, pos := range s.saved {
		dir := filepath.Dir(pos.Path)
		entries, ok := dirs[dir]
		if !ok {
			entries, _ = os.ReadDir(dir)
			dirs[dir] = entries
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil || idOf(info) != id {
				continue
			}
			path := filepath.Join(dir, e.Name())
			s.recoverFile(path, id, pos)
			break
		}
	}
}

func (s *Source) recoverFile(path string, id fileID, pos position) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	fi, err := f.Stat()
	if err != nil || idOf(fi) != id || !pos.matches(f) || pos.Offset >= fi.Size() {
		_ = f.Close()
		return
	}
	t, err := s.newTailer(f, path, id, fi.Size(), pos.Offset)
	if err != nil {
		_ = f.Close()
		return
	}
	t.gone = true
	if cur := s.lastOwner[pos.Path]; cur != nil && cur != t {
		cur.blockedBy = t
	}
	s.m.rotations.Inc()
	s.log.Info("file rotated while stopped; reading the rest of it first", "path", path, "was", pos.Path, "offset", pos.Offset)
}

// poll checks every open file for growth and truncation, and its path for rotation.
func (s *Source) poll(ctx context.Context) {
	rescan := false
	for _, t := range s.tailers {
		fi, err := t.f.Stat()
		if err != nil {
			continue
		}
		if fi.Size() < t.readOff {
			s.truncated(ctx, t, fi.Size())
		} else {
			s.setSize(t, fi.Size())
		}
		if fi.Size() != t.readOff {
			t.atEOF = false
		}
		if !t.gone {
			pfi, err := os.Stat(t.path)
			if err != nil || idOf(pfi) != t.id {
				rescan = true
			}
		}
	}
	if rescan {
		s.scan(ctx)
	}
}

// excluded reports whether an exclude pattern matches path or its base name. The
// positions file and its temporary files are never tailed, whatever the glob.
func (s *Source) excluded(path string) bool {
	base := filepath.Base(path)
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
