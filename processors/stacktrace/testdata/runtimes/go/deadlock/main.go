// Command deadlock prints a line and blocks forever: "fatal error: all goroutines are
// asleep - deadlock!" with a goroutine dump.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "INFO before crash")
	ch := make(chan int)
	<-ch
}
