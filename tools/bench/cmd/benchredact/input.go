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
// field that holds one of values, in each of the leakForms in turn, and fsyncs the
// file.
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
	slot := 0 // leak lines so far: which form is next
	for i := range n {
		line = g.Append(line[:0])
		if leakEvery > 0 && len(values) > 0 && i%int64(leakEvery) == int64(leakEvery/2) {
			slot++
			if field, ok := leakField(leakForms[(slot-1)%len(leakForms)], values, r); ok {
				line = insertField(line, field)
				st.withSecret++
			}
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

// leakField returns form f's field for a value drawn from values, trying them in
// turn from a random one until one has the form (see leakForm.field); ok is false
// when none has.
func leakField(f leakForm, values []string, r *rand.Rand) (string, bool) {
	first := r.IntN(len(values))
	for k := range values {
		if field, _, ok := f.field(values[(first+k)%len(values)]); ok {
			return field, true
		}
	}
	return "", false
}
