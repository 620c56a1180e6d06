package diskqueue

import (
	"bytes"
	"errors"
	"testing"
)

// buildSegment returns a segment file holding payloads.
func buildSegment(segSize uint32, payloads ...[]byte) []byte {
	h := encodeHeader(segSize)
	b := h[:]
	for _, p := range payloads {
		b = appendRecord(b, p)
	}
	return b
}

// readSegment reads data as a whole segment file and returns the payloads before the
// first damage, and the damage (nil at a clean end).
func readSegment(t testing.TB, data []byte, alloc func(int) []byte) ([][]byte, error) {
	r := newSegmentReader()
	r.alloc = alloc
	if err := r.start(bytes.NewReader(data), int64(len(data)), 0); err != nil {
		return nil, err
	}
	var out [][]byte
	for r.off < int64(len(data)) {
		p, at, err := r.next()
		if err != nil {
			return out, err
		}
		if at < headerSize || r.off <= at || r.off > int64(len(data)) {
			t.Fatalf("record at %d ends at %d in %d bytes", at, r.off, len(data))
		}
		out = append(out, p)
	}
	return out, nil
}

func TestSegmentReader(t *testing.T) {
	good := buildSegment(4096, []byte("one"), []byte{}, bytes.Repeat([]byte("z"), 1000))
	tests := []struct {
		name   string
		data   []byte
		want   int
		reason string // "" for a clean end; "empty" for errEmptySegment
	}{
		{"valid", good, 3, ""},
		{"header only", good[:headerSize], 0, ""},
		{"empty file", nil, 0, "empty"},
		{"short header", good[:7], 0, ReasonTruncated},
		{"short frame", good[:headerSize+frameSize+3+5], 1, ReasonTruncated},
		{"short payload", good[:len(good)-1], 2, ReasonTruncated},
		{"bad magic", append([]byte("XQSG"), good[4:]...), 0, ReasonHeader},
		{"header segment size too small", buildSegment(100, []byte("x")), 0, ReasonHeader},
		{"length over the segment size", append(bytes.Clone(good[:headerSize]), 0xff, 0xff, 0, 0, 1, 2, 3, 4), 0, ReasonLength},
		{"zero frame", append(bytes.Clone(good), make([]byte, 8)...), 3, ReasonTruncated},
		{"flipped payload bit", flip(good, headerSize+frameSize+1), 0, ReasonChecksum},
		{"flipped checksum bit", flip(good, headerSize+frameSize+3+4+1), 1, ReasonChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readSegment(t, tc.data, nil)
			if len(got) != tc.want {
				t.Fatalf("%d payloads; want %d (err %v)", len(got), tc.want, err)
			}
			var c *corruption
			switch {
			case tc.reason == "":
				if err != nil {
					t.Fatalf("err %v; want a clean end", err)
				}
			case tc.reason == "empty":
				if !errors.Is(err, errEmptySegment) {
					t.Fatalf("err %v; want errEmptySegment", err)
				}
			case !errors.As(err, &c) || c.reason != tc.reason:
				t.Fatalf("err %v; want damage %s", err, tc.reason)
			}
		})
	}
}

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x10
	return c
}

func TestCountRecords(t *testing.T) {
	data := buildSegment(4096, []byte("a"), []byte("bb"), []byte("ccc"))
	r := newSegmentReader()
	for _, tc := range []struct {
		data []byte
		off  int64
		want int
	}{
		{data, 0, 3},
		{data, headerSize + frameSize + 1, 2},
		{data[:len(data)-1], 0, 2},
		{data[:5], 0, 0},
		{append(bytes.Clone(data), make([]byte, 8)...), 0, 3},
	} {
		if got := countRecords(bytes.NewReader(tc.data), int64(len(tc.data)), tc.off, r.br); got != tc.want {
			t.Errorf("countRecords(%d bytes from %d) = %d; want %d", len(tc.data), tc.off, got, tc.want)
		}
	}
}

