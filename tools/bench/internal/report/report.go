// Package report writes benchmark results as text tables, columns aligned two
// spaces apart.
package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
)

// Table is a results table being written: a header row, one row per run, and
// lines below. Rows are buffered until Flush aligns them.
type Table struct {
	w  io.Writer
	tw *tabwriter.Writer
}

// NewTable starts a table on w with a header row naming the columns.
func NewTable(w io.Writer, columns ...string) *Table {
	t := &Table{w: w, tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(columns, "\t")+"\t")
	return t
}

// Rowf adds a row: format holds one verb (or text) per column, separated by tabs.
func (t *Table) Rowf(format string, args ...any) {
	fmt.Fprintf(t.tw, format+"\t\n", args...)
}

// Flush writes the aligned table, then each of lines, on a line of its own.
func (t *Table) Flush(lines ...string) error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(t.w, l); err != nil {
			return err
		}
	}
	return nil
}

// RunName labels f's row: its name, and its round when the benchmark has several
// ("outrider #2").
func RunName(f measure.Figures) string {
	if f.Round > 0 {
		return fmt.Sprintf("%s #%d", f.Name, f.Round)
	}
	return f.Name
}

// Rates returns the table cells for f's items per second and per CPU-second, in
// whole numbers, or "-" where the run did not complete or has no time to divide by.
func Rates(f measure.Figures) (perSecond, perCPUSecond string) {
	perSecond, perCPUSecond = "-", "-"
	if f.Complete && f.Wall > 0 {
		perSecond = strconv.FormatFloat(f.PerSecond(), 'f', 0, 64)
	}
	if f.Complete && f.CPU > 0 {
		perCPUSecond = strconv.FormatFloat(f.PerCPUSecond(), 'f', 0, 64)
	}
	return perSecond, perCPUSecond
}
