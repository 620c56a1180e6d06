package sentryreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/outrider-dev/outrider/internal/inflight"
	"github.com/outrider-dev/outrider/internal/jsondepth"
	"github.com/outrider-dev/outrider/internal/sentryenv"
)

// Every request is admitted in two steps, as in the OTLP receiver:
//
//  1. Before its body is read it reserves costFactor times its declared size (or
//     max_envelope_bytes when compressed) from the inflight limiter
//     (max_inflight_bytes), waiting up to inflightWait, else 429.
//  2. Once parsed — headers checked against max_json_depth before they are decoded
//     (sentryenv.Limits.MaxDepth) — every JSON payload is scanned for its nesting
//     before anything decodes it (the event for enrichment, every JSON item for
//     scrubbing), and the reservation is resized to the estimate of what decoding
//     them takes.
//
// Past the check every walk over an event or item (decoding, errorevents' Process and
// ScrubEnvelope, encoding) recurses at most max_json_depth times.

// costFactor estimates a request's memory from its size (see inflight.CostFactor).
const costFactor = inflight.CostFactor

// costPerJSONValue estimates encoding/json's allocations per value decoded into
// map[string]any (the value, its interface and its share of map or slice growth).
const costPerJSONValue = 128

// inflightWait is how long a request waits for room in the inflight limiter.
const inflightWait = inflight.Wait

// busy answers a request the inflight limiter has no room for.
func (r *Receiver) busy() *httpError {
	return &httpError{http.StatusTooManyRequests, fmt.Sprintf(
		"outrider is busy: requests in memory have reached receivers.sentry.max_inflight_bytes (%s); retry later", r.cfg.MaxInflightBytes)}
}

// reserve takes the upfront reservation of a request of size bytes (-1: unknown).
func (r *Receiver) reserve(ctx context.Context, size int64) (*inflight.Reservation, *httpError) {
	switch {
	case size > int64(r.cfg.MaxEnvelopeBytes):
		size = 0 // refused as too large without being read
	case size < 0:
		size = int64(r.cfg.MaxEnvelopeBytes)
	}
	res, err := r.inflight.Acquire(ctx, costFactor*size)
	if err != nil {
		return nil, r.busy()
	}
	return res, nil
}

// admit checks the nesting of env's JSON payloads and resizes res to what decoding
// them takes; body is the request's size.
func (r *Receiver) admit(env *sentryenv.Envelope, body int, res *inflight.Reservation) *httpError {
	cost := costFactor * int64(body)
	for i := range env.Items {
		it := &env.Items[i]
		if it.Type == "attachment" || !looksJSON(it.Payload) {
			continue // attachments are never decoded; nor is what is not an object
		}
		st, err := jsondepth.Scan(it.Payload, jsondepth.Limits{MaxDepth: r.cfg.MaxJSONDepth})
		var je *jsondepth.Error
		if errors.As(err, &je) {
			if !jsonItems[it.Type] && it.Type != "event" && !json.Valid(it.Payload) {
				continue // a type of its own that is not JSON after all: nothing decodes it
			}
			return badRequest("item %d (%s): %v (receivers.sentry.max_json_depth); send shallower data or raise the limit", i, it.Type, err)
		}
		cost += costPerJSONValue * int64(st.Values)
	}
	if cost > r.inflight.Max() {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"decoding this request would take about %d MiB, more than receivers.sentry.max_inflight_bytes (%s); send smaller events",
			(cost+1<<20-1)>>20, r.cfg.MaxInflightBytes)}
	}
	if !res.Resize(cost) {
		return r.busy()
	}
	return nil
}

// looksJSON reports whether p starts like a JSON object or array.
func looksJSON(p []byte) bool {
	t := bytes.TrimLeft(p, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}
