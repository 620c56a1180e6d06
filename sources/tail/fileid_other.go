//go:build !unix

package tail

import "os"

// fileID identifies a file across renames: its device and inode.
type fileID struct{ dev, ino uint64 }

// supported reports whether file identities are available on this system: tailing
// by inode needs a Unix system.
const supported = false

func idOf(os.FileInfo) fileID { return fileID{} }
