//go:build !linux

package measure

import (
	"os"
	"os/exec"
	"time"
)

// KillWithParent is a no-op where the kernel has no parent-death signal; the
// benchmarks measure through /proc and so work on Linux only anyway.
func KillWithParent(*exec.Cmd) {}

// exitUsage is not available: the units of rusage differ between systems, and the
// benchmarks measure on Linux.
func exitUsage(*os.ProcessState) (time.Duration, int64, bool) { return 0, 0, false }
