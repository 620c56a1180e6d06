// Package exporterhelper holds the layers every outrider exporter wraps around its push
// function, after the OpenTelemetry Collector's exporterhelper:
//
//	Add ─> Batcher ─> Queue ─> workers ─> Retrier ─> timeout ─> push
//
// The Batcher cuts incoming batches into requests of at most max_bytes (and, with
// WithRecordCount, of at most a number of records, for items that hold several), or
// after max_wait since a request's first item, and blocks Add while max_pending_bytes
// of data is unsent (buffered, queued or being pushed): backpressure that reaches the
// sources and bounds memory.
//
// The Queue carries requests from the Batcher to the workers. MemoryQueue keeps them in
// memory; a durable, on-disk Queue plugs in here (see Queue and NewWithQueue).
//
// Concurrency workers take requests and hand them to the Retrier, which calls push with
// a per-attempt timeout until it succeeds, fails permanently, or the exporter stops,
// with exponential backoff and jitter between attempts and Retry-After honoured.
//
// A delivered request acknowledges the source batches it covers with nil; a permanently
// rejected one is counted as dropped, logged (rate-limited), and acknowledged with the
// error; one still unsent when Shutdown's deadline passes is not acknowledged at all, so
// its source keeps it. With WithSplit, a request refused as a whole for what may be one
// bad item (Splittable) is pushed again in parts, recursively up to MaxSplitDepth, so
// that only the refused items are dropped, each counted once.
//
// Sender puts the layers together; each layer is usable and tested on its own. The
// package is generic over the item type, so the log, trace and error exporters can
// share it.
//
// The exporters that push over HTTP also share their client (NewHTTPClient), request
// body (RequestBody), response reading (ReadBody, CloseBody) and status classification
// (StatusPolicy, ParseRetryAfter), so a status means the same to all of them.
package exporterhelper
