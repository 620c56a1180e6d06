package main

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the child if benchtraces dies first, so no
// measured process outlives an interrupted run.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
