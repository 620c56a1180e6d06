package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/outrider-dev/outrider/internal/atomicfile"
)

// Write puts data in the file at path with cfg's mode and owner, atomically (a
// temporary file in the same directory, fsync, chmod/chown, rename, fsync of the
// directory; the temporary file is removed on failure). It does nothing and reports
// changed == false when the file already holds exactly data with the right mode and
// owner, so an unchanged secret neither touches the file nor triggers a reload. The
// directory must exist.
func Write(path string, data []byte, cfg FileConfig) (changed bool, err error) {
	mode, err := cfg.FileMode()
	if err != nil {
		return false, fmt.Errorf("write %s: mode: %w", path, err)
	}
	uid, gid := cfg.Owner()
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("write %s: the directory %s does not exist; create it (for example mount a memory-backed emptyDir there) before secrets are rendered", path, dir)
	case err != nil:
		return false, fmt.Errorf("write %s: %w", path, err)
	case !st.IsDir():
		return false, fmt.Errorf("write %s: %s is not a directory", path, dir)
	}
	if unchanged(path, data, mode, uid, gid) {
		return false, nil
	}
	_, err = atomicfile.Write(path, data, atomicfile.Options{
		Mode:  mode,
		Chown: uid >= 0 || gid >= 0,
		UID:   uid,
		GID:   gid,
	})
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// unchanged reports whether path is a regular file holding data with mode and owner.
func unchanged(path string, data []byte, mode os.FileMode, uid, gid int) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != mode || st.Size() != int64(len(data)) {
		return false
	}
	if fuid, fgid, ok := fileOwner(st); ok {
		if uid >= 0 && fuid != uid || gid >= 0 && fgid != gid {
			return false
		}
	}
	old, err := os.ReadFile(path)
	return err == nil && bytes.Equal(old, data)
}
