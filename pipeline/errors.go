package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct {
	reason   string
	rejected int // records the backend rejected; 0 means all of the request
	err      error
}

func (e *permanentError) Error() string {
	return fmt.Sprintf("permanent (%s): %v", e.reason, e.err)
}

func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err as an error that retrying cannot fix: the backend rejected the
// data (a 4xx other than 429). reason is a short, fixed, metric-label-safe word such as
// "out_of_order", "too_old", "too_large", "bad_request", "unauthorized".
func Permanent(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{reason: reason, err: err}
}

// PartlyRejected is Permanent for a request of which the backend rejected only n
// records and stored the rest (Loki answers 400 for such requests). Sinks count n
// records as dropped rather than the whole request.
func PartlyRejected(reason string, n int, err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{reason: reason, rejected: n, err: err}
}

// RejectedCount returns how many records a permanent error says were rejected, or 0
// when it concerns the whole request (or err is not permanent).
func RejectedCount(err error) int {
	var p *permanentError
	if errors.As(err, &p) {
		return p.rejected
	}
	return 0
}

// IsPermanent reports whether err (or an error it wraps) was made by Permanent, and
// returns its reason.
func IsPermanent(err error) (reason string, ok bool) {
	var p *permanentError
	if errors.As(err, &p) {
		return p.reason, true
	}
	return "", false
}

// retryableError marks an error that may go away: 5xx, 429, a connection failure.
type retryableError struct {
	after time.Duration
	err   error
}

func (e *retryableError) Error() string {
	if e.after > 0 {
		return fmt.Sprintf("retryable after %s: %v", e.after, e.err)
	}
	return fmt.Sprintf("retryable: %v", e.err)
}

func (e *retryableError) Unwrap() error { return e.err }

// Retryable wraps err as an error worth retrying. after > 0 means the backend asked for
// that delay (throttling: Retry-After, gRPC RetryInfo); 0 leaves the delay to backoff.
// Errors that are neither Permanent nor Retryable are treated as retryable.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryableError{after: after, err: err}
}

// RetryAfter returns the delay a backend asked for, if err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var r *retryableError
	if errors.As(err, &r) && r.after > 0 {
		return r.after, true
	}
	return 0, false
}

// ErrFull says a bounded buffer (the durable queue) has no room now. Receivers answer
// it with a retryable refusal (HTTP 429, gRPC RESOURCE_EXHAUSTED), never a silent
// drop; test for it with errors.Is.
var ErrFull = errors.New("buffer full")
