// Package loki is the exporter that pushes log records to Grafana Loki's push API
// (protobuf, snappy-compressed), wrapped in the shared batch → retry → timeout layers
// of exporters/queue.
//
// Records are grouped into streams by (record.Stream, record.Level). A stream's labels
// are the record stream's labels, then level (when known), then the configured static
// labels; on a name clash the earlier wins, so a stream's own labels are never
// overridden by configuration. Label names are sanitised to [a-zA-Z_][a-zA-Z0-9_]*.
// trace_id, span_id, request_id and record metadata are sent as structured metadata,
// never as labels, so they cost no index cardinality.
//
// Loki's answers are classified once, here: 2xx delivered; 429 and 5xx retried (with
// Retry-After); connection failures retried; 401/403 and other 4xx dropped as
// permanent, with a reason (out_of_order, too_old, too_new, too_large, unauthorized,
// bad_request) for the dropped-records metric.
package loki
