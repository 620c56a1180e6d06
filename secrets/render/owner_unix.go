//go:build unix

package render

import (
	"os"
	"syscall"
)

// fileOwner returns the uid and gid of the file st describes.
func fileOwner(st os.FileInfo) (uid, gid int, ok bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(sys.Uid), int(sys.Gid), true
}
