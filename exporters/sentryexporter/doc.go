// Package sentryexporter is the exporter that forwards Sentry envelopes — the application's
// own, received by the sidecar's Sentry endpoint, and the events outrider derives
// from logs and spans — to the real Sentry project of its DSN, wrapped in the shared
// queue → retry → timeout layers of exporters/exporterhelper.
//
// # Sending
//
// Each envelope is one request: POST <scheme>://<host>[/<path>]/api/<project_id>/envelope/
// with Content-Type application/x-sentry-envelope, the body gzip-compressed, and
// X-Sentry-Auth "Sentry sentry_version=7, sentry_client=outrider/<version>,
// sentry_key=<DSN public key>". Only the envelope header is rewritten: its "dsn"
// (which pointed at the sidecar) becomes the upstream DSN, the "public_key" of its
// trace context too when it was the application's key, and "sent_at" is set to the
// time of each attempt, since Sentry corrects clock drift with it. Items are sent
// byte for byte as exported. The DSN's key never appears in a log line, error or
// metric.
//
// # Rate limits
//
// Sentry announces rate limits per data category in the X-Sentry-Rate-Limits header
// of any response (2xx included), and with a 429 whose Retry-After (60s without one)
// then holds every category. The exporter keeps a deadline per category and never
// sends an envelope while any of its items' categories (sentryenv.Category) is
// limited; nothing is dropped for a rate limit:
//
//   - Envelopes waiting in the exporter's queue for a limited category stay there,
//     holding no worker, while envelopes of other categories are handed out past
//     them; when the limit passes they are sent in arrival order.
//   - An envelope already in flight when Sentry limits its category (its own answer
//     is the 429) waits in its worker's retrier, as pipeline.Retryable until the
//     deadline, and then is sent again (exactly once more, unless the limit is
//     renewed). It gives its sending slot back while it waits: the exporter runs
//     four workers per unit of concurrency, so up to three times concurrency
//     envelopes can wait this way while concurrency others are sent. An envelope
//     coming back from such a wait may briefly take the requests in flight past
//     concurrency.
//   - Envelopes held back count against max_pending_bytes. When a long limit fills
//     it, ExportEnvelope blocks, and the envelopes wait upstream (in the durable
//     queue), not in memory.
//
// A limit is remembered for at most 24 hours; a longer one makes the exporter send one
// envelope a day, to which Sentry answers with the limit again. Time an envelope
// waits in the queue does not count towards retry.max_elapsed; a wait in a retrier
// does (with the default max_elapsed 0, retries last until shutdown).
//
// # Answers
//
// 2xx: delivered. 429: rate limited, as above. 5xx and connection failures: retried
// with backoff, honouring Retry-After. 400, 413 and other 4xx: dropped with reason
// bad_request or too_large, logged with the "detail" Sentry gave; 401 and 403:
// dropped with reason unauthorized and a hint to check the DSN's key; 404 and 405:
// reason not_found. Data that is not a valid envelope is never sent and is dropped
// with reason invalid_envelope. Dropped envelopes are acknowledged with the permanent
// error; envelopes still unsent at shutdown are not acknowledged at all.
//
// # Metrics
//
// The queue's exporter metrics count envelopes as records. Beside them,
// outrider_sentry_rate_limited_seconds_total{exporter,category} counts the seconds
// of rate limiting Sentry announced per category (see NewMetrics).
package sentryexporter
