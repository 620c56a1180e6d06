package loki

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/agent/pipeline"
)

// Drop reasons, the values of the dropped-records metric's reason label.
const (
	ReasonOutOfOrder   = "out_of_order"
	ReasonTooOld       = "too_old"
	ReasonTooNew       = "too_new"
	ReasonTooLarge     = "too_large"
	ReasonUnauthorized = "unauthorized"
	ReasonBadRequest   = "bad_request"
)

// maxErrorBody is how much of an error response is kept for the error message.
const maxErrorBody = 1 << 10

// rejections maps fragments of Loki's 400 messages to drop reasons, in priority order.
var rejections = []struct {
	fragment, reason string
}{
	{"entry out of order", ReasonOutOfOrder},
	{"out of order", ReasonOutOfOrder},
	{"too far behind", ReasonOutOfOrder},
	{"greater_than_max_sample_age", ReasonTooOld},
	{"timestamp too old", ReasonTooOld},
	{"too old", ReasonTooOld},
	{"too new", ReasonTooNew},
	{"too_far_in_future", ReasonTooNew},
	{"exceeds limit", ReasonTooLarge},
	{"line too long", ReasonTooLarge},
	{"max_line_size", ReasonTooLarge},
	{"max entry size", ReasonTooLarge},
	{"too large", ReasonTooLarge},
}

// classify turns a push response into nil (delivered), a pipeline.Retryable error
// (with the Retry-After Loki asked for) or a pipeline.Permanent one with a drop reason.
// It reads at most maxErrorBody bytes of an error response's body; the caller drains
// and closes it.
func classify(resp *http.Response, now time.Time) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	limit := int64(maxErrorBody)
	if code == http.StatusBadRequest {
		limit = maxRejectionBody
	}
	full, cut, rerr := readErrorBody(resp.Body, limit)
	body := showBody(full, cut, rerr)
	err := fmt.Errorf("loki answered %s: %s", statusText(code), body)
	switch {
	case code == http.StatusTooManyRequests:
		after, _ := parseRetryAfter(resp.Header.Get("Retry-After"), now)
		return pipeline.Retryable(err, after)
	case code >= 500:
		after, _ := parseRetryAfter(resp.Header.Get("Retry-After"), now)
		return pipeline.Retryable(err, after)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return pipeline.Permanent(ReasonUnauthorized,
			fmt.Errorf("%w; check tenant_id and the credentials (basic_auth, bearer_token)", err))
	case code == http.StatusRequestEntityTooLarge:
		return pipeline.Permanent(ReasonTooLarge,
			fmt.Errorf("%w; lower batch.max_bytes or raise Loki's request size limits", err))
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		return pipeline.Permanent(ReasonBadRequest,
			fmt.Errorf("%w; check url (the push endpoint is %s)", err, PushPath))
	case code == http.StatusBadRequest:
		// Loki rejects entries one by one and stores the others of the request; its
		// body lists the rejected ones.
		if n := rejectedEntries(full, cut); n > 0 {
			return pipeline.PartlyRejected(rejectionReason(body), n, err)
		}
		return pipeline.Permanent(rejectionReason(body), err)
	case code >= 400:
		return pipeline.Permanent(rejectionReason(body), err)
	default:
		// 1xx/3xx: redirects are not followed, so the URL points at the wrong place.
		// Retrying keeps the data until the configuration is fixed.
		return pipeline.Retryable(fmt.Errorf("%w; set url to Loki's push endpoint itself", err), 0)
	}
}

// rejectionReason returns the drop reason of a 4xx body. Loki answers 400 also for a
// partly rejected request (it kept the valid entries), with one line per rejection.
// maxRejectionBody is how much of a 400 body is read to count the rejected entries.
const maxRejectionBody = 64 << 10

// rejectedEntries counts the entries a Loki 400 body reports as rejected. Loki groups
// its per-entry validation errors as "N errors like: msg; M errors like: msg", or a
// single message for a single error; an ingester's out-of-order rejection says "total
// ignored: N out of M". A message about a whole stream (invalid labels) or one it
// cannot read makes it return 0, meaning the whole request, as does no body or a body
// cut short.
func rejectedEntries(body string, cut bool) int {
	if body == "" || cut {
		return 0
	}
	n := 0
	for _, part := range strings.Split(body, "; ") {
		if _, after, ok := strings.Cut(part, "total ignored: "); ok {
			var ignored, total int
			if _, err := fmt.Sscanf(after, "%d out of %d", &ignored, &total); err == nil && ignored > 0 {
				n += ignored
				continue
			}
			return 0
		}
		count := 1
		msg := part
		if c, rest, ok := strings.Cut(part, " errors like: "); ok {
			v, err := strconv.Atoi(c)
			if err != nil || v <= 0 {
				return 0
			}
			count, msg = v, rest
		}
		if !strings.Contains(strings.ToLower(msg), "entry") {
			return 0
		}
		n += count
	}
	return n
}

func rejectionReason(body string) string {
	lower := strings.ToLower(body)
	for _, r := range rejections {
		if strings.Contains(lower, r.fragment) {
			return r.reason
		}
	}
	return ReasonBadRequest
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// readErrorBody reads at most limit bytes of an error response's body, as valid UTF-8
// without surrounding space; cut reports that the body was longer.
func readErrorBody(r io.Reader, limit int64) (body string, cut bool, err error) {
	if r == nil {
		return "", false, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(b)) > limit {
		b, cut = b[:limit], true
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD")), cut, err
}

// showBody is an error body fit for a log line: at most maxErrorBody bytes.
func showBody(body string, cut bool, err error) string {
	switch {
	case body == "" && err != nil && !errors.Is(err, io.EOF):
		return fmt.Sprintf("(reading body: %v)", err)
	case body == "":
		return "(empty body)"
	case len(body) > maxErrorBody:
		return strings.ToValidUTF8(body[:maxErrorBody], "") + " …"
	case cut:
		return body + " …"
	}
	return body
}

// parseRetryAfter parses a Retry-After header: delay-seconds or an HTTP date. It
// returns false for an absent or invalid header; a date in the past gives 0, true.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
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
