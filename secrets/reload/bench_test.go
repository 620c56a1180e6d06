package reload

import (
	"os"
	"testing"
	"time"
)

// BenchmarkNotify measures the cost a change adds to the secrets hot path.
func BenchmarkNotify(b *testing.B) {
	r, err := New(Config{Method: MethodExec, Command: []string{"/bin/true"}, MinWait: time.Hour, MaxWait: time.Hour}, Settings{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Notify("/vault/secrets/db.env")
	}
}

// BenchmarkFindProcess measures one scan of /proc for a process name, the work of a
// signal reload by name.
func BenchmarkFindProcess(b *testing.B) {
	fs := procFS{dir: "/proc", self: os.Getpid()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fs.find("outrider-bench-no-such-process", false); err != nil {
			b.Fatal(err)
		}
	}
}
