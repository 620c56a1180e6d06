package exporterhelper

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/pipeline"
)

// Drop reasons that every HTTP exporter gives the same statuses (see StatusPolicy).
const (
	// ReasonUnauthorized: the backend refused the credentials or tenant (401, 403).
	ReasonUnauthorized = "unauthorized"
	// ReasonTooLarge: the request was over the backend's size limit (413).
	ReasonTooLarge = "too_large"
	// ReasonBadRequest: the backend found the request invalid (another 4xx).
	ReasonBadRequest = "bad_request"
)

// NewHTTPClient returns the client of an exporter that pushes over HTTP with
// concurrency workers: proxies from the environment, tlsCfg (nil for the defaults),
// HTTP/2 when the server offers it, two idle connections per worker kept for 90s, and
// redirects not followed (a push endpoint that redirects is misconfigured; the 3xx
// reaches the exporter, see StatusPolicy). Close its idle connections with
// CloseIdleConnections when the exporter shuts down.
func NewHTTPClient(tlsCfg *tls.Config, concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsCfg,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          2 * concurrency,
			MaxIdleConnsPerHost:   2 * concurrency,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// RequestBody is a request body over a byte slice that reports when the transport is
// done with it. net/http may still read a body after Client.Do returns (when the
// server answered before reading it all), so a pooled buffer goes back to its pool
// only once Wait says the body was closed.
type RequestBody struct {
	bytes.Reader
	once   sync.Once
	closed chan struct{}
}

// NewRequestBody returns a RequestBody reading b.
func NewRequestBody(b []byte) *RequestBody {
	rb := &RequestBody{closed: make(chan struct{})}
	rb.Reset(b)
	return rb
}

// Close marks the body as done with; it is safe to call more than once.
func (b *RequestBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// bodyGrace is how long Wait waits for the transport to close a body.
const bodyGrace = 5 * time.Second

// Wait reports whether the body was closed, waiting a short grace period for it. On
// false the transport may still read the bytes, which must then not be reused.
func (b *RequestBody) Wait() bool { return b.wait(bodyGrace) }

func (b *RequestBody) wait(grace time.Duration) bool {
	select {
	case <-b.closed:
		return true
	default:
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-b.closed:
		return true
	case <-t.C:
		return false
	}
}

// ReadBody reads at most limit bytes of a response body; cut reports that it was
// longer. A nil r is an empty body. err is the read error, if any, with what was read
// before it.
func ReadBody(r io.Reader, limit int64) (body []byte, cut bool, err error) {
	if r == nil {
		return nil, false, nil
	}
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(body)) > limit {
		body, cut = body[:limit], true
	}
	return body, cut, err
}

// maxDrain is how much of a response body CloseBody reads to let the transport reuse
// the connection; a longer body is closed unread, closing the connection.
const maxDrain = 64 << 10

// CloseBody drains up to 64 KiB of a response body, so its connection can carry the
// next request, and closes it.
func CloseBody(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, maxDrain))
	rc.Close()
}

// StatusText is an HTTP status for an error message: "503 Service Unavailable", or
// the bare number for a status without a name.
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// ParseRetryAfter parses a Retry-After header value: delay-seconds or an HTTP date. It
// returns false for an absent or invalid value; a date in the past gives 0, true. A
// huge delay is capped far beyond any max_retry_after rather than overflowing.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(1<<62) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// StatusPolicy is how an HTTP exporter classifies a push response's status: the
// classes are the same for every exporter (Classify), the hints that tell the user
// what to fix and the reason of a missing endpoint are the exporter's own.
type StatusPolicy struct {
	// AuthHint is appended to the error of a 401 or 403.
	AuthHint string
	// NotFoundReason is the drop reason of a 404 or 405.
	NotFoundReason string
	// NotFoundHint is appended to the error of a 404 or 405.
	NotFoundHint string
	// TooLargeHint is appended to the error of a 413.
	TooLargeHint string
	// RedirectHint is appended to the error of a 1xx or 3xx.
	RedirectHint string
}

// Classify turns the status of a push response into the error the Sender acts on;
// err describes the response. 2xx gives nil. 429 and 5xx are pipeline.Retryable after
// the delay the Retry-After header asks for (none or invalid: 0, the backoff's). 401
// and 403 are pipeline.Permanent with ReasonUnauthorized, 413 with ReasonTooLarge (and
// Splittable: a part of the request may fit), 404 and 405 with NotFoundReason, each
// with its hint appended as "err; hint". Another 4xx is what rejected makes of err
// (nil: permanent with ReasonBadRequest, Splittable, since one bad item may be the
// cause). A 1xx or 3xx
// is retryable with RedirectHint: redirects are not followed, so the endpoint points
// at the wrong place, and retrying keeps the data until the configuration is fixed.
func (p *StatusPolicy) Classify(code int, header http.Header, now time.Time, err error, rejected func(error) error) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests || code >= 500:
		after, _ := ParseRetryAfter(header.Get("Retry-After"), now)
		return pipeline.Retryable(err, after)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return pipeline.Permanent(ReasonUnauthorized, fmt.Errorf("%w; %s", err, p.AuthHint))
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		return pipeline.Permanent(p.NotFoundReason, fmt.Errorf("%w; %s", err, p.NotFoundHint))
	case code == http.StatusRequestEntityTooLarge:
		return Splittable(pipeline.Permanent(ReasonTooLarge, fmt.Errorf("%w; %s", err, p.TooLargeHint)))
	case code >= 400:
		if rejected != nil {
			return rejected(err)
		}
		return Splittable(pipeline.Permanent(ReasonBadRequest, err))
	default:
		return pipeline.Retryable(fmt.Errorf("%w; %s", err, p.RedirectHint), 0)
	}
}
