// Package pipeline holds the contracts between outrider's sources and exporters:
// the log record, batches with their acknowledgement, the Sink and Source
// interfaces, and the error classes every exporter uses to say what went wrong.
//
// Only the agent package wires sources to sinks. This package imports nothing of
// outrider's and nothing outside the standard library.
package pipeline
