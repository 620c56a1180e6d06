package report

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

func TestTable(t *testing.T) {
	var b bytes.Buffer
	tbl := NewTable(&b, "system", "lines", "rate")
	tbl.Rowf("%s\t%d\t%.2f", "outrider", 1000, 2.5)
	tbl.Rowf("%s\t%d\t%s", "x", 7, "-")
	if err := tbl.Flush("ratio line", "(a note)"); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"system    lines  rate  \n" +
		"outrider  1000   2.50  \n" +
		"x         7      -     \n" +
		"ratio line\n" +
		"(a note)\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTableWriteError(t *testing.T) {
	tbl := NewTable(failingWriter{}, "a")
	tbl.Rowf("%d", 1)
	if err := tbl.Flush("note"); err == nil {
		t.Error("Flush on a failing writer succeeded")
	}
}

func TestRates(t *testing.T) {
	tests := []struct {
		name            string
		f               measure.Figures
		perSec, perCPUs string
	}{
		{name: "complete", f: measure.Figures{Complete: true, Delivered: 1000, Wall: 2 * time.Second, CPU: 300 * time.Millisecond}, perSec: "500", perCPUs: "3333"},
		{name: "incomplete", f: measure.Figures{Delivered: 1000, Wall: 2 * time.Second, CPU: time.Second}, perSec: "-", perCPUs: "-"},
		{name: "no CPU time", f: measure.Figures{Complete: true, Delivered: 5, Wall: time.Second}, perSec: "5", perCPUs: "-"},
		{name: "no wall time", f: measure.Figures{Complete: true, Delivered: 5, CPU: time.Second}, perSec: "-", perCPUs: "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perSec, perCPUs := Rates(tt.f)
			if perSec != tt.perSec || perCPUs != tt.perCPUs {
				t.Errorf("Rates = %q, %q; want %q, %q", perSec, perCPUs, tt.perSec, tt.perCPUs)
			}
		})
	}
}
