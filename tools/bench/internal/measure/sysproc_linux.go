package measure

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// KillWithParent makes the kernel kill cmd's process if this one dies first, so no
// child outlives an interrupted benchmark.
func KillWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// exitUsage reads the rusage of an exited process: user plus system CPU time, and
// the peak RSS (ru_maxrss, which Linux gives in KiB).
func exitUsage(st *os.ProcessState) (cpu time.Duration, peakRSS int64, ok bool) {
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Maxrss * 1024, true
}
