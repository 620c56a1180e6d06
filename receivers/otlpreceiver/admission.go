package otlpreceiver

import (
	"context"
	"errors"
	"fmt"

	"github.com/outrider-dev/outrider/internal/inflight"
	"github.com/outrider-dev/outrider/internal/jsondepth"
)

// Every request is admitted in two steps, each refusing what would not fit:
//
//  1. Before its body is read, it reserves an estimate of its memory from the
//     inflight limiter (max_inflight_bytes): costFactor times its declared size, or
//     times max_request_bytes when the size is not known yet (a gzip body); a gRPC
//     message, whose size is not known either, reserves grpcUpfrontFactor times
//     max_request_bytes (what gRPC holds of it before the handler runs). An HTTP
//     request waits up to inflightWait for room, a gRPC one not at all; then it is
//     answered 429 / RESOURCE_EXHAUSTED with a retry delay.
//  2. Once the body is in memory — and unless the trace fast path stores it without
//     decoding (see fastBoundsDepth; its reservation is resized to costFactor times
//     the body) — the depth scan (scanProto, or jsondepth for
//     OTLP/JSON) refuses values nested deeper than max_value_depth, and the
//     reservation is resized to the estimate of what decoding this very body takes
//     (decodeCost). Growing never waits; a request that cannot ever fit is refused
//     as too large.
//
// The reservation is released once the request is stored and answered.

// costFactor estimates a request's memory from its size (see inflight.CostFactor).
const costFactor = inflight.CostFactor

// Per-item estimates of pdata's allocations when decoding, measured with
// TestDecodeCostCoversPdata: a message (an AnyValue or list element with its share of
// slice growth; other kinds cost more, see pcost), and a JSON value.
const (
	costPerMessage   = 96
	costPerJSONValue = 96
)

// inflightWait is how long a request waits for room in the inflight limiter.
const inflightWait = inflight.Wait

// otlpJSONValueKeys are the OTLP/JSON members whose values are lists and maps of
// values, in both spellings pdata reads.
var otlpJSONValueKeys = []string{"arrayValue", "array_value", "kvlistValue", "kvlist_value"}

// refusal is a request refused before decoding.
type refusal struct {
	kind refusalKind
	msg  string
}

type refusalKind uint8

const (
	refuseInvalid  refusalKind = iota // 400 / INVALID_ARGUMENT: malformed
	refuseTooDeep                     // 400 / INVALID_ARGUMENT: max_value_depth
	refuseTooLarge                    // 413 / RESOURCE_EXHAUSTED without retry
	refuseBusy                        // 429 / RESOURCE_EXHAUSTED with a retry delay
)

func (r *refusal) Error() string { return r.msg }

// busyRefusal is the answer when the inflight limiter has no room.
func (r *Receiver) busyRefusal() *refusal {
	return &refusal{refuseBusy, fmt.Sprintf(
		"outrider is busy: requests in memory have reached receivers.otlp.max_inflight_bytes (%s); retry later", r.cfg.MaxInflightBytes)}
}

// upfrontCost is what a request reserves before its body is read: size is its
// declared size, or -1 when unknown.
func (r *Receiver) upfrontCost(size int64) int64 {
	switch {
	case size > int64(r.cfg.MaxRequestBytes):
		return 0 // refused as too large without being read
	case size < 0:
		size = int64(r.cfg.MaxRequestBytes)
	}
	return costFactor * size
}

// reserve takes the upfront reservation of a request of size bytes (-1: unknown).
func (r *Receiver) reserve(ctx context.Context, size int64) (*inflight.Reservation, *refusal) {
	res, err := r.lim.Acquire(ctx, r.upfrontCost(size))
	if err != nil {
		return nil, r.busyRefusal()
	}
	return res, nil
}

