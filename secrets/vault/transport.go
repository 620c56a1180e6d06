package vault

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

type opKey struct{}

// withOp labels the HTTP requests made under ctx with op, for metrics.
func withOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// opOf returns the operation a request belongs to: the label its caller set, or, for
// requests the api package makes on its own (the lifetime watcher's renewals), one
// derived from the path.
func opOf(req *http.Request) string {
	if op, ok := req.Context().Value(opKey{}).(string); ok {
		return op
	}
	switch p := req.URL.Path; {
	case p == "/v1/auth/token/renew-self":
		return OpTokenRenew
	case p == "/v1/auth/token/lookup-self":
		return OpTokenLookup
	case strings.HasPrefix(p, "/v1/auth/") && strings.HasSuffix(p, "/login"):
		return OpLogin
	default:
		return OpOther
	}
}

// transport is the client's http.RoundTripper: it holds every request until the rate
// limiter allows it, bounds each request by the per-request timeout (measured from
// when it is sent, not from when it started waiting), and records metrics.
type transport struct {
	next    http.RoundTripper
	limiter *rate.Limiter
	timeout time.Duration
	metrics *Metrics
	// admitted counts the requests the limiter let through, until startBurst.
	admitted atomic.Int32
}

// startBurst is how many requests a new client sends without waiting for the cap:
// the first render's login, mount lookup and read, and the token's first renewal.
// Spaced 1/cap apart they would hold the application's start (it waits for the
// files) by 100 ms each at the default cap.
const startBurst = 4

// newLimiter returns the cap's limiter: perSecond requests a second, and at first a
// burst of startBurst (fewer when the cap allows less than that in a second), which
// the transport lowers to 1 once startBurst requests went out. From then on the cap
// is hard: no window of one second holds more than perSecond requests (plus the one
// at its very edge), so retries never become a storm.
func newLimiter(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), int(max(1, min(startBurst, math.Floor(perSecond)))))
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := t.limiter.Wait(ctx); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		} else {
			err = context.DeadlineExceeded // the wait alone would outlast the caller's deadline
		}
		return nil, fmt.Errorf("waiting for the request-rate cap (%g requests/s): %w", float64(t.limiter.Limit()), err)
	}
	if t.admitted.Load() < startBurst && t.admitted.Add(1) == startBurst {
		t.limiter.SetBurst(1)
	}
	op := opOf(req)
	cancel := context.CancelFunc(func() {})
	if t.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		req = req.WithContext(ctx)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.metrics.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		cancel()
		t.metrics.requests.WithLabelValues(op, ResultRetryable).Inc()
		return nil, err
	}
	t.metrics.requests.WithLabelValues(op, resultOf(resp.StatusCode)).Inc()
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

func resultOf(status int) string {
	switch {
	case status < 400:
		return ResultSuccess
	case retryableStatus(status):
		return ResultRetryable
	default:
		return ResultPermanent
	}
}

// cancelBody releases the request's timeout context once the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
