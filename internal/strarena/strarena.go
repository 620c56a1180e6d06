// Package strarena hands out strings from shared blocks of memory, so that many
// short strings cost one allocation instead of one each.
//
// A string keeps its whole block alive: a string longer than an eighth of a block
// gets an allocation of its own, so that one kept after the others of its block
// were dropped holds at most a block. The bytes of a block are never written again
// once a string refers to them.
package strarena

import "unsafe"

// DefaultBlockSize is the block size of an Arena whose BlockSize is 0.
const DefaultBlockSize = 16 << 10

// Arena hands out strings from its current block, starting a new one when the
// current one is full. The zero value is ready to use. It is not safe for
// concurrent use.
type Arena struct {
	// BlockSize is the size of the blocks; 0 means DefaultBlockSize.
	BlockSize int
	block     []byte
}

func (a *Arena) blockSize() int {
	if a.BlockSize <= 0 {
		return DefaultBlockSize
	}
	return a.BlockSize
}

// Make returns n bytes for the caller to fill and then turn into a string (see
// String). Nothing else is handed out in them.
func (a *Arena) Make(n int) []byte {
	size := a.blockSize()
	if n > size/8 {
		return make([]byte, n)
	}
	if cap(a.block)-len(a.block) < n {
		a.block = make([]byte, 0, size)
	}
	k := len(a.block)
	a.block = a.block[:k+n]
	return a.block[k : k+n : k+n]
}

// Str returns a string holding b's bytes.
func (a *Arena) Str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > a.blockSize()/8 {
		return string(b) // not zeroed first, as Make's bytes are
	}
	d := a.Make(len(b))
	copy(d, b)
	return String(d)
}

// String returns the bytes of b, a slice Make returned and the caller filled, as a
// string without copying them. The caller must not write b afterwards.
func String(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
