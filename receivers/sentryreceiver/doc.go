// Package sentryreceiver is a local Sentry endpoint: applications point their Sentry
// SDK's DSN at the sidecar (http://<public_key>@127.0.0.1:4319/<project_id>) and
// outrider forwards their errors to the real Sentry.
//
// It accepts POST /api/<project>/envelope/ (Sentry envelopes, what current SDKs send)
// and the legacy POST /api/<project>/store/ (one event as JSON), optionally gzip- or
// deflate-compressed. Every request is authenticated against the configured public
// key (X-Sentry-Auth, the sentry_key query parameter, or the envelope header's dsn),
// parsed strictly (internal/sentryenv) within size limits, and each event is handed to
// a hook that enriches it and may drop it (volume control). The envelope is then
// re-serialized and written to the durable queue before the SDK is answered 200
// {"id": "<event_id>"}: a success means the event is on disk.
//
// A full queue answers 429 with Retry-After and an X-Sentry-Rate-Limits header
// without categories, which makes Sentry SDKs hold back every kind of data for that
// time; a failed write answers 503; a malformed request 400 with {"detail": reason},
// as Sentry does; an over-size one 413; a wrong key 401 naming the DSN to use.
//
// Queue entries are the serialized envelopes (sentryenv.Envelope.Marshal), with no
// extra header.
package sentryreceiver
