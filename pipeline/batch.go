package pipeline

import "sync"

// AckFunc is told what became of a batch: err == nil when every record is durable
// (accepted by the backend, or written to a durable queue), or a permanent error when
// the sink gave up on some records and dropped them (already counted and logged by the
// sink). Either way the source may forget the batch: advance its checkpoint, answer its
// client. A batch that is neither delivered nor dropped — the agent stopped first — is
// never acknowledged, so its source reads or keeps it again on the next start.
type AckFunc func(err error)

// Batch is a group of records handed from a source to a sink, with the acknowledgement
// the source waits for.
type Batch struct {
	// Records belong to the sink from a nil Export until it calls Ack; from then on
	// neither the sink nor anything it passed them to may read or keep them (the
	// slice, or a pointer into it): the source may reuse their memory for its next
	// batch. Their strings stay valid; keep those, not the records.
	Records []Record
	// Ack is called at most once, from any goroutine; nil when the source needs no
	// acknowledgement.
	Ack AckFunc
}

// Bytes returns the sum of the records' sizes.
func (b *Batch) Bytes() int {
	n := 0
	for i := range b.Records {
		n += b.Records[i].Size()
	}
	return n
}

// Done acknowledges the batch. It is safe to call on a batch without Ack.
func (b *Batch) Done(err error) {
	if b.Ack != nil {
		b.Ack(err)
	}
}

// Split returns an AckFunc for each of n parts of one acknowledgement: ack is called
// once, after every part has been acknowledged, with the first non-nil error. Sinks use
// it when they cut a batch across several requests.
func Split(ack AckFunc, n int) []AckFunc {
	if n <= 0 {
		return nil
	}
	if ack == nil {
		return make([]AckFunc, n)
	}
	var (
		mu    sync.Mutex
		left  = n
		first error
	)
	parts := make([]AckFunc, n)
	for i := range parts {
		var once sync.Once
		parts[i] = func(err error) {
			once.Do(func() {
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				left--
				last := left == 0
				mu.Unlock()
				if last {
					ack(first)
				}
			})
		}
	}
	return parts
}
