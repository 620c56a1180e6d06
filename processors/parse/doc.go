// Package parse extracts a log line's level, time, trace id, span id and request id
// into its pipeline.Record. Sources call a Parser on every line, so parsing is built
// for speed: JSON and logfmt lines are read by hand-written scanners that do not
// allocate for ordinary lines, and no regular expression runs unless the format is
// "regex".
//
// # Formats
//
//   - "json": the line is one JSON object. Only top-level members (and the nested
//     objects a dotted field name leads into) are looked at; other nested values are
//     skipped, checked only for balanced brackets and well-formed strings. String
//     values are decoded exactly as encoding/json decodes them (escapes, surrogate
//     pairs, invalid UTF-8 replaced by U+FFFD). When the same key appears twice in one
//     object the last one wins, as with encoding/json. A syntax error stops the scan:
//     members completed before it (followed by ',' or '}') are used, nothing after
//     it.
//   - "logfmt": key=value pairs separated by spaces; values may be quoted with Go or
//     JSON escapes (strconv.Quote, as slog and logrus write them); bare keys without
//     '=' are skipped. When a key appears twice the last one wins.
//   - "regex": Config.Pattern with named groups level, time, trace_id, span_id,
//     request_id and traceparent; other groups (message, …) are ignored.
//   - "plain": cheap heuristics for free text: a leading timestamp, a level word in
//     the first 8 words (an upper-case level such as ERROR, WARN, INF; any case inside
//     brackets such as [error]; a capitalised word followed by a colon such as
//     "Error:"; a klog header such as I0102), key=value tokens anywhere (level=,
//     trace_id=, span_id=, request_id=, traceparent= and the other field names), and
//     otherwise a W3C traceparent anywhere in the line.
//   - "auto" (the default): a line whose first non-space byte is '{' followed by '"'
//     or '}' is read as JSON; otherwise a line whose first word is a key=value pair
//     and that has at least two pairs, one of them with a level, time or msg/message
//     key, is read as logfmt; anything else as plain.
//
// # Fields
//
// Each field has a list of names tried in order (see Config); the first name whose
// value is usable wins: a level that pipeline.ParseLevel knows (strings, or numbers
// such as bunyan's 30), a time within the years 1970 to 2200, a trace or span id that
// pipeline.NormalizeHexID accepts (strings only), a request id of 1 to 128 bytes
// without control characters (string or number). A dotted name such as "trace.id"
// matches a top-level key literally named "trace.id" first, then the nested path
// {"trace":{"id":…}} (names may have up to 3 dots; for "a.b.c" every split is tried,
// the literal key first). A traceparent fills the trace id when no trace id field is
// usable, and the span id when no span id field is usable and the trace ids agree.
//
// A Parser never fails: what it cannot read leaves the record's fields as they were.
package parse
