package tail

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// fingerprintBytes is how much of the start of a file identifies it, so that a file
// that got the inode of a deleted one is not taken for it.
const fingerprintBytes = 1024

// positionsVersion is the version of the positions file format.
const positionsVersion = 1

// positionsFile is the JSON document a source saves its read positions in.
type positionsFile struct {
	Version int        `json:"version"`
	Files   []position `json:"files"`
}

// position is the acknowledged offset of one file, identified by device and inode
// and checked by a fingerprint of its first bytes.
type position struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
	// Shipped holds, per stream of a cri or docker file (stdout, stderr, raw), the
	// end offset of the last record acknowledged when it is past Offset: Offset is
	// where an unfinished line of another stream begins, and the records of that
	// stream up to Shipped are not sent again when the file is read again from Offset.
	Shipped map[string]int64 `json:"shipped,omitempty"`
	// Fingerprint is the FNV-1a 64-bit hash, in hex, of the first FingerprintBytes
	// bytes of the file.
	Fingerprint      string `json:"fingerprint"`
	FingerprintBytes int    `json:"fingerprint_bytes"`
}

func (p position) id() fileID { return fileID{dev: p.Dev, ino: p.Inode} }

// loadPositions reads a positions file. A missing file is no positions at all.
func loadPositions(path string) (map[fileID]position, error) {
	out := map[fileID]position{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read positions file %s: %w", path, err)
	}
	var pf positionsFile
	if err := json.Unmarshal(data, &pf); err != nil {
		return out, fmt.Errorf("positions file %s is not valid JSON (%w); remove it to start over", path, err)
	}
	if pf.Version != positionsVersion {
		return out, fmt.Errorf("positions file %s has version %d; this agent reads version %d", path, pf.Version, positionsVersion)
	}
	for _, p := range pf.Files {
		if p.Offset < 0 || p.FingerprintBytes < 0 || p.FingerprintBytes > fingerprintBytes || !validShipped(p) {
			continue
		}
		out[p.id()] = p
	}
	return out, nil
}

// hashPrefix returns the fingerprint of the first n bytes of f, and false when f is
// shorter than n bytes.
func hashPrefix(f io.ReaderAt, n int) (uint64, bool) {
	var buf [fingerprintBytes]byte
	if n > len(buf) {
		n = len(buf)
	}
	got, err := f.ReadAt(buf[:n], 0)
	if got < n {
		return 0, false
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false
	}
	h := fnv.New64a()
	h.Write(buf[:n])
	return h.Sum64(), true
}

func formatFingerprint(h uint64) string { return strconv.FormatUint(h, 16) }

// matches reports whether f, a file with the position's device and inode, is still
// the file the position was saved for.
func (p position) matches(f io.ReaderAt) bool {
	h, ok := hashPrefix(f, p.FingerprintBytes)
	return ok && formatFingerprint(h) == p.Fingerprint
}

// shippedKey names stream i in position.Shipped.
func shippedKey(i int) string {
	if i == streamRaw {
		return "raw"
	}
	return streamNames[i]
}

// validShipped reports whether p's shipped offsets name known streams and are not
// before its offset.
func validShipped(p position) bool {
	for k, v := range p.Shipped {
		if v < p.Offset {
			return false
		}
		switch k {
		case "raw", "stdout", "stderr":
		default:
			return false
		}
	}
	return true
}

// shippedMap returns the shipped offsets past offset, by stream name, or nil.
func shippedMap(shipped *[numStreams]int64, offset int64) map[string]int64 {
	var m map[string]int64
	for i, v := range shipped {
		if v > offset {
			if m == nil {
				m = make(map[string]int64, numStreams)
			}
			m[shippedKey(i)] = v
		}
	}
	return m
}
