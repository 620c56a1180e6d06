// Package atomicfile writes files so that a reader sees either the old content or the
// new, never a mix, and the new content survives a crash once Write returns.
package atomicfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Options controls ownership and permissions of the written file.
type Options struct {
	// Mode is the file's permission bits; 0 means 0600.
	Mode os.FileMode
	// Chown applies UID and GID to the file; otherwise it keeps the writer's owner.
	Chown    bool
	UID, GID int
	// SkipUnchanged skips the write (and reports changed == false) when the file
	// already holds exactly data.
	SkipUnchanged bool
}

// Write replaces path with data atomically: it writes a temporary file in the same
// directory, fsyncs it, sets mode and owner, renames it over path and fsyncs the
// directory. It reports whether the file changed.
func Write(path string, data []byte, opts Options) (changed bool, err error) {
	if opts.SkipUnchanged {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return false, nil
		}
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o600
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create temporary file next to %s: %w", path, err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return false, fmt.Errorf("write %s: %w", name, err)
	}
	if err = tmp.Sync(); err != nil {
		return false, fmt.Errorf("fsync %s: %w", name, err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return false, fmt.Errorf("chmod %s: %w", name, err)
	}
	if opts.Chown {
		if err = tmp.Chown(opts.UID, opts.GID); err != nil {
			return false, fmt.Errorf("chown %s to %d:%d: %w", name, opts.UID, opts.GID, err)
		}
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("close %s: %w", name, err)
	}
	if err = os.Rename(name, path); err != nil {
		return false, fmt.Errorf("rename %s to %s: %w", name, path, err)
	}
	if err = syncDir(dir); err != nil {
		return true, err
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
