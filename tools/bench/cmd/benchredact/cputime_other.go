//go:build !unix

package main

import (
	"errors"
	"time"
)

// processCPU is not available: the file source needs a Unix system anyway.
func processCPU() (time.Duration, error) {
	return 0, errors.New("measuring CPU time needs getrusage (a Unix system)")
}
