package exporterhelper

import "github.com/outrider-dev/outrider/internal/confval"

// Option adjusts a Sender or Batcher beyond what its configuration holds: things the
// exporter knows about its items rather than what the user sets.
type Option[T any] func(*options[T])

type options[T any] struct {
	count    func(*T) int
	maxCount int
	split    SplitFunc[T]
}

// WithRecordCount says that an item holds count(item) records instead of one (a chunk
// of spans, say), and caps a request at max records (0: no cap by count). The Batcher
// cuts a request before an item would take it past max, and once it reaches max; an
// item holding more than max records is sent alone. The Sender counts records with
// count in its sent and dropped metrics, and reads pipeline.RejectedCount in records.
// count must be cheap and must not return a negative number.
func WithRecordCount[T any](count func(*T) int, max int) Option[T] {
	return func(o *options[T]) {
		o.count = count
		o.maxCount = max
	}
}

func applyOptions[T any](opts []Option[T]) options[T] {
	var o options[T]
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

func (o *options[T]) validate(p *confval.Problems) {
	if o.maxCount < 0 {
		p.Addf("", "the maximum records per request must not be negative, got %d", o.maxCount)
	}
	if o.maxCount > 0 && o.count == nil {
		p.Addf("", "a maximum of records per request needs a record count function")
	}
}

// records returns how many records items hold.
func (o *options[T]) records(items []T) int {
	if o.count == nil {
		return len(items)
	}
	n := 0
	for i := range items {
		n += o.count(&items[i])
	}
	return n
}
