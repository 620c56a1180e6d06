// Package lokiexporter is the exporter that pushes log records to Grafana Loki's push API
// (protobuf, snappy-compressed), wrapped in the shared batch → retry → timeout layers
// of exporters/exporterhelper.
//
// Records are grouped into streams by (record.Stream, record.Level). A stream's labels
// are the record stream's labels, then level (when known), then the configured static
// labels; on a name clash the earlier wins, so a stream's own labels are never
// overridden by configuration. Label names are sanitised to [a-zA-Z_][a-zA-Z0-9_]*.
// trace_id, span_id, request_id and record metadata are sent as structured metadata,
// never as labels, so they cost no index cardinality.
//
// Loki without structured metadata (2.x, or allow_structured_metadata false) refuses
// each entry carrying some with a 400 and stores the others. Config.StructuredMetadata
// auto (metaPolicy) then sends the refused entries again at once without it, their
// IDs written into the line (lineWithIDs), and so every entry after, asking Loki
// again after ReprobeInterval; on drops them with a hint; off never sends it.
//
// Strings are made valid UTF-8 before they are sent (utf8Fixer, labelValue): Loki
// refuses a push holding invalid UTF-8 in a label, and U+FFFD in a label value, as a
// whole.
//
// Loki's answers are classified once, here: 2xx delivered; 429 and 5xx retried (with
// Retry-After); connection failures retried; 401/403 and other 4xx permanent, with a
// reason (out_of_order, too_old, too_new, too_large, unauthorized, bad_request) for
// the dropped-records metric. A 400 whose messages all concern single entries means
// Loki stored the rest: exactly those entries are counted (pipeline.PartlyRejected).
// Any other refusal is exporterhelper.Splittable: the Sender pushes the parts that split
// returns (the request's streams for a refusal of stream labels, else its halves),
// so that only the records Loki refuses are dropped.
package lokiexporter
