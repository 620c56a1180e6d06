//go:build !linux

package main

import "time"

// threadCPU is wall time where no thread CPU clock is used: the time in the
// redact sink then includes the time its thread was not running.
func threadCPU() time.Duration { return time.Duration(time.Now().UnixNano()) }
