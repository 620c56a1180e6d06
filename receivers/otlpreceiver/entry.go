package otlpreceiver

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind says what a queue entry holds.
type Kind byte

// Entry kinds.
const (
	KindTraces Kind = 1 // an ExportTraceServiceRequest; Count is spans
	KindLogs   Kind = 2 // an ExportLogsServiceRequest; Count is log records
	// KindMetrics is an ExportMetricsServiceRequest; Count is data points.
	KindMetrics Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindTraces:
		return "traces"
	case KindLogs:
		return "logs"
	case KindMetrics:
		return "metrics"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// appendEntry appends the queue entry of a serialized request: a kind byte, the number
// of items as a uvarint, then the OTLP protobuf request.
func appendEntry(dst []byte, k Kind, count int, data []byte) []byte {
	dst = append(dst, byte(k))
	dst = binary.AppendUvarint(dst, uint64(count))
	return append(dst, data...)
}

// DecodeEntry splits a queue entry written by the receiver into its kind, item count
// and OTLP protobuf request (which aliases entry).
func DecodeEntry(entry []byte) (k Kind, count int, data []byte, err error) {
	if len(entry) < 2 {
		return 0, 0, nil, errors.New("otlp queue entry: too short")
	}
	k = Kind(entry[0])
	if k != KindTraces && k != KindLogs && k != KindMetrics {
		return 0, 0, nil, fmt.Errorf("otlp queue entry: unknown kind %d", entry[0])
	}
	n, w := binary.Uvarint(entry[1:])
	if w <= 0 || n > uint64(len(entry)) {
		return 0, 0, nil, errors.New("otlp queue entry: bad item count")
	}
	return k, int(n), entry[1+w:], nil
}
