package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/outrider-dev/outrider/tools/bench/internal/loggen"
)

// inputStats describes the generated input.
type inputStats struct {
	lines, withSecret int64
	bytes             int64
}

// writeInput writes n loggen lines to path, adding to every leakEvery-th line one
// field that holds one of values (in one of the leakForms), and fsyncs the file.
func writeInput(path string, n int64, values []string, leakEvery int, seed uint64) (inputStats, error) {
	var st inputStats
	f, err := os.Create(path)
	if err != nil {
		return st, fmt.Errorf("create the input file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	g := loggen.New(seed)
	r := rand.New(rand.NewPCG(seed, 0x1eaf))
	var line []byte
	for i := range n {
		line = g.Append(line[:0])
		if leakEvery > 0 && len(values) > 0 && i%int64(leakEvery) == int64(leakEvery/2) {
			field, _ := leakForms[r.IntN(len(leakForms))](values[r.IntN(len(values))])
			line = insertField(line, field)
			st.withSecret++
		}
		if _, err := w.Write(line); err != nil {
			return st, fmt.Errorf("write the input file: %w", err)
		}
		st.lines++
		st.bytes += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		return st, fmt.Errorf("write the input file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("sync the input file: %w", err)
	}
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("close the input file: %w", err)
	}
	return st, nil
}
