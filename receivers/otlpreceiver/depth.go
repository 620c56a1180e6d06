package otlpreceiver

import (
	"errors"
	"fmt"
	"io"
)

// The depth scan runs on every protobuf request before anything decodes it.
//
// pdata's decoder recurses once per nested AnyValue (a list or map inside a list or
// map), and its allocations grow with the number of values: a 4 MiB request of
// values nested 100,000 deep takes hundreds of megabytes and, with larger requests,
// overflows the stack. scanProto walks the request's message tree with an explicit
// stack, following exactly the fields pdata decodes as messages, and refuses a
// request whose values nest more than max_value_depth maps and lists deep. It also
// counts the messages and what decoding them takes by their kind (pcost), from which
// the receiver estimates the memory decoding will take.
//
// Past the check, every walk over values in the receiver — pdata's decoder and
// encoder, Value.AsString when log attributes and bodies become Loki lines, the
// scrubber, the error-event extraction of errorevents.FromTraces — recurses at most
// max_value_depth times.
//
// The scan consumes tags, lengths and unknown fields with the same rules as pdata
// (internal/proto in go.opentelemetry.io/collector/pdata), so it reports a request as
// malformed only where pdata would fail too (FuzzScanProto checks this against
// pdata), and never stops before a part pdata would decode.

// pkind is a message of the OTLP trace, log and metric schemas the scan follows.
type pkind uint8

const (
	pTracesRequest pkind = iota
	pLogsRequest
	pMetricsRequest
	pResourceMetrics
	pScopeMetrics
	pMetric
	pNumberPoints    // a gauge or a sum: its data points
	pHistogramPoints // a histogram's data points
	pExpHistPoints   // an exponential histogram's data points
	pSummaryPoints   // a summary's data points
	pNumberDataPoint
	pHistogramDataPoint
	pExpHistDataPoint
	pSummaryDataPoint
	pExemplar
	pPlain // a message pdata decodes whose fields are all scalars (buckets, quantiles)
	pResourceSpans
	pResourceLogs
	pResource
	pScopeSpans
	pScopeLogs
	pScope
	pSpan
	pEvent
	pLink
	pLogRecord
	pKeyValue
	pAnyValue
	pArrayValue // a list value: one level of depth
	pKvList     // a map value: one level of depth
	pLeaf       // not followed
)

// pchild returns the message kind pdata decodes field num of a k message as, or
// pLeaf.
func pchild(k pkind, num int32) pkind {
	switch k {
	case pTracesRequest:
		if num == 1 {
			return pResourceSpans
		}
	case pLogsRequest:
		if num == 1 {
			return pResourceLogs
		}
	case pMetricsRequest:
		if num == 1 {
			return pResourceMetrics
		}
	case pResourceMetrics:
		switch num {
		case 1:
			return pResource
		case 2, 1000:
			return pScopeMetrics
		}
	case pScopeMetrics:
		switch num {
		case 1:
			return pScope
		case 2:
			return pMetric
		}
	case pMetric:
		switch num {
		case 5, 7: // gauge, sum
			return pNumberPoints
		case 9:
			return pHistogramPoints
		case 10:
			return pExpHistPoints
		case 11:
			return pSummaryPoints
		case 12: // metadata
			return pKeyValue
		}
	case pNumberPoints:
		if num == 1 {
			return pNumberDataPoint
		}
	case pHistogramPoints:
		if num == 1 {
			return pHistogramDataPoint
		}
	case pExpHistPoints:
		if num == 1 {
			return pExpHistDataPoint
		}
	case pSummaryPoints:
		if num == 1 {
			return pSummaryDataPoint
		}
	case pNumberDataPoint:
		switch num {
		case 7:
			return pKeyValue
		case 5:
			return pExemplar
		}
	case pHistogramDataPoint:
		switch num {
		case 9:
			return pKeyValue
		case 8:
			return pExemplar
		}
	case pExpHistDataPoint:
		switch num {
		case 1:
			return pKeyValue
		case 8, 9: // positive and negative buckets
			return pPlain
		case 11:
			return pExemplar
		}
	case pSummaryDataPoint:
		switch num {
		case 7:
			return pKeyValue
		case 6: // quantile values
			return pPlain
		}
	case pExemplar:
		if num == 7 {
			return pKeyValue
		}
	case pResourceSpans:
		switch num {
		case 1:
			return pResource
		case 2, 1000: // 1000: the deprecated instrumentation_library_spans
			return pScopeSpans
		}
	case pResourceLogs:
		switch num {
		case 1:
			return pResource
		case 2, 1000:
			return pScopeLogs
		}
	case pResource:
		if num == 1 {
			return pKeyValue
		}
	case pScopeSpans:
		switch num {
		case 1:
			return pScope
		case 2:
			return pSpan
		}
	case pScopeLogs:
		switch num {
		case 1:
			return pScope
		case 2:
			return pLogRecord
		}
	case pScope:
		if num == 3 {
			return pKeyValue
		}
	case pSpan:
		switch num {
		case 9:
			return pKeyValue
		case 11:
			return pEvent
		case 13:
			return pLink
		}
	case pEvent:
		if num == 3 {
			return pKeyValue
		}
	case pLink:
		if num == 4 {
			return pKeyValue
		}
	case pLogRecord:
		switch num {
		case 5:
			return pAnyValue
		case 6:
			return pKeyValue
		}
	case pKeyValue:
		if num == 2 {
			return pAnyValue
		}
	case pAnyValue:
		switch num {
		case 5:
			return pArrayValue
		case 6:
			return pKvList
		}
	case pArrayValue:
		if num == 1 {
			return pAnyValue
		}
	case pKvList:
		if num == 1 {
			return pKeyValue
		}
	}
	return pLeaf
}

