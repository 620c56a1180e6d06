package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	changed, err := Write(p, []byte("one"), Options{Mode: 0o400})
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o400 {
		t.Errorf("mode %v, want 0400", st.Mode().Perm())
	}
	if changed, err = Write(p, []byte("one"), Options{SkipUnchanged: true}); err != nil || changed {
		t.Errorf("unchanged write: changed=%v err=%v", changed, err)
	}
	if changed, err = Write(p, []byte("two"), Options{SkipUnchanged: true}); err != nil || !changed {
		t.Errorf("changed write: changed=%v err=%v", changed, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("content %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if _, err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), Options{}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
