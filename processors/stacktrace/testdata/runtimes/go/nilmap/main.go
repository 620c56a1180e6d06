// Command nilmap prints a line and writes to a nil map: a runtime error panic.
package main

import (
	"fmt"
	"os"
)

func record(m map[string]int, k string) { m[k]++ }

func main() {
	fmt.Fprintln(os.Stderr, "INFO before crash")
	var m map[string]int
	record(m, "orders")
}
