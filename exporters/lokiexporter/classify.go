package lokiexporter

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/pipeline"
)

// Drop reasons, the values of the dropped-records metric's reason label.
const (
	ReasonOutOfOrder   = "out_of_order"
	ReasonTooOld       = "too_old"
	ReasonTooNew       = "too_new"
	ReasonTooLarge     = exporterhelper.ReasonTooLarge
	ReasonUnauthorized = exporterhelper.ReasonUnauthorized
	ReasonBadRequest   = exporterhelper.ReasonBadRequest
	// ReasonMetadataDisallowed drops entries Loki refused for carrying structured
	// metadata, with structured_metadata: on.
	ReasonMetadataDisallowed = "metadata_disallowed"
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
	{disallowedMessage, ReasonMetadataDisallowed},
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
	err := fmt.Errorf("loki answered %s: %s", exporterhelper.StatusText(code), body)
	return lokiStatus.Classify(code, resp.Header, now, err, func(err error) error {
		reason := rejectionReason(body)
		if code != http.StatusBadRequest {
			return exporterhelper.Splittable(pipeline.Permanent(reason, err))
		}
		// Loki validates entries one by one and stores the valid ones of the request;
		// the body of its 400 says what it refused.
		r := parseRejection(full, cut)
		var out error
		switch {
		case r.entries > 0 && !r.stream && !r.unknown:
			out = pipeline.PartlyRejected(reason, r.entries, err)
		case r.stream && !r.unknown && r.entries == 0:
			out = exporterhelper.Splittable(&streamRejected{pipeline.Permanent(reason, err)})
		default:
			out = exporterhelper.Splittable(pipeline.Permanent(reason, err))
		}
		if r.disallowed > 0 {
			return &metadataRefused{err: out, r: r}
		}
		return out
	})
}

// metadataRefused marks a 400 in which Loki refused entries for carrying structured
// metadata (disallowedMessage). err is what the answer means otherwise: those entries
// and any refused for other reasons are dropped, the rest were stored.
type metadataRefused struct {
	err error
	r   rejection
}

func (e *metadataRefused) Error() string { return e.err.Error() }
func (e *metadataRefused) Unwrap() error { return e.err }

// streamRejected marks a 400 whose every message is about a stream's labels: Loki
// refused every entry of those streams and stored the other streams' entries.
type streamRejected struct{ err error }

func (e *streamRejected) Error() string { return e.err.Error() }
func (e *streamRejected) Unwrap() error { return e.err }

// lokiStatus is what the errors of Loki's statuses tell the user to check.
var lokiStatus = exporterhelper.StatusPolicy{
	AuthHint:       "check tenant_id and the credentials (basic_auth, bearer_token)",
	NotFoundReason: ReasonBadRequest,
	NotFoundHint:   "check url (the push endpoint is " + PushPath + ")",
	TooLargeHint:   "lower batch.max_bytes or raise Loki's request size limits",
	RedirectHint:   "set url to Loki's push endpoint itself",
}

// maxRejectionBody is how much of a 400 body is read to count the rejected entries.
const maxRejectionBody = 64 << 10

// rejection is what the body of a Loki 400 says was refused.
type rejection struct {
	entries int  // entries refused by messages about single entries
	stream  bool // some message refuses a whole stream (its labels)
	unknown bool // some message is not one parseRejection knows, or the body was cut
	// disallowed counts the entries (among entries) refused because they carry
	// structured metadata and Loki does not allow it.
	disallowed int
}

// Fragments of Loki's messages (pkg/validation, pkg/ingester) about one entry and
// about a whole stream. "label names; limit" says "entry for stream" but refuses the
// stream, so stream messages are matched first.
var (
	streamMessages = []string{
		"error parsing labels", "couldn't parse labels", "at least one label pair is required", "label names; limit",
		"has label name too long", "has label value too long", "has duplicate label name",
		"missing required labels",
	}
	entryMessages = []string{
		"has timestamp too old", "has timestamp too new", "max entry size",
		disallowedMessage, "has structured metadata too large",
		"has too many structured metadata labels",
	}
	// disallowedMessage is how Loki (pkg/validation DisallowedStructuredMetadataErrorMsg,
	// 2.9 to 3.7) refuses an entry with structured metadata when
	// limits_config.allow_structured_metadata is false: "stream '{…}' includes
	// structured metadata, but this feature is disallowed. Please see
	// `limits_config.allow_structured_metadata` or contact your Loki administrator
	// to enable it." It is checked after the entry's timestamp and size.
	disallowedMessage = "includes structured metadata, but this feature is disallowed"
	groupSep          = regexp.MustCompile(`; (\d+) errors like: `)
)

// parseRejection reads a Loki 400 body. Loki groups its validation errors by message:
// a single error is its message, several are "N errors like: msg; M errors like:
// msg"; an ingester refusing entries of a stream ends its message with "total
// ignored: N out of M for stream: …". Label values quoted in the messages may hold
// anything, so a body that does not parse cleanly is unknown.
func parseRejection(body string, cut bool) rejection {
	var r rejection
	if body == "" || cut {
		r.unknown = true
		return r
	}
	type group struct {
		n   int
		msg string
	}
	var groups []group
	if c, rest, ok := strings.Cut(body, " errors like: "); ok && isDigits(c) {
		n, _ := strconv.Atoi(c)
		for {
			loc := groupSep.FindStringSubmatchIndex(rest)
			if loc == nil {
				groups = append(groups, group{n, rest})
				break
			}
			groups = append(groups, group{n, rest[:loc[0]]})
			n, _ = strconv.Atoi(rest[loc[2]:loc[3]])
			rest = rest[loc[1]:]
		}
	} else {
		groups = []group{{1, body}}
	}
	for _, g := range groups {
		lower := strings.ToLower(g.msg)
		switch {
		case g.n <= 0:
			r.unknown = true
		case containsAny(lower, streamMessages):
			r.stream = true
		case strings.Contains(lower, "total ignored: "):
			_, after, _ := strings.Cut(lower, "total ignored: ")
			var ignored, total int
			if _, err := fmt.Sscanf(after, "%d out of %d", &ignored, &total); err != nil || ignored <= 0 {
				r.unknown = true
				continue
			}
			r.entries += ignored
		case containsAny(lower, entryMessages):
			r.entries += g.n
			if strings.Contains(lower, disallowedMessage) {
				r.disallowed += g.n
			}
		default:
			r.unknown = true
		}
	}
	return r
}

func containsAny(s string, frags []string) bool {
	for _, f := range frags {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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
	b, cut, err := exporterhelper.ReadBody(r, limit)
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
