package agent

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/outrider-dev/outrider/config"
)

// TestApplyRuntimeMaxProcs: runtime.max_procs sets GOMAXPROCS (the default config
// says 1), 0 gives it back to the Go runtime, and GOMAXPROCS in the environment wins.
func TestApplyRuntimeMaxProcs(t *testing.T) {
	prevProcs, prevGC := runtime.GOMAXPROCS(0), debug.SetGCPercent(-1)
	debug.SetGCPercent(prevGC) // SetGCPercent only reads by writing
	t.Cleanup(func() {
		runtime.GOMAXPROCS(prevProcs)
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(-1)
	})
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")

	def := config.Default().Runtime
	if def.MaxProcs != 1 {
		t.Fatalf("default runtime.max_procs %d, want 1", def.MaxProcs)
	}
	applyRuntime(config.Runtime{GCPercent: 50, MaxProcs: 3})
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("max_procs 3: GOMAXPROCS %d", got)
	}
	applyRuntime(config.Runtime{GCPercent: 50, MaxProcs: 0})
	if got, cpus := runtime.GOMAXPROCS(0), runtime.NumCPU(); got < 1 || got > cpus || got == 3 && cpus != 3 {
		t.Errorf("max_procs 0: GOMAXPROCS %d, want the runtime's default (%d CPUs)", got, cpus)
	}

	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	applyRuntime(config.Runtime{GCPercent: 50, MaxProcs: 1})
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS=2 in the environment: GOMAXPROCS %d after max_procs 1, want 2", got)
	}
}
