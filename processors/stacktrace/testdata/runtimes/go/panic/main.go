// Command panic prints a line and panics with an error value, as an uncaught Go panic.
package main

import (
	"errors"
	"fmt"
	"os"
)

type store struct{}

func (s *store) charge(id int) error {
	panic(fmt.Errorf("charge %d: %w", id, errors.New("card declined")))
}

func main() {
	fmt.Fprintln(os.Stderr, "INFO before crash")
	s := &store{}
	_ = s.charge(42)
}
