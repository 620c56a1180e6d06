//go:build !linux

package main

import "os/exec"

// killWithParent is a no-op where the kernel has no parent-death signal; benchtraces
// measures through /proc and so works on Linux only anyway.
func killWithParent(*exec.Cmd) {}
