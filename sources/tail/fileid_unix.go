//go:build unix

package tail

import (
	"os"
	"syscall"
)

// fileID identifies a file across renames: its device and inode.
type fileID struct{ dev, ino uint64 }

// supported reports whether file identities are available on this system.
const supported = true

// idOf returns the identity of the file fi describes.
func idOf(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	// The conversions matter: Dev and Ino are not uint64 on every Unix.
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
}
