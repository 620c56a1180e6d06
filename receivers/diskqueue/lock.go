package diskqueue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockName is the lock file in a queue directory.
const lockName = "LOCK"

// lockDir takes an exclusive flock on dir's lock file. The lock belongs to the open
// file: closing it (or the process dying) releases it. A second open of the same
// directory, from this process or another, fails.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open queue lock file %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue directory %s is in use by another queue (another outrider process, or a second queue in this one, holds %s); give each queue its own directory: %w",
				dir, path, ErrLocked)
		}
		return nil, fmt.Errorf("lock queue directory %s (flock %s): %w", dir, path, err)
	}
	return f, nil
}