// pcost is what the admission estimate counts for decoding a message of each kind
// (and encoding it again), beyond costFactor times its bytes. The metric kinds take
// pdata's worst case, measured with TestDecodeCostCoversPdata on requests of nothing
// but empty messages of the kind (2 bytes each, in one long list) plus a tenth: an
// exemplar costs pdata about 380 bytes. The trace and log kinds, and attributes
// everywhere, keep costPerMessage, the estimate they always had: realistic requests
// stay far below it, and their worst case exceeds it by at most 2.6 times (an empty
// span: about 260 bytes), which max_inflight_bytes bounds.
var pcost = func() (c [pLeaf + 1]int64) {
	for k := range c {
		c[k] = costPerMessage
	}
	for _, kinds := range []struct {
		cost  int64
		kinds []pkind
	}{
		{184, []pkind{pResourceMetrics}},
		{168, []pkind{pScopeMetrics}},
		{148, []pkind{pMetric, pNumberDataPoint, pSummaryDataPoint}},
		{220, []pkind{pHistogramDataPoint}},
		{260, []pkind{pExpHistDataPoint}},
		{420, []pkind{pExemplar}},
	} {
		for _, k := range kinds.kinds {
			c[k] = kinds.cost
		}
	}
	return c
}()

// pchildren is pchild for the field numbers below 17, as a table.
var pchildren = func() (t [pLeaf + 1][17]pkind) {
	for k := range t {
		for num := range t[k] {
			t[k][num] = pchild(pkind(k), int32(num))
		}
	}
	return t
}()

// scanStats is what scanProto counted.
type scanStats struct {
	depth    int   // deepest nesting of list and map values
	messages int   // messages entered (each one an allocation or more when decoded)
	cost     int64 // what decoding the messages takes, by pcost
}

// errTooDeep is wrapped by a scan error for values nested past the limit.
var errTooDeep = errors.New("values nested too deep")

// depthError is a request refused by the depth scan.
type depthError struct {
	offset int
	limit  int
	err    error // errTooDeep, or why the protobuf is malformed
}

func (e *depthError) Error() string {
	if errors.Is(e.err, errTooDeep) {
		return fmt.Sprintf("attribute or log body values nested more than %d maps/lists deep (receivers.otlp.max_value_depth) at byte %d; flatten the value or raise the limit", e.limit, e.offset)
	}
	return fmt.Sprintf("malformed protobuf at byte %d: %v", e.offset, e.err)
}

func (e *depthError) Unwrap() error { return e.err }

// pframe is an open message: its kind and where it ends.
type pframe struct {
	kind pkind
	end  int
}

