//go:build unix

package render

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeCfg(mode string) FileConfig {
	c := FileConfig{Mode: mode}
	c.ApplyDefaults()
	return c
}

func TestWriteDefaultMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "db.env")
	changed, err := Write(p, []byte("A=1\n"), writeCfg(""))
	if err != nil || !changed {
		t.Fatalf("Write: changed=%v err=%v", changed, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o400 {
		t.Errorf("mode %o, want 0400", st.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); string(b) != "A=1\n" {
		t.Errorf("content %q", b)
	}
}

func TestWriteModes(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		mode string
		want os.FileMode
		err  string
	}{
		{"0440", 0o440, ""},
		{"0640", 0o640, ""},
		{"0600", 0o600, ""},
		{"0644", 0, "gives access to other users"},
		{"0402", 0, "gives access to other users"},
		{"1440", 0, "setuid, setgid and sticky"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			p := filepath.Join(dir, "f"+tt.mode)
			_, err := Write(p, []byte("x"), writeCfg(tt.mode))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if _, serr := os.Stat(p); !os.IsNotExist(serr) {
					t.Errorf("a file was written despite the refused mode")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(p)
			if st.Mode().Perm() != tt.want || st.Mode().Perm()&0o007 != 0 {
				t.Errorf("mode %o, want %o", st.Mode().Perm(), tt.want)
			}
		})
	}
}

func TestWriteSkipsUnchanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "db.env")
	cfg := writeCfg("")
	if _, err := Write(p, []byte("one"), cfg); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, p)

	changed, err := Write(p, []byte("one"), cfg)
	if err != nil || changed {
		t.Fatalf("unchanged write: changed=%v err=%v", changed, err)
	}
	st, _ := os.Stat(p)
	if !st.ModTime().Equal(old) || inode(t, p) != ino {
		t.Errorf("unchanged write touched the file: mtime %v (was %v)", st.ModTime(), old)
	}

	changed, err = Write(p, []byte("two"), cfg)
	if err != nil || !changed {
		t.Fatalf("changed write: changed=%v err=%v", changed, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" || inode(t, p) == ino {
		t.Errorf("content %q; a changed file must be replaced by rename (new inode)", b)
	}

	// Same bytes but the mode drifted: the file is rewritten with the configured mode.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err = Write(p, []byte("two"), cfg)
	st, _ = os.Stat(p)
	if err != nil || !changed || st.Mode().Perm() != 0o400 {
		t.Errorf("mode drift: changed=%v err=%v mode=%o", changed, err, st.Mode().Perm())
	}
	assertNoTempFiles(t, filepath.Dir(p), 1)
}

func TestWriteChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root; the CI and dev containers run tests as root")
	}
	p := filepath.Join(t.TempDir(), "db.env")
	uid, gid := 1000, 1000
	cfg := FileConfig{UID: &uid, GID: &gid}
	cfg.ApplyDefaults()
	changed, err := Write(p, []byte("x"), cfg)
	if err != nil || !changed {
		t.Fatalf("Write: %v %v", changed, err)
	}
	if u, g := owner(t, p); u != 1000 || g != 1000 {
		t.Errorf("owner %d:%d, want 1000:1000", u, g)
	}
	if changed, err := Write(p, []byte("x"), cfg); err != nil || changed {
		t.Errorf("unchanged chowned file rewritten: %v %v", changed, err)
	}

	// Owner drift is repaired; gid alone can be set.
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if changed, err := Write(p, []byte("x"), cfg); err != nil || !changed {
		t.Errorf("owner drift not repaired: %v %v", changed, err)
	}
	if u, g := owner(t, p); u != 1000 || g != 1000 {
		t.Errorf("owner %d:%d after repair", u, g)
	}
	gidOnly := FileConfig{GID: &gid}
	gidOnly.ApplyDefaults()
	q := filepath.Join(filepath.Dir(p), "g")
	if _, err := Write(q, []byte("y"), gidOnly); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(t, q); u != 0 || g != 1000 {
		t.Errorf("gid only: owner %d:%d, want 0:1000", u, g)
	}
	// Default: keep the writer's owner.
	r := filepath.Join(filepath.Dir(p), "r")
	if _, err := Write(r, []byte("z"), writeCfg("")); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(t, r); u != 0 || g != 0 {
		t.Errorf("default owner %d:%d, want 0:0", u, g)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()

	_, err := Write(filepath.Join(dir, "missing", "db.env"), []byte("x"), writeCfg(""))
	if err == nil || !strings.Contains(err.Error(), "the directory "+filepath.Join(dir, "missing")+" does not exist; create it") {
		t.Errorf("missing directory: %v", err)
	}

	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Write(filepath.Join(file, "db.env"), []byte("x"), writeCfg(""))
	if err == nil || !strings.Contains(err.Error(), file+" is not a directory") {
		t.Errorf("directory is a file: %v", err)
	}

	// The rename fails (the target is a non-empty directory): the temporary file goes.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	changed, err := Write(target, []byte("x"), writeCfg(""))
	if err == nil || changed {
		t.Fatalf("write over a directory: changed=%v err=%v", changed, err)
	}
	if !strings.Contains(err.Error(), "write "+target+": rename") {
		t.Errorf("error %q does not say what failed", err)
	}
	assertNoTempFiles(t, dir, 2)
}

func assertNoTempFiles(t *testing.T, dir string, want int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	if len(entries) != want {
		t.Errorf("directory holds %v, want %d entries", names, want)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func owner(t *testing.T, p string) (uid, gid int) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	u, g, ok := fileOwner(st)
	if !ok {
		t.Fatal("owner unknown")
	}
	return u, g
}
