//go:build !linux

package main

import "os/exec"

// killWithParent is a no-op where the kernel has no parent-death signal; the sink
// process still stops when its stdin closes.
func killWithParent(*exec.Cmd) {}