// scanProto walks an OTLP request of kind root (pTracesRequest, pLogsRequest or
// pMetricsRequest)
// without recursion and refuses values nested more than maxDepth lists and maps deep.
// Errors are *depthError.
func scanProto(buf []byte, root pkind, maxDepth int) (scanStats, error) {
	var (
		st    scanStats
		stack = make([]pframe, 0, 24)
		cur   = pframe{kind: root, end: len(buf)}
		depth int
		pos   int
	)
	for {
		if pos >= cur.end {
			if len(stack) == 0 {
				return st, nil
			}
			if cur.kind == pArrayValue || cur.kind == pKvList {
				depth--
			}
			cur = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			continue
		}
		b := buf[:cur.end]
		var (
			num   int32
			wt, p int
			err   error
		)
		if c := b[pos]; c < 0x80 && c >= 8 { // a one-byte tag, most of them
			num, wt, p = int32(c>>3), int(c&7), pos+1
		} else if num, wt, p, err = pConsumeTag(b, pos); err != nil {
			return st, &depthError{offset: pos, err: err}
		}
		child := pLeaf
		if num < int32(len(pchildren[0])) {
			child = pchildren[cur.kind][num]
		} else if num == 1000 {
			child = pchild(cur.kind, num)
		}
		if child == pLeaf {
			if wt == pWireLen && p < len(b) && b[p] < 0x80 { // a short string or bytes
				if p += 1 + int(b[p]); p > len(b) {
					return st, &depthError{offset: pos, err: io.ErrUnexpectedEOF}
				}
			} else if p, err = pConsumeUnknown(b, p, wt); err != nil {
				return st, &depthError{offset: pos, err: err}
			}
			pos = p
			continue
		}
		if wt != pWireLen {
			return st, &depthError{offset: pos, err: fmt.Errorf("wrong wire type %d for field %d, a message", wt, num)}
		}
		length, end, err := pConsumeLen(b, p)
		if err != nil {
			return st, &depthError{offset: pos, err: err}
		}
		if child == pArrayValue || child == pKvList {
			if depth >= maxDepth {
				return st, &depthError{offset: pos, limit: maxDepth, err: errTooDeep}
			}
			depth++
			st.depth = max(st.depth, depth)
		}
		st.messages++
		st.cost += pcost[child]
		stack = append(stack, cur)
		cur = pframe{kind: child, end: end}
		pos = end - length
	}
}

// Wire types, as pdata numbers them.
const (
	pWireVarint     = 0
	pWireI64        = 1
	pWireLen        = 2
	pWireStartGroup = 3
	pWireEndGroup   = 4
	pWireI32        = 5
)

var (
	errIntOverflow       = errors.New("varint overflows 64 bits")
	errEndOfGroup        = errors.New("unexpected end of group")
	errNegativeLength    = errors.New("negative length")
	errIllegalFieldValue = errors.New("field number must be positive")
)

// pConsumeVarint reads a varint as pdata does (up to 10 bytes, the excess bits of the
// last ignored).
func pConsumeVarint(buf []byte, pos int) (uint64, int, error) {
	var num uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, errIntOverflow
		}
		if pos >= len(buf) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		c := buf[pos]
		pos++
		num |= uint64(c&0x7F) << shift
		if c < 0x80 {
			return num, pos, nil
		}
	}
}

// pConsumeTag reads a tag as pdata does: the field number is the low 32 bits of
// tag>>3 and must be positive.
func pConsumeTag(buf []byte, pos int) (int32, int, int, error) {
	tag, pos, err := pConsumeVarint(buf, pos)
	if err != nil {
		return 0, 0, 0, err
	}
	num := int32(tag >> 3)
	if num <= 0 {
		return 0, 0, 0, errIllegalFieldValue
	}
	return num, int(tag & 7), pos, nil
}

// pConsumeLen reads a length prefix and returns the length and the end of the bytes.
func pConsumeLen(buf []byte, pos int) (int, int, error) {
	n, pos, err := pConsumeVarint(buf, pos)
	if err != nil {
		return 0, 0, err
	}
	length := int(n)
	if length < 0 {
		return 0, 0, errNegativeLength
	}
	pos += length
	if pos < 0 || pos > len(buf) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return length, pos, nil
}

// pConsumeUnknown skips a field of wire type wt as pdata does, groups included
// (iteratively).
func pConsumeUnknown(buf []byte, pos, wt int) (int, error) {
	var err error
	depth := 0
	for pos < len(buf) {
		switch wt {
		case pWireVarint:
			_, pos, err = pConsumeVarint(buf, pos)
			return pos, err
		case pWireI64:
			if pos += 8; pos > len(buf) {
				return 0, io.ErrUnexpectedEOF
			}
			return pos, nil
		case pWireLen:
			_, pos, err = pConsumeLen(buf, pos)
			return pos, err
		case pWireStartGroup:
			depth++
		case pWireEndGroup:
			if depth == 0 {
				return 0, errEndOfGroup
			}
			depth--
		case pWireI32:
			if pos += 4; pos > len(buf) {
				return 0, io.ErrUnexpectedEOF
			}
			return pos, nil
		default:
			return 0, fmt.Errorf("illegal wire type %d", wt)
		}
		if depth == 0 {
			return pos, nil
		}
		if _, wt, pos, err = pConsumeTag(buf, pos); err != nil {
			return 0, err
		}
	}
	return 0, io.ErrUnexpectedEOF
}

// CheckLogsDepth reports an error if the OTLP logs request b nests values more than
// maxDepth lists and maps deep, or is malformed, with the same walk the receiver runs
// before decoding; the runtime's pump uses it on queue entries before it decodes them.
func CheckLogsDepth(b []byte, maxDepth int) error {
	_, err := scanProto(b, pLogsRequest, maxDepth)
	return err
}
