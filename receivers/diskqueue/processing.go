package diskqueue

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
)

// processingName is the file in a queue directory that names the entry the consumer
// is processing, so that the next run can tell an entry that crashed the process.
const processingName = "processing"

const processingSize = 24 // magic, segment, offset, runs, masked CRC-32C

var processingMagic = [2]byte{'O', 'P'}

// processing is the state behind Begin and End.
type processing struct {
	mu   sync.Mutex
	f    *os.File // nil when the file cannot be opened: crashes are then not tracked
	last pos      // the entry named in the file at Open, if any
	runs uint32   // how many runs stopped while processing last
}

func encodeProcessing(p pos, runs uint32) []byte {
	b := make([]byte, processingSize)
	copy(b[0:2], processingMagic[:])
	binary.LittleEndian.PutUint64(b[2:10], p.seg)
	binary.LittleEndian.PutUint64(b[10:18], uint64(p.off))
	binary.LittleEndian.PutUint16(b[18:20], uint16(min(runs, 1<<16-1)))
	binary.LittleEndian.PutUint32(b[20:24], maskCRC(crc32.Checksum(b[:20], castagnoli)))
	return b
}

func decodeProcessing(b []byte) (pos, uint32, bool) {
	if len(b) != processingSize || [2]byte(b[0:2]) != processingMagic ||
		binary.LittleEndian.Uint32(b[20:24]) != maskCRC(crc32.Checksum(b[:20], castagnoli)) {
		return pos{}, 0, false
	}
	p := pos{seg: binary.LittleEndian.Uint64(b[2:10]), off: int64(binary.LittleEndian.Uint64(b[10:18]))}
	return p, uint32(binary.LittleEndian.Uint16(b[18:20])), p.seg != 0
}

// openProcessing opens the processing file of dir, reading the entry an earlier run
// left in it.
func (q *Queue) openProcessing() {
	path := filepath.Join(q.dir, processingName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		q.log.Warn("cannot open the queue's processing file; an entry that crashes the process is not recognised",
			"file", path, "error", err)
		return
	}
	b := make([]byte, processingSize)
	n, _ := f.ReadAt(b, 0)
	if p, runs, ok := decodeProcessing(b[:n]); ok {
		q.proc.last, q.proc.runs = p, runs+1
	}
	q.proc.f = f
}

// Begin records that the consumer starts processing the entry id (a write to the
// page cache, no fsync: it is a process crash, not a machine crash, that the record
// is for) and returns how many earlier runs of the process stopped while processing
// this same entry — crashed in a way no recover catches (a stack overflow, running
// out of memory) or were killed meanwhile. A consumer quarantines an entry that
// stopped the process more than once instead of processing it again. Call End when
// processing is over.
func (q *Queue) Begin(id ID) (crashes int) {
	q.proc.mu.Lock()
	defer q.proc.mu.Unlock()
	if q.proc.f == nil {
		return 0
	}
	p := pos{seg: id.seg, off: id.off}
	runs := uint32(0)
	if p == q.proc.last {
		runs = q.proc.runs
	}
	_, _ = q.proc.f.WriteAt(encodeProcessing(p, runs), 0)
	return int(runs)
}

// End records that the consumer finished processing the entry begun last.
func (q *Queue) End() {
	q.proc.mu.Lock()
	defer q.proc.mu.Unlock()
	if q.proc.f != nil {
		_, _ = q.proc.f.WriteAt(make([]byte, processingSize), 0)
	}
}

// closeProcessing closes the processing file.
func (q *Queue) closeProcessing() error {
	q.proc.mu.Lock()
	defer q.proc.mu.Unlock()
	if q.proc.f == nil {
		return nil
	}
	err := q.proc.f.Close()
	q.proc.f = nil
	return err
}
