// Package spancount counts the spans of a serialized OTLP ExportTraceServiceRequest
// by walking the protobuf wire format, without decoding it into pdata: a benchmark's
// sink that counts millions of spans must leave the CPU to the system it measures.
package spancount

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP messages Count walks.
const (
	fieldRequestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fieldResourceScopeSpans   = 2 // ResourceSpans.scope_spans
	fieldScopeSpans           = 2 // ScopeSpans.spans
	fieldSpanAttributes       = 9 // Span.attributes
)

// ErrMalformed reports a request that is not valid protobuf.
var ErrMalformed = errors.New("malformed protobuf")

// Count returns how many spans the serialized ExportTraceServiceRequest req holds
// and, when wantAttrs > 0, how many of them do not have exactly wantAttrs
// attributes. It does not allocate.
func Count(req []byte, wantAttrs int) (spans, wrongAttrs int64, err error) {
	err = eachBytesField(req, fieldRequestResourceSpans, func(rs []byte) error {
		return eachBytesField(rs, fieldResourceScopeSpans, func(ss []byte) error {
			return eachBytesField(ss, fieldScopeSpans, func(span []byte) error {
				spans++
				if wantAttrs <= 0 {
					return nil
				}
				attrs := 0
				if err := eachBytesField(span, fieldSpanAttributes, func([]byte) error { attrs++; return nil }); err != nil {
					return err
				}
				if attrs != wantAttrs {
					wrongAttrs++
				}
				return nil
			})
		})
	})
	if err != nil {
		return 0, 0, err
	}
	return spans, wrongAttrs, nil
}

// eachBytesField calls fn with the payload of every length-delimited field num of the
// message b, skipping other fields.
func eachBytesField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(l))
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return fmt.Errorf("%w: field %d: %w", ErrMalformed, n, protowire.ParseError(l))
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrMalformed, n, protowire.ParseError(l))
		}
		b = b[l:]
	}
	return nil
}
