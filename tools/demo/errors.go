package main

import (
	"fmt"

	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// printEvents prints the events at the Sentry receiver that carry traceID.
func printEvents(srv *sentrytest.Server, traceID string) error {
	events := eventsOf(srv, traceID)
	for _, e := range events {
		src, _ := e.Tag("outrider.source")
		exc := e.Exceptions()
		title, frames := e.Message(), 0
		if len(exc) > 0 {
			last := exc[len(exc)-1]
			title, frames = last.Type+": "+last.Value, len(last.Frames)
		}
		contexts, _ := e.Payload["contexts"].(map[string]any)
		_, links := contexts["grafana"]
		fmt.Printf("    Sentry: from %-4s  %-60.60s  frames=%-2d links to Grafana=%t\n", src, title, frames, links)
	}
	if len(events) == 0 {
		return fmt.Errorf("no Sentry event carries the failed request's trace_id %s", traceID)
	}
	return nil
}

// eventsOf returns the events at srv that carry traceID.
func eventsOf(srv *sentrytest.Server, traceID string) []sentrytest.Event {
	var out []sentrytest.Event
	for _, e := range srv.Events() {
		if e.TraceID() == traceID {
			out = append(out, e)
		}
	}
	return out
}