func TestSegmentNames(t *testing.T) {
	if got := segmentName(1); got != "00000000000000000001.seg" {
		t.Fatalf("segmentName(1) = %q", got)
	}
	for _, tc := range []struct {
		name string
		id   uint64
		ok   bool
	}{
		{"00000000000000000042.seg", 42, true},
		{segmentName(1<<64 - 1), 1<<64 - 1, true},
		{"42.seg", 0, false},
		{"0000000000000000004x.seg", 0, false},
		{"00000000000000000042.seg.tmp", 0, false},
		{"99999999999999999999.seg", 0, false},
	} {
		id, ok := parseSegmentName(tc.name)
		if id != tc.id || ok != tc.ok {
			t.Errorf("parseSegmentName(%q) = %d, %v; want %d, %v", tc.name, id, ok, tc.id, tc.ok)
		}
	}
}

func TestCursorEncoding(t *testing.T) {
	p := pos{seg: 1234567, off: 4048}
	got, err := decodeCursor(encodeCursor(p))
	if err != nil || got != p {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	b := encodeCursor(p)
	b[5] ^= 1
	if _, err := decodeCursor(b); err == nil {
		t.Fatal("a damaged cursor decoded")
	}
	if _, err := decodeCursor(b[:10]); err == nil {
		t.Fatal("a short cursor decoded")
	}
}

// FuzzSegmentReader feeds arbitrary bytes as a segment file: the reader must not
// panic, must return only payloads whose checksum holds, and must never allocate more
// for a record than the bytes left in the file.
func FuzzSegmentReader(f *testing.F) {
	valid := buildSegment(uint32(MinSegmentSize), []byte("hello"), []byte{}, bytes.Repeat([]byte{7}, 300), []byte("end"))
	f.Add(valid)
	f.Add(valid[:headerSize])
	f.Add(valid[:len(valid)-2])
	f.Add(valid[:headerSize+5])
	f.Add(valid[:9])
	f.Add([]byte{})
	f.Add(flip(valid, 3))
	f.Add(flip(valid, headerSize+2))
	f.Add(flip(valid, headerSize+frameSize+2))
	f.Add(flip(valid, len(valid)-1))
	f.Add(append(bytes.Clone(valid), make([]byte, 64)...))
	f.Add(append(bytes.Clone(valid[:headerSize]), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0))
	f.Add(buildSegment(uint32(MaxSegmentSize), bytes.Repeat([]byte("big"), 2000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		alloc := func(n int) []byte {
			if n < 0 || n > len(data)-framing {
				t.Fatalf("allocating %d bytes for a record in a %d-byte file", n, len(data))
			}
			return make([]byte, n)
		}
		payloads, err := readSegment(t, data, alloc)
		var c *corruption
		if err != nil && !errors.Is(err, errEmptySegment) && !errors.As(err, &c) {
			t.Fatalf("reading bytes from memory failed with %v; want only damage", err)
		}
		if err == nil && len(data) < headerSize {
			t.Fatalf("a %d-byte file read cleanly", len(data))
		}
		total := 0
		for _, p := range payloads {
			total += frameSize + len(p)
		}
		if total > len(data)-headerSize && len(payloads) > 0 {
			t.Fatalf("%d bytes of records from a %d-byte file", total, len(data))
		}
		// Each payload's checksum is the one stored in front of it.
		off := headerSize
		for _, p := range payloads {
			stored := uint32(data[off+4]) | uint32(data[off+5])<<8 | uint32(data[off+6])<<16 | uint32(data[off+7])<<24
			if payloadCRC(p) != stored || !bytes.Equal(data[off+frameSize:off+frameSize+len(p)], p) {
				t.Fatalf("record at %d returned with a wrong checksum or content", off)
			}
			off += frameSize + len(p)
		}
		// The walk that counts records at Open never counts fewer than the reader
		// delivers.
		if n := countRecords(bytes.NewReader(data), int64(len(data)), 0, newSegmentReader().br); n < len(payloads) {
			t.Fatalf("countRecords = %d; the reader delivered %d", n, len(payloads))
		}
	})
}
