//go:build !linux

package memtrim

// pageOutExecutable does nothing where there is no MADV_PAGEOUT.
func pageOutExecutable() (int64, error) { return 0, nil }

// unmapExecutable does nothing where there is no madvise.
func unmapExecutable() (int64, error) { return 0, nil }
