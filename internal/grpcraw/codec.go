// Package grpcraw is a gRPC codec that passes serialized protobuf messages through
// untouched, for OTLP endpoints that decode (or never decode) requests themselves.
package grpcraw

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// Codec sends a []byte (or *[]byte) as the message and receives into a *[]byte, which
// gets its own copy of the message. Use it with grpc.ForceServerCodecV2 or
// grpc.ForceCodecV2; any other message type is an error.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name is "proto": on the wire the messages are protobuf like any other.
func (Codec) Name() string { return "proto" }

// Marshal implements encoding.CodecV2.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	}
	return nil, fmt.Errorf("grpcraw: cannot marshal %T, want []byte", v)
}

// Unmarshal implements encoding.CodecV2.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("grpcraw: cannot unmarshal into %T, want *[]byte", v)
	}
	n := data.Len()
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	data.CopyTo(*p)
	return nil
}
