// Command logpanic crashes through the standard logger: log.Panicf logs the message,
// then panics with it.
package main

import (
	"fmt"
	"log"
)

type order struct{ id int }

func charge(o *order) {
	log.Panicf("charge %d: card declined", o.id)
}

func main() {
	fmt.Println("INFO before crash")
	charge(&order{id: 42})
}
