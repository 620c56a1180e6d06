package jaegertest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Span is one stored span, flattened for assertions. IDs are lowercase hex.
type Span struct {
	TraceID, SpanID string
	// ParentSpanID is empty for a root span.
	ParentSpanID string
	Name         string
	// Kind is the span kind as pdata names it: "Server", "Client", "Internal", ….
	Kind string
	// Service is the resource's service.name.
	Service string
	// Resource holds every resource attribute (service.name included), values as
	// strings (pcommon.Value.AsString: numbers in decimal, maps and slices as JSON).
	Resource map[string]string
	// Scope is the instrumentation scope's name.
	Scope string
	// Attributes holds the span's attributes, values as strings. Jaeger's own
	// annotations ("@jaeger@warnings", added by its query-time adjusters) are left out.
	Attributes map[string]string
	Start, End time.Time
	// StatusCode is "Unset", "Ok" or "Error"; StatusMessage its description.
	StatusCode, StatusMessage string
}

// jaegerAttrPrefix marks attributes Jaeger adds when it serves a trace.
const jaegerAttrPrefix = "@jaeger@"

// DefaultWait is how long WaitForTrace polls when ctx has no deadline.
const DefaultWait = 30 * time.Second

// GetTrace returns the spans Jaeger stored for the trace, sorted by start time then
// span ID; nil, nil when Jaeger has no such trace.
func (j *Jaeger) GetTrace(ctx context.Context, traceIDHex string) ([]Span, error) {
	td, err := j.GetTraceData(ctx, traceIDHex)
	if err != nil {
		return nil, err
	}
	return Spans(td), nil
}

// GetTraceData returns the trace as Jaeger's api_v3 serves it, as OTLP data (attribute
// types intact, Jaeger's own "@jaeger@" annotations included); empty Traces when
// Jaeger has no such trace.
func (j *Jaeger) GetTraceData(ctx context.Context, traceIDHex string) (ptrace.Traces, error) {
	id := strings.ToLower(traceIDHex)
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		return ptrace.NewTraces(), fmt.Errorf("%w, got %q", errBadTraceID, traceIDHex)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL()+"/api/v3/traces/"+id, nil)
	if err != nil {
		return ptrace.NewTraces(), err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ptrace.NewTraces(), fmt.Errorf("jaeger query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return ptrace.NewTraces(), fmt.Errorf("jaeger query: read the answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return ParseTraceResponse(body)
	case http.StatusNotFound:
		return ptrace.NewTraces(), nil
	default:
		return ptrace.NewTraces(), fmt.Errorf("jaeger query trace %s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
}

// WaitForTrace polls GetTrace until the trace has at least wantSpans spans and returns
// them. When ctx ends first (after DefaultWait if ctx has no deadline) it returns what
// it last saw with an error that says how many spans arrived.
func (j *Jaeger) WaitForTrace(ctx context.Context, traceIDHex string, wantSpans int) ([]Span, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWait)
		defer cancel()
	}
	var last []Span
	var lastErr error
	for {
		spans, err := j.GetTrace(ctx, traceIDHex)
		if errors.Is(err, errBadTraceID) {
			return nil, err
		}
		if err == nil {
			last = spans
			if len(spans) >= wantSpans {
				return spans, nil
			}
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("%d of %d spans of trace %s reached jaeger", len(last), wantSpans, traceIDHex)
			if lastErr != nil {
				return last, fmt.Errorf("%s (last query error: %v): %w", msg, lastErr, ctx.Err())
			}
			return last, fmt.Errorf("%s: %w", msg, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ParseTraceResponse decodes an api_v3 GetTrace answer: one or more JSON objects
// {"result": <OTLP JSON TracesData>} (a streamed answer has one per chunk), or
// {"error": {...}}.
func ParseTraceResponse(body []byte) (ptrace.Traces, error) {
	out := ptrace.NewTraces()
	dec := json.NewDecoder(bytes.NewReader(body))
	var um ptrace.JSONUnmarshaler
	for {
		var chunk struct {
			Result json.RawMessage `json:"result"`
			Error  *struct {
				HTTPCode int    `json:"httpCode"`
				Message  string `json:"message"`
			} `json:"error"`
		}
		err := dec.Decode(&chunk)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return ptrace.NewTraces(), fmt.Errorf("decode jaeger api_v3 answer: %w", err)
		}
		if chunk.Error != nil {
			return ptrace.NewTraces(), fmt.Errorf("jaeger api_v3 error %d: %s", chunk.Error.HTTPCode, chunk.Error.Message)
		}
		if len(chunk.Result) == 0 {
			return ptrace.NewTraces(), errors.New("decode jaeger api_v3 answer: neither result nor error")
		}
		td, err := um.UnmarshalTraces(chunk.Result)
		if err != nil {
			return ptrace.NewTraces(), fmt.Errorf("decode jaeger api_v3 result: %w", err)
		}
		td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
	}
}

// Spans flattens td into Spans sorted by start time, then span ID.
func Spans(td ptrace.Traces) []Span {
	var out []Span
	for _, rs := range td.ResourceSpans().All() {
		res := attrMap(rs.Resource().Attributes())
		service := res["service.name"]
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s := Span{
					TraceID:       sp.TraceID().String(),
					SpanID:        sp.SpanID().String(),
					Name:          sp.Name(),
					Kind:          sp.Kind().String(),
					Service:       service,
					Resource:      res,
					Scope:         ss.Scope().Name(),
					Attributes:    attrMap(sp.Attributes()),
					Start:         sp.StartTimestamp().AsTime(),
					End:           sp.EndTimestamp().AsTime(),
					StatusCode:    sp.Status().Code().String(),
					StatusMessage: sp.Status().Message(),
				}
				if !sp.ParentSpanID().IsEmpty() {
					s.ParentSpanID = sp.ParentSpanID().String()
				}
				out = append(out, s)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if !out[a].Start.Equal(out[b].Start) {
			return out[a].Start.Before(out[b].Start)
		}
		return out[a].SpanID < out[b].SpanID
	})
	return out
}

func attrMap(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		if strings.HasPrefix(k, jaegerAttrPrefix) {
			continue
		}
		out[k] = v.AsString()
	}
	return out
}
