package pipeline

import "context"

// TraceBatch is spans in OTLP wire form, ready to export: Data is one serialized
// ExportTraceServiceRequest (protobuf), already validated, enriched and scrubbed, and
// Spans is how many spans it holds.
//
// Serialized export requests concatenate: two of them appended byte for byte are one
// valid request holding the resource spans of both (protobuf merges repeated fields).
// That lets an exporter batch spans without decoding them again.
type TraceBatch struct {
	// Data is the serialized request. The sink owns it after a successful Export and
	// must not change it.
	Data []byte
	// Spans is the number of spans in Data.
	Spans int
	// Ack is called once when the spans are durable (the backend accepted them) or
	// dropped (permanently rejected, counted and logged); nil when nobody waits.
	Ack AckFunc
}

// Done calls the batch's acknowledgement, if it has one.
func (b *TraceBatch) Done(err error) {
	if b.Ack != nil {
		b.Ack(err)
	}
}

// TraceSink receives spans. Its contract is Sink's: ExportTraces blocks while the sink
// is at its memory bound, returns an error (ctx's, or one saying the sink is closed)
// when the batch was not taken — the caller still owns it and its Ack is not called —
// and on nil owns the batch and calls Ack exactly once, or never if the sink stops
// before the spans are delivered (so the caller keeps them for the next start).
type TraceSink interface {
	ExportTraces(ctx context.Context, b TraceBatch) error
}

// Envelope is one Sentry envelope in wire form (see internal/sentryenv), ready to send:
// events already enriched, scrubbed and admitted.
type Envelope struct {
	// Data is the serialized envelope; the sink owns it after a successful export.
	Data []byte
	// Ack is called once when the envelope is delivered or dropped; nil when nobody
	// waits.
	Ack AckFunc
}

// Done calls the envelope's acknowledgement, if it has one.
func (e *Envelope) Done(err error) {
	if e.Ack != nil {
		e.Ack(err)
	}
}

// EnvelopeSink receives Sentry envelopes, with Sink's contract (see TraceSink).
type EnvelopeSink interface {
	ExportEnvelope(ctx context.Context, e Envelope) error
}
