// Package secretfile reads credentials (passwords, tokens, header values) from files,
// such as the keys of a Kubernetes Secret mounted as a volume, and reads each again
// when it changes, so a rotated credential is used without a restart. It also carries
// where each file comes from (Sources), so that a backend's refusal can name the
// Secret and key to fix.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// MaxBytes bounds what is read of a credential file; a credential is short.
const MaxBytes = 64 << 10

// File is a credential read from a file, re-read when the file's identity (device
// and inode, which a Secret volume's symlink swap changes), size or modification
// time change. Surrounding whitespace, such as a trailing newline, is trimmed.
type File struct {
	path string

	mu    sync.Mutex
	val   string
	stamp stamp
	read  bool
}

type stamp struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// New returns a File for path; nothing is read until Get.
func New(path string) *File { return &File{path: path} }

// Path returns the file's path.
func (f *File) Path() string { return f.path }

func statFile(path string) (stamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	s := stamp{size: st.Size(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(sys.Dev), sys.Ino //nolint:unconvert // Dev is int32 or uint64 by platform
	}
	return s, nil
}

// Get returns the file's value, read again when the file changed. An empty file, one
// larger than MaxBytes or one that cannot be read is an error naming the path.
func (f *File) Get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := statFile(f.path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.path, unwrapPath(err))
	}
	if f.read && st == f.stamp {
		return f.val, nil
	}
	v, err := Read(f.path)
	if err != nil {
		return "", err
	}
	f.val, f.stamp, f.read = v, st, true
	return v, nil
}

// Read reads a credential file once: at most MaxBytes, whitespace trimmed, not empty.
func Read(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	if len(b) > MaxBytes {
		return "", fmt.Errorf("%s is larger than %d bytes; it must hold only the credential", path, MaxBytes)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty; it must hold the credential", path)
	}
	return v, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// CheckReadable adds a problem at field when path cannot be opened for reading or is
// a directory.
func CheckReadable(p *confval.Problems, field, path string) {
	fh, err := os.Open(path)
	if err != nil {
		p.Addf(field, "cannot read %q: %v", path, unwrapPath(err))
		return
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.IsDir() {
		p.Addf(field, "cannot read %q: is a directory, want a file", path)
	}
}

// Sources maps credential file paths to where they come from, such as
// `Secret "loki-auth" key "password"` (the injector writes it), so that a backend's
// refusal names what to fix. It never holds a credential.
type Sources map[string]string

// Validate reports sources that name no file of the exporter (files), and
// descriptions holding line breaks.
func (s Sources) Validate(p *confval.Problems, files []string) {
	known := map[string]bool{}
	for _, f := range files {
		if f != "" {
			known[f] = true
		}
	}
	paths := make([]string, 0, len(s))
	for path := range s {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		switch {
		case !known[path]:
			p.Addf("", "%q is not a file this exporter reads; list only the files of its credential and tls settings", path)
		case strings.ContainsAny(s[path], "\r\n"):
			p.Addf("", "the description of %q must be a single line", path)
		}
	}
}

// Describe says where the credentials in files come from: each non-empty path,
// followed by its source when known, e.g.
// `/etc/outrider-creds/loki-auth/password (Secret "loki-auth" key "password")`.
func (s Sources) Describe(files ...string) string {
	var parts []string
	seen := map[string]bool{}
	for _, f := range files {
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		if src := s[f]; src != "" {
			parts = append(parts, f+" ("+src+")")
		} else {
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, ", ")
}
