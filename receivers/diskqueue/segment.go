package diskqueue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// On-disk format; doc.go describes it.
const (
	segmentExt    = ".seg"
	segmentDigits = 20
	headerSize    = 16
	frameSize     = 8
	formatVersion = 1
	// framing is the most bytes a segment spends besides one payload.
	framing = headerSize + frameSize
	// readBufferSize is the reader's buffer: a few pread calls cover a segment.
	readBufferSize = 64 << 10
)

var (
	segmentMagic = [4]byte{'O', 'Q', 'S', 'G'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// maskCRC keeps the checksum of an empty payload from being zero, so a zero-filled
// region (a file extended by a crash before its data reached the disk) never reads
// as a valid record. It is LevelDB's mask.
func maskCRC(c uint32) uint32 { return (c>>15 | c<<17) + 0xa282ead8 }

func payloadCRC(p []byte) uint32 { return maskCRC(crc32.Checksum(p, castagnoli)) }

func segmentName(id uint64) string {
	s := strconv.FormatUint(id, 10)
	return strings.Repeat("0", segmentDigits-len(s)) + s + segmentExt
}

// parseSegmentName returns the id of a file named by segmentName.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// encodeHeader writes the segment header for a writer whose segments are at most
// segSize bytes.
func encodeHeader(segSize uint32) [headerSize]byte {
	var h [headerSize]byte
	copy(h[0:4], segmentMagic[:])
	h[4] = formatVersion
	binary.LittleEndian.PutUint32(h[8:12], segSize)
	binary.LittleEndian.PutUint32(h[12:16], maskCRC(crc32.Checksum(h[:12], castagnoli)))
	return h
}

// decodeHeader returns the segment size limit recorded in a header.
func decodeHeader(h []byte) (uint32, error) {
	switch {
	case [4]byte(h[0:4]) != segmentMagic:
		return 0, errors.New("not a queue segment (bad magic)")
	case binary.LittleEndian.Uint32(h[12:16]) != maskCRC(crc32.Checksum(h[:12], castagnoli)):
		return 0, errors.New("header checksum mismatch")
	case h[4] != formatVersion:
		return 0, fmt.Errorf("format version %d, this outrider reads version %d", h[4], formatVersion)
	case h[5] != 0 || h[6] != 0 || h[7] != 0:
		return 0, errors.New("reserved header bytes are set")
	}
	size := binary.LittleEndian.Uint32(h[8:12])
	if size < uint32(MinSegmentSize) || size > uint32(MaxSegmentSize) {
		return 0, fmt.Errorf("segment size %d out of range", size)
	}
	return size, nil
}

// appendRecord appends the frame and payload of one record to dst.
func appendRecord(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, payloadCRC(payload))
	return append(dst, payload...)
}

// corruption describes damage found in a segment.
type corruption struct {
	reason string // one of the Reason constants
	off    int64  // where the damaged record or header starts
	detail string
}

func (c *corruption) Error() string {
	return fmt.Sprintf("%s at offset %d: %s", c.reason, c.off, c.detail)
}

// errEmptySegment is a segment file of zero bytes: created, then the process died
// before the header was written. It holds nothing and is not damage.
var errEmptySegment = errors.New("empty segment file")

// section reads ra from pos up to limit; limit may grow (the segment being written).
type section struct {
	ra         io.ReaderAt
	pos, limit int64
}

func (s *section) Read(p []byte) (int, error) {
	if s.pos >= s.limit {
		return 0, io.EOF
	}
	if rem := s.limit - s.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.ra.ReadAt(p, s.pos)
	s.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// segmentReader reads the records of one segment in order. It never reads past its
// limit, never allocates for a record more than the bytes between the record and the
// limit, and returns a *corruption for damage; after a *corruption the rest of the
// segment is unreadable.
type segmentReader struct {
	sec        section
	br         *bufio.Reader
	off        int64 // offset of the next record
	maxPayload int64
	frame      [frameSize]byte
	// alloc returns a buffer of n bytes for a payload; nil means make.
	alloc func(n int) []byte
}

func newSegmentReader() *segmentReader {
	r := &segmentReader{}
	r.br = bufio.NewReaderSize(&r.sec, readBufferSize)
	return r
}

// start validates the header of the segment in ra, of which limit bytes may be read,
// and positions the reader at off (or the first record, if off is before it).
func (r *segmentReader) start(ra io.ReaderAt, limit, off int64) error {
	var h [headerSize]byte
	n, err := ra.ReadAt(h[:], 0)
	if n < headerSize || limit < headerSize {
		switch {
		case err != nil && err != io.EOF:
			return err
		case n == 0 || limit == 0:
			return errEmptySegment
		default:
			return &corruption{ReasonTruncated, 0, fmt.Sprintf("segment header cut short at %d of %d bytes", min(int64(n), limit), headerSize)}
		}
	}
	segSize, err := decodeHeader(h[:])
	if err != nil {
		return &corruption{ReasonHeader, 0, err.Error()}
	}
	r.maxPayload = int64(segSize) - framing
	r.off = max(off, headerSize)
	r.sec = section{ra: ra, pos: r.off, limit: limit}
	r.br.Reset(&r.sec)
	return nil
}

// setLimit lets the reader read up to limit (the writer's published length).
func (r *segmentReader) setLimit(limit int64) { r.sec.limit = limit }

// next reads the record at r.off and returns its payload and offset. The caller
// calls it only while r.off is before the limit.
func (r *segmentReader) next() ([]byte, int64, error) {
	start := r.off
	avail := r.sec.limit - start
	if avail < frameSize {
		return nil, start, &corruption{ReasonTruncated, start, fmt.Sprintf("record frame cut short: %d of %d bytes", avail, frameSize)}
	}
	if _, err := io.ReadFull(r.br, r.frame[:]); err != nil {
		return nil, start, r.readError(start, err)
	}
	n := int64(binary.LittleEndian.Uint32(r.frame[0:4]))
	sum := binary.LittleEndian.Uint32(r.frame[4:8])
	switch {
	case n == 0 && sum == 0:
		return nil, start, &corruption{ReasonTruncated, start, "zero-filled region where a record should be"}
	case n > r.maxPayload:
		return nil, start, &corruption{ReasonLength, start, fmt.Sprintf("record length %d is more than the segment allows (%d)", n, r.maxPayload)}
	case n > avail-frameSize:
		return nil, start, &corruption{ReasonTruncated, start, fmt.Sprintf("record of %d bytes cut short: %d bytes left in the segment", n, avail-frameSize)}
	}
	var p []byte
	if r.alloc != nil {
		p = r.alloc(int(n))
	} else {
		p = make([]byte, n)
	}
	if err := r.readPayload(p); err != nil {
		return nil, start, r.readError(start, err)
	}
	if payloadCRC(p) != sum {
		return nil, start, &corruption{ReasonChecksum, start, fmt.Sprintf("checksum mismatch in a record of %d bytes", n)}
	}
	r.off = start + frameSize + n
	return p, start, nil
}

// directRead is the least part of a payload, beyond what the buffer holds, that is
// read from the file straight into the payload rather than through the buffer.
const directRead = 8 << 10

// readPayload fills p with the next bytes: what the buffer holds, then, when the
// rest is large, straight from the file, so that a large payload is copied once
// rather than twice. The buffer is empty when the file is read directly, so it goes
// on from the file position after p.
func (r *segmentReader) readPayload(p []byte) error {
	n, _ := r.br.Read(p[:min(len(p), r.br.Buffered())])
	if rest := len(p) - n; rest >= directRead {
		_, err := io.ReadFull(&r.sec, p[n:])
		return err
	}
	_, err := io.ReadFull(r.br, p[n:])
	return err
}

// readError turns an end of file inside the limit (the file shrank) into damage and
// passes other I/O errors on.
func (r *segmentReader) readError(start int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &corruption{ReasonTruncated, start, "segment file ends inside a record"}
	}
	return err
}

// countRecords walks the frames of a segment file from off without checking
// checksums, and returns how many records it holds. It stops where the reader would
// stop on a bad frame; checksum damage is found later by the reader. br is reset and
// used as the read buffer.
func countRecords(f io.ReaderAt, size, off int64, br *bufio.Reader) int {
	var h [headerSize]byte
	if n, _ := f.ReadAt(h[:], 0); n < headerSize {
		return 0
	}
	segSize, err := decodeHeader(h[:])
	if err != nil {
		return 0
	}
	maxPayload := int64(segSize) - framing
	pos := max(off, headerSize)
	sec := section{ra: f, pos: pos, limit: size}
	br.Reset(&sec)
	var frame [frameSize]byte
	count := 0
	for size-pos >= frameSize {
		if _, err := io.ReadFull(br, frame[:]); err != nil {
			break
		}
		n := int64(binary.LittleEndian.Uint32(frame[0:4]))
		if (n == 0 && binary.LittleEndian.Uint32(frame[4:8]) == 0) || n > maxPayload || n > size-pos-frameSize {
			break
		}
		if _, err := br.Discard(int(n)); err != nil {
			break
		}
		count++
		pos += frameSize + n
	}
	return count
}
