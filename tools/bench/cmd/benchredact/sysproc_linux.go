package main

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the sink process if benchredact dies first.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
