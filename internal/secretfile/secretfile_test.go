package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/confval"
)

// swap replaces dir/..data with a new directory holding value, as the kubelet
// updates a Secret volume.
func swap(t *testing.T, dir, gen, value string) {
	t.Helper()
	d := filepath.Join(dir, "..gen"+gen)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "token"), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..gen"+gen, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestFileFollowsSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	swap(t, dir, "1", "first\n")
	path := filepath.Join(dir, "token")
	if err := os.Symlink("..data/token", path); err != nil {
		t.Fatal(err)
	}
	f := New(path)
	if v, err := f.Get(); err != nil || v != "first" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// Same size, as a rotated token of the same length: the inode tells it apart.
	swap(t, dir, "2", "secnd\n")
	if v, err := f.Get(); err != nil || v != "secnd" {
		t.Fatalf("after the swap Get = %q, %v", v, err)
	}
}

func TestReadProblems(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	big := filepath.Join(dir, "big")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	os.WriteFile(big, []byte(strings.Repeat("x", MaxBytes+1)), 0o600)
	cases := []struct{ path, want string }{
		{empty, "is empty"},
		{big, "larger than"},
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "is a directory"},
	}
	for _, tc := range cases {
		if _, err := New(tc.path).Get(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Get(%s) = %v; want an error naming the file and %q", tc.path, err, tc.want)
		}
	}
}

func TestSources(t *testing.T) {
	s := Sources{"/a": `Secret "x" key "a"`, "/b": "two\nlines", "/c": "c"}
	var p confval.Problems
	s.Validate(p.At("credential_sources"), []string{"/a", "/b", ""})
	err := p.Err()
	if err == nil || !strings.Contains(err.Error(), `credential_sources: "/c" is not a file this exporter reads`) || !strings.Contains(err.Error(), "single line") {
		t.Fatalf("Validate = %v", err)
	}
	if got := s.Describe("/a", "", "/d", "/a"); got != `/a (Secret "x" key "a"), /d` {
		t.Errorf("Describe = %q", got)
	}
}
