package sink

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// maxDecoded bounds a decompressed request body, so a bad client cannot make the
// sink allocate without limit.
const maxDecoded = 256 << 20

// errUnsupported marks a request whose media type or content encoding the sink does
// not speak; it is answered with 415 instead of 400.
var errUnsupported = errors.New("unsupported")

// mediaType returns the bare media type of a Content-Type header ("" when absent).
func mediaType(contentType string) (string, error) {
	if contentType == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("content type %q: %w", contentType, err)
	}
	return mt, nil
}

// decodeContentEncoding undoes a Content-Encoding of gzip (or none).
func decodeContentEncoding(encoding string, body []byte) ([]byte, error) {
	switch encoding {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		if len(out) > maxDecoded {
			return nil, fmt.Errorf("gzip body decompresses to more than %d bytes", maxDecoded)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%w content encoding %q (want gzip or none)", errUnsupported, encoding)
	}
}

// CountLokiPush decodes a Loki push request body and returns the number of log
// entries in it and how many of them carry a non-empty trace_id structured
// metadata. Protobuf bodies (Content-Type application/x-protobuf, or none) are
// snappy block-compressed PushRequests, as Loki expects; application/json bodies
// are Loki's JSON push format, optionally gzip content-encoded.
func CountLokiPush(contentType, contentEncoding string, body []byte) (entries, withTrace int, err error) {
	mt, err := mediaType(contentType)
	if err != nil {
		return 0, 0, err
	}
	switch mt {
	case "application/json":
		data, err := decodeContentEncoding(contentEncoding, body)
		if err != nil {
			return 0, 0, err
		}
		return countLokiJSON(data)
	case "", "application/x-protobuf", "application/protobuf":
		if contentEncoding != "" && contentEncoding != "snappy" && contentEncoding != "identity" {
			return 0, 0, fmt.Errorf("%w content encoding %q for a protobuf Loki push (the body is snappy-compressed itself)", errUnsupported, contentEncoding)
		}
		n, err := snappy.DecodedLen(body)
		if err != nil {
			return 0, 0, fmt.Errorf("snappy body: %w", err)
		}
		if n > maxDecoded {
			return 0, 0, fmt.Errorf("snappy body decompresses to %d bytes, more than %d", n, maxDecoded)
		}
		data, err := snappy.Decode(nil, body)
		if err != nil {
			return 0, 0, fmt.Errorf("snappy body: %w", err)
		}
		var req push.PushRequest
		if err := req.Unmarshal(data); err != nil {
			return 0, 0, fmt.Errorf("protobuf PushRequest: %w", err)
		}
		for _, s := range req.Streams {
			entries += len(s.Entries)
			for _, e := range s.Entries {
				if hasTraceID(e.StructuredMetadata) {
					withTrace++
				}
			}
		}
		return entries, withTrace, nil
	default:
		return 0, 0, fmt.Errorf("%w content type %q (want application/x-protobuf or application/json)", errUnsupported, mt)
	}
}

func hasTraceID(md push.LabelsAdapter) bool {
	for _, l := range md {
		if l.Name == "trace_id" && l.Value != "" {
			return true
		}
	}
	return false
}

// lokiJSONPush is Loki's JSON push body:
// {"streams":[{"stream":{labels},"values":[["<ns>","<line>",{metadata}]]}]}.
type lokiJSONPush struct {
	Streams []struct {
		Stream map[string]string   `json:"stream"`
		Values [][]json.RawMessage `json:"values"`
	} `json:"streams"`
}

func countLokiJSON(data []byte) (entries, withTrace int, err error) {
	var req lokiJSONPush
	if err := json.Unmarshal(data, &req); err != nil {
		return 0, 0, fmt.Errorf("JSON push body: %w", err)
	}
	for si, s := range req.Streams {
		for vi, v := range s.Values {
			if len(v) < 2 || len(v) > 3 {
				return 0, 0, fmt.Errorf("JSON push body: streams[%d].values[%d] has %d elements, want [timestamp, line] or [timestamp, line, metadata]", si, vi, len(v))
			}
			var ts, line string
			if err := json.Unmarshal(v[0], &ts); err != nil {
				return 0, 0, fmt.Errorf("JSON push body: streams[%d].values[%d] timestamp: %w", si, vi, err)
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return 0, 0, fmt.Errorf("JSON push body: streams[%d].values[%d] line: %w", si, vi, err)
			}
			entries++
			if len(v) == 3 {
				var md map[string]string
				if err := json.Unmarshal(v[2], &md); err != nil {
					return 0, 0, fmt.Errorf("JSON push body: streams[%d].values[%d] structured metadata: %w", si, vi, err)
				}
				if md["trace_id"] != "" {
					withTrace++
				}
			}
		}
	}
	return entries, withTrace, nil
}

// CountOTLPLogs decodes an OTLP/HTTP logs export body (protobuf, or JSON with
// Content-Type application/json; optionally gzip content-encoded) and returns the
// number of log records and how many have a non-empty trace ID.
func CountOTLPLogs(contentType, contentEncoding string, body []byte) (records, withTrace int, err error) {
	mt, err := mediaType(contentType)
	if err != nil {
		return 0, 0, err
	}
	data, err := decodeContentEncoding(contentEncoding, body)
	if err != nil {
		return 0, 0, err
	}
	req := plogotlp.NewExportRequest()
	switch mt {
	case "application/x-protobuf", "application/protobuf", "":
		if err := req.UnmarshalProto(data); err != nil {
			return 0, 0, fmt.Errorf("OTLP protobuf logs request: %w", err)
		}
	case "application/json":
		if err := req.UnmarshalJSON(data); err != nil {
			return 0, 0, fmt.Errorf("OTLP JSON logs request: %w", err)
		}
	default:
		return 0, 0, fmt.Errorf("%w content type %q (want application/x-protobuf or application/json)", errUnsupported, mt)
	}
	rls := req.Logs().ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			records += lrs.Len()
			for k := range lrs.Len() {
				if !lrs.At(k).TraceID().IsEmpty() {
					withTrace++
				}
			}
		}
	}
	return records, withTrace, nil
}
