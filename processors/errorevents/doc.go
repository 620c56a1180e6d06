// Package errorevents turns errors into Sentry events and keeps their volume in check.
//
// Three paths end here: error-level log records that carry a stack trace (FromLog),
// spans with status ERROR or OpenTelemetry "exception" events (FromTraces), and events
// the application's own Sentry SDK sent to the sidecar (Process). Each event gets the
// same treatment: correlation IDs (trace context, request_id tag), the pod's tags,
// environment and release, Grafana links to the trace in Tempo and the logs in Loki
// when configured, a stable fingerprint per error kind, and admission by a
// per-fingerprint limiter, so that a crash loop yields a bounded number of events that
// carry the count of what they stand for.
//
// LokiSink (errors.to_loki) turns each event on its way out of the errors queue into a
// one-line summary in Loki's {source="outrider-errors"} stream, with the event ID,
// exception type and fingerprint as structured metadata, before it goes to Sentry.
package errorevents
