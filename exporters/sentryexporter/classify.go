package sentryexporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/pipeline"
)

// Drop reasons, the values of the dropped-records metric's reason label.
const (
	// ReasonBadRequest: Sentry found the envelope invalid (400 and other 4xx).
	ReasonBadRequest = exporterhelper.ReasonBadRequest
	// ReasonTooLarge: the envelope was over Sentry's size limits (413).
	ReasonTooLarge = exporterhelper.ReasonTooLarge
	// ReasonUnauthorized: Sentry refused the DSN's key, or the project or key is
	// disabled (401, 403).
	ReasonUnauthorized = exporterhelper.ReasonUnauthorized
	// ReasonNotFound: the DSN does not lead to an envelope endpoint (404, 405).
	ReasonNotFound = "not_found"
	// ReasonInvalidEnvelope: what was exported is not a valid envelope, so it was
	// never sent.
	ReasonInvalidEnvelope = "invalid_envelope"
)

// maxResponseBody is how much of a response body is read; Sentry's error bodies are
// a small JSON object.
const maxResponseBody = 64 << 10

// maxErrorText is how much of Sentry's error message an error keeps.
const maxErrorText = 1 << 10

// sentryStatus is what the errors of Sentry's statuses tell the user to check.
var sentryStatus = exporterhelper.StatusPolicy{
	AuthHint:       "check the public key in dsn: Sentry refused it, or the key or project is disabled (Project Settings → Client Keys)",
	NotFoundReason: ReasonNotFound,
	NotFoundHint:   "check dsn: its host, path and project id must be those of the Sentry project (envelopes go to <path>/api/<project_id>/envelope/)",
	TooLargeHint:   "the envelope is over Sentry's size limits (an event may be up to 1MiB, an envelope up to 200MiB compressed); it was dropped",
	RedirectHint:   "dsn points at a server that redirects; use the DSN shown in Sentry's Client Keys settings",
}

// classify turns Sentry's answer to one envelope into the error the queue acts on:
// nil for 2xx; for 429 and 5xx pipeline.Retryable after Retry-After (the caller waits
// out a 429 until the rate limits it recorded pass); 400, 413, 401/403, 404/405 and
// other 4xx pipeline.Permanent with the reason Sentry gave ({"detail": ...}). body is
// at most maxResponseBody bytes of the response; cut says there was more.
func classify(code int, h http.Header, body []byte, cut bool, eventID string, now time.Time) error {
	if code >= 200 && code < 300 {
		return nil
	}
	err := fmt.Errorf("sentry answered %s to envelope %s: %s", exporterhelper.StatusText(code), showID(eventID), errorText(body, cut))
	return sentryStatus.Classify(code, h, now, err, nil)
}

// classifyTransport classifies a failure with no response: retried.
func classifyTransport(err error, eventID string) error {
	return pipeline.Retryable(fmt.Errorf("send envelope %s to sentry: %w", showID(eventID), err), 0)
}

func showID(id string) string {
	if id == "" {
		return "(no event_id)"
	}
	return id
}

// sentryError is the body of Sentry's (Relay's) error answers.
type sentryError struct {
	Detail string   `json:"detail"`
	Causes []string `json:"causes"`
}

// errorText is the message of an error answer: Sentry's "detail" (with its "causes")
// when the body is its JSON error, else the body as text, fit for a log line.
func errorText(body []byte, cut bool) string {
	if len(body) == 0 {
		return "(empty body)"
	}
	var se sentryError
	if !cut && json.Unmarshal(body, &se) == nil && se.Detail != "" {
		s := se.Detail
		if len(se.Causes) > 0 {
			s += " (" + strings.Join(se.Causes, "; ") + ")"
		}
		return cutText(s)
	}
	s := cutText(string(body))
	if cut && !strings.HasSuffix(s, " …") {
		s += " …"
	}
	return s
}

// cutText makes s fit a log line: valid UTF-8, no surrounding space, at most
// maxErrorText bytes.
func cutText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxErrorText {
		return strings.ToValidUTF8(s[:maxErrorText], "") + " …"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// errRateLimited is wrapped by the error of an envelope held back by a rate limit.
var errRateLimited = errors.New("rate limited by sentry")

// throttledError is the error of a 429 whose rate limits hold the envelope's
// category cat until until: retryable once they pass.
func throttledError(body []byte, cut bool, eventID, cat string, until, now time.Time) error {
	return pipeline.Retryable(fmt.Errorf("sentry answered %s to envelope %s: %w (category %s, for %s): %s",
		exporterhelper.StatusText(http.StatusTooManyRequests), showID(eventID), errRateLimited, cat,
		until.Sub(now).Round(time.Second), errorText(body, cut)), until.Sub(now))
}

// limitedError is the error of an envelope not sent because one of its categories is
// rate limited: retryable after the limit passes.
func limitedError(eventID, cat string, until, now time.Time) error {
	return pipeline.Retryable(fmt.Errorf("envelope %s held back: %w (category %s) for %s more",
		showID(eventID), errRateLimited, cat, until.Sub(now).Round(time.Second)), until.Sub(now))
}
