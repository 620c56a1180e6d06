package exporterhelper

import "errors"

// MaxSplitDepth bounds how often a refused request is split (see WithSplit): at most
// 2^MaxSplitDepth parts, so one request costs at most 2^(MaxSplitDepth+1)-1 pushes.
const MaxSplitDepth = 10

// splittableError marks a permanent error that one bad item among several may have
// caused, so resending the request's parts may deliver the others.
type splittableError struct{ err error }

func (e *splittableError) Error() string { return e.err.Error() }
func (e *splittableError) Unwrap() error { return e.err }

// Splittable marks err, a pipeline.Permanent error for a whole request, as one that a
// single item could have caused (a 400 about one record, a 413): a Sender built
// WithSplit then pushes the request's parts instead of dropping all of it. err keeps
// its class and reason; nil stays nil.
func Splittable(err error) error {
	if err == nil {
		return nil
	}
	return &splittableError{err: err}
}

// IsSplittable reports whether err (or an error it wraps) was marked by Splittable.
func IsSplittable(err error) bool {
	var s *splittableError
	return errors.As(err, &s)
}

// SplitFunc returns the parts to push instead of items, which the backend refused
// with err as a whole, or nil when nothing is to be gained by splitting (err is not
// splittable, items hold one record, or err says that every item is refused). The
// parts must together hold each item of items exactly once.
type SplitFunc[T any] func(items []T, err error) [][]T

// WithSplit makes the Sender resend the parts split returns for a request the backend
// refused as a whole, recursively up to MaxSplitDepth, so that only the items the
// backend refuses are dropped: each part is pushed with its own retries, and a part
// refused again is split again or dropped, counted in the dropped metric once with its
// own reason. A part refused with pipeline.PartlyRejected counts that many records.
func WithSplit[T any](split SplitFunc[T]) Option[T] {
	return func(o *options[T]) { o.split = split }
}

// Halves is the SplitFunc for items with no structure to follow: the two halves of
// items when err is splittable and items hold two or more, else nil.
func Halves[T any](items []T, err error) [][]T {
	if !IsSplittable(err) || len(items) < 2 {
		return nil
	}
	mid := len(items) / 2
	return [][]T{items[:mid:mid], items[mid:]}
}
