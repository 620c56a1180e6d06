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
	"github.com/outrider-dev/outrider/exporters/queue"
)

// Drop reasons, the values of the dropped-records metric's reason label.
const (
	ReasonOutOfOrder   = "out_of_order"
	ReasonTooOld       = "too_old"
	ReasonTooNew       = "too_new"
	ReasonTooLarge     = queue.ReasonTooLarge
	ReasonUnauthorized = queue.ReasonUnauthorized
	ReasonBadRequest   = queue.ReasonBadRequest
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
	err := fmt.Errorf("loki answered %s: %s", queue.StatusText(code), body)
	return lokiStatus.Classify(code, resp.Header, now, err, func(err error) error {
		// Loki rejects entries one by one and stores the others of the request; the
		// body of its 400 lists the rejected ones.
		if code == http.StatusBadRequest {
			if n := rejectedEntries(full, cut); n > 0 {
				return pipeline.PartlyRejected(rejectionReason(body), n, err)
			}
		}
		return pipeline.Permanent(rejectionReason(body), err)
	})
}

// lokiStatus is what the errors of Loki's statuses tell the user to check.
var lokiStatus = queue.StatusPolicy{
	AuthHint:       "check tenant_id and the credentials (basic_auth, bearer_token)",
	NotFoundReason: ReasonBadRequest,
	NotFoundHint:   "check url (the push endpoint is " + PushPath + ")",
	TooLargeHint:   "lower batch.max_bytes or raise Loki's request size limits",
	RedirectHint:   "set url to Loki's push endpoint itself",
}

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

// rejectionReason returns the drop reason of a 4xx body. Loki answers 400 also for a
// partly rejected request (it kept the valid entries), with one line per rejection.
func rejectionReason(body string) string {
	lower := strings.ToLower(body)
	for _, r := range rejections {
		if strings.Contains(lower, r.fragment) {
			return r.reason
		}
	}
	return ReasonBadRequest
}

// readErrorBody reads at most limit bytes of an error response's body, as valid UTF-8
// without surrounding space; cut reports that the body was longer.
func readErrorBody(r io.Reader, limit int64) (body string, cut bool, err error) {
	b, cut, err := queue.ReadBody(r, limit)
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
