// Package confval holds the value types configuration structs are made of — byte
// sizes, secrets — and Problems, which collects validation errors with field paths so
// that every problem is reported at once.
package confval