// admit scans body, a request of kind k, and resizes res to what decoding it takes.
func (r *Receiver) admit(body []byte, k Kind, asJSON bool, res *inflight.Reservation) *refusal {
	var cost int64
	if asJSON {
		st, ref := r.scanJSON(body, k)
		if ref != nil {
			return ref
		}
		cost = jsonCost(len(body), st)
	} else {
		st, err := scanProto(body, rootOf(k), r.cfg.MaxValueDepth)
		if err != nil {
			if errors.Is(err, errTooDeep) {
				return &refusal{refuseTooDeep, fmt.Sprintf("OTLP %s request refused: %v", k, err)}
			}
			return &refusal{refuseInvalid, fmt.Sprintf("cannot decode the OTLP %s request (protobuf): %v", k, err)}
		}
		cost = costFactor*int64(len(body)) + st.cost
	}
	if cost > r.lim.Max() {
		return &refusal{refuseTooLarge, fmt.Sprintf(
			"OTLP %s request refused: decoding it would take about %d MiB, more than receivers.otlp.max_inflight_bytes (%s); send smaller batches",
			k, (cost+1<<20-1)>>20, r.cfg.MaxInflightBytes)}
	}
	if !res.Resize(cost) {
		return r.busyRefusal()
	}
	return nil
}

// rootOf is the message the depth scan starts from for a request of kind k.
func rootOf(k Kind) pkind {
	switch k {
	case KindLogs:
		return pLogsRequest
	case KindMetrics:
		return pMetricsRequest
	}
	return pTracesRequest
}

// fastPathMaxValueDepth is the deepest value the trace fast path accepts: its walker
// steps aside past maxDepth nested messages, and a list value d levels deep in a
// resource attribute (the shallowest place) is 3+2d messages deep.
const fastPathMaxValueDepth = (maxDepth - 3) / 2

// fastBoundsDepth reports whether a request the trace fast path stores is within
// max_value_depth without the depth scan: the fast path decodes nothing, so the scan
// is only needed for what it leaves to pdata — unless the limit is lower than what
// the fast path itself accepts.
func (r *Receiver) fastBoundsDepth() bool { return r.cfg.MaxValueDepth >= fastPathMaxValueDepth }

// jsonItemWeights are what pdata allocates for an object in these OTLP/JSON lists
// beyond costPerJSONValue and costFactor times its bytes, measured with
// TestDecodeCostCoversPdata on lists of empty objects, plus a tenth: a metric
// exemplar costs pdata about 430 bytes, a data point about 150. Other objects take
// costPerJSONValue; an empty span, the worst, allocates 2.5 times that.
var jsonItemWeights = map[string]int{"exemplars": 360, "dataPoints": 48, "data_points": 48}

// jsonCost estimates what decoding an OTLP/JSON request of size bytes takes.
func jsonCost(size int, st jsondepth.Result) int64 {
	return costFactor*int64(size) + costPerJSONValue*int64(st.Values) + int64(st.ItemWeight)
}

// scanJSON checks the nesting of an OTLP/JSON request and counts its values.
func (r *Receiver) scanJSON(body []byte, k Kind) (jsondepth.Result, *refusal) {
	st, err := jsondepth.Scan(body, jsondepth.Limits{
		MaxDepth: jsonMaxNesting(r.cfg.MaxValueDepth), Keys: otlpJSONValueKeys, MaxKeyDepth: r.cfg.MaxValueDepth,
		ItemWeights: jsonItemWeights,
	})
	var je *jsondepth.Error
	if errors.As(err, &je) {
		return st, &refusal{refuseTooDeep, fmt.Sprintf(
			"OTLP/JSON %s request refused: attribute or log body values nested more than %d maps/lists deep (receivers.otlp.max_value_depth), or the JSON more than %d levels, at byte %d; flatten the value or raise the limit",
			k, r.cfg.MaxValueDepth, jsonMaxNesting(r.cfg.MaxValueDepth), je.Offset)}
	}
	return st, nil
}

// jsonMaxNesting bounds the plain JSON nesting of an OTLP/JSON request with values
// up to depth deep: the request's own structure takes 12 levels down to a span
// event's attribute value and 14 down to a metric exemplar's, and each map level 4
// more ({"kvlistValue": {"values": [{"value": ...). Nothing a decoder skips may nest
// deeper either.
func jsonMaxNesting(depth int) int { return 16 + 4*depth }
