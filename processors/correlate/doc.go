// Package correlate extracts and attaches trace_id, span_id and request_id, so that a
// log line links to its trace and a trace to its logs.
//
// For now it holds the W3C Trace Context parsing the log parsers use: ParseTraceparent
// for a traceparent value and FindTraceparent for one inside free text.
package correlate
