package diskqueue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/outrider-dev/outrider/internal/atomicfile"
)

// cursorName is the cursor file in a queue directory.
const cursorName = "cursor"

const cursorSize = 24

var cursorMagic = [4]byte{'O', 'Q', 'C', 'R'}

// pos is a place in the queue: a segment and a byte offset in it. Offset 0 is the
// start of the segment, before its header is checked.
type pos struct {
	seg uint64
	off int64
}

func (p pos) less(o pos) bool { return p.seg < o.seg || (p.seg == o.seg && p.off < o.off) }

func encodeCursor(p pos) []byte {
	b := make([]byte, cursorSize)
	copy(b[0:4], cursorMagic[:])
	binary.LittleEndian.PutUint64(b[4:12], p.seg)
	binary.LittleEndian.PutUint64(b[12:20], uint64(p.off))
	binary.LittleEndian.PutUint32(b[20:24], maskCRC(crc32.Checksum(b[:20], castagnoli)))
	return b
}

func decodeCursor(b []byte) (pos, error) {
	if len(b) != cursorSize || [4]byte(b[0:4]) != cursorMagic ||
		binary.LittleEndian.Uint32(b[20:24]) != maskCRC(crc32.Checksum(b[:20], castagnoli)) {
		return pos{}, errors.New("not a valid queue cursor")
	}
	off := binary.LittleEndian.Uint64(b[12:20])
	if off > uint64(MaxSegmentSize) {
		return pos{}, errors.New("cursor offset out of range")
	}
	return pos{seg: binary.LittleEndian.Uint64(b[4:12]), off: int64(off)}, nil
}

// readCursor returns the saved cursor; a missing file is the zero cursor.
func readCursor(dir string) (pos, error) {
	b, err := os.ReadFile(filepath.Join(dir, cursorName))
	if errors.Is(err, os.ErrNotExist) {
		return pos{}, nil
	}
	if err != nil {
		return pos{}, err
	}
	return decodeCursor(b)
}

func writeCursor(dir string, p pos) error {
	_, err := atomicfile.Write(filepath.Join(dir, cursorName), encodeCursor(p), atomicfile.Options{Mode: 0o600})
	return err
}
