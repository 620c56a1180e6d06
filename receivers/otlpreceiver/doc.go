// Package otlpreceiver is the OTLP receiver: gRPC (default 127.0.0.1:4317) and HTTP (default
// 127.0.0.1:4318, /v1/traces, /v1/logs and /v1/metrics, protobuf or JSON, optionally
// gzip) for the application's OpenTelemetry SDK.
//
// Every request is decoded, checked, enriched with the pod's resource attributes,
// scrubbed of live secret values, and written to a durable queue before the client is
// answered: a success response means the data is on disk. A full queue answers HTTP
// 429 / gRPC RESOURCE_EXHAUSTED with a retry delay, so the SDK retries instead of
// losing data; a malformed request gets HTTP 400 / INVALID_ARGUMENT with the reason,
// and spans that cannot be stored (no trace or span ID), or metrics without a name,
// are refused with a partial-success response naming how many and why.
//
// Queue entries are the enriched request in OTLP protobuf form behind a short header
// (see EncodeEntry), so that exporters can send spans on without decoding them again.
package otlpreceiver
