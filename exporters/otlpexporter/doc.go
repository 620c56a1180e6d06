// Package otlpexporter is the exporter that sends spans to an OTLP backend — Tempo, and
// anything else that speaks OTLP (Jaeger, a Collector) — over gRPC or OTLP/HTTP
// (protobuf), wrapped in the shared batch → retry → timeout layers of exporters/exporterhelper.
// MetricsExporter is the same machinery for metrics (to Prometheus' or Mimir's OTLP
// endpoint): only the path, the gRPC method, the item counted (data points) and the
// messages differ (signal.go); what follows about spans holds for data points.
//
// The hot path never decodes a span. Spans arrive as pipeline.TraceBatch values, each a
// serialized ExportTraceServiceRequest; serialized requests concatenate into one valid
// request, so a request to the backend is the bytes of the batches it carries, one
// after the other. Over gRPC the batches' memory is handed to gRPC as it is (a
// pass-through codec; gRPC's gzip compresses it); over HTTP it is posted as it is or
// gzipped through a pooled writer into a pooled buffer. Only the export response is
// decoded, for its partial_success.
//
// Requests are cut at batch.max_bytes (of uncompressed spans), at max_spans, or
// batch.max_wait after their first batch; a batch is never split, so one larger than
// either limit is sent alone. The queue's sent and dropped record metrics count spans.
//
// Answers are classified once, in classify.go. gRPC: Unavailable, DeadlineExceeded,
// Aborted, Canceled, OutOfRange, DataLoss and ResourceExhausted are retried (with the
// delay of a RetryInfo detail), except gRPC's message size limit; Unauthenticated and PermissionDenied (check headers),
// Unimplemented and NotFound (check endpoint and protocol), InvalidArgument and the
// other codes are permanent. HTTP: 2xx is delivered; 429 and 5xx are retried,
// honouring Retry-After; 401/403, 404/405, 413 and other 4xx are permanent. A
// connection failure is retried. A response whose partial_success rejects spans drops
// exactly those (reason partial_success); one with only an error_message is logged as
// a warning. InvalidArgument, Internal for a request the server cannot unmarshal,
// gRPC's size limit, HTTP 400, 413 and other 4xx but auth and not-found are
// exporterhelper.Splittable: the Sender pushes the request's batches apart (in halves, down to
// single batches), so one bad batch does not drop the others.
package otlpexporter
