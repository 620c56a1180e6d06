package sentryexporter

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
)

// Sentry's rate limits (https://develop.sentry.dev/sdk/expected-features/rate-limiting/)
// arrive in the X-Sentry-Rate-Limits header of any response, 2xx included:
//
//	X-Sentry-Rate-Limits: <quota_limit>, <quota_limit>, ...
//	quota_limit = <retry_after>:<categories>:<scope>[:<reason_code>[:<namespaces>]]...
//
// retry_after is a number of seconds (integer or float); categories are data
// categories separated by ';', empty meaning every category. A 429 without that
// header limits every category for its Retry-After (60s when it has none).

// Headers of Sentry's rate limits.
const (
	headerRateLimits = "X-Sentry-Rate-Limits"
	headerRetryAfter = "Retry-After"
)

// defaultRetryAfter is how long a 429 without X-Sentry-Rate-Limits and without a
// valid Retry-After limits every category, as Sentry's SDKs do.
const defaultRetryAfter = time.Minute

// maxLimit caps a rate limit's duration. Sentry announces limits up to the end of a
// quota window; a nonsensical value (1e17 seconds, +Inf) must not hold envelopes for
// ever. When a longer limit ends early, one envelope is sent and Sentry answers with
// the limit again.
const maxLimit = 24 * time.Hour

// rateLimit is one quota_limit of an X-Sentry-Rate-Limits header.
type rateLimit struct {
	// After is how long the limit lasts from the response: whole seconds, rounded up
	// as Relay does, between 0 and maxLimit.
	After time.Duration
	// Categories are the limited data categories, lower case, unique; nil means all.
	Categories []string
	// Scope and Reason are the quota's scope ("organization", "project", "key") and
	// reason code ("usage_exceeded"), for the log.
	Scope, Reason string
}

// parseRateLimits parses an X-Sentry-Rate-Limits header value. Malformed quota
// limits (no number where retry_after belongs) are skipped, the others kept, as
// Sentry's SDKs do; spaces around any part are ignored; namespaces and parts after
// them are ignored (a metric_bucket limit then applies to every namespace).
func parseRateLimits(v string) []rateLimit {
	var out []rateLimit
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.SplitN(part, ":", 5)
		after, ok := parseLimitSeconds(strings.TrimSpace(fields[0]))
		if !ok {
			continue
		}
		l := rateLimit{After: after}
		if len(fields) > 1 {
			for c := range strings.SplitSeq(fields[1], ";") {
				c = strings.ToLower(strings.TrimSpace(c))
				if c != "" && !slices.Contains(l.Categories, c) {
					l.Categories = append(l.Categories, c)
				}
			}
		}
		if len(fields) > 2 {
			l.Scope = strings.TrimSpace(fields[2])
		}
		if len(fields) > 3 {
			l.Reason = strings.TrimSpace(fields[3])
		}
		out = append(out, l)
	}
	return out
}

// parseLimitSeconds parses retry_after: a decimal number of seconds, rounded up to
// whole seconds. Negative values and NaN mean no wait; values over maxLimit, +Inf
// included, are capped.
func parseLimitSeconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		// Only decimal numbers: ParseFloat would also take hex floats and "Inf".
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeError(err) {
		return 0, false
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		return 0, true
	case f >= maxLimit.Seconds():
		return maxLimit, true
	}
	return time.Duration(math.Ceil(f)) * time.Second, true
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// maxLimitedCategories bounds how many categories the exporter remembers limits for;
// Sentry has about twenty.
const maxLimitedCategories = 64

// rateLimits holds the deadlines of the categories Sentry limited. It is safe for
// concurrent use.
type rateLimits struct {
	mu    sync.Mutex
	all   time.Time            // deadline of the limit on every category
	byCat map[string]time.Time // deadline by category
}

func newRateLimits() *rateLimits { return &rateLimits{byCat: map[string]time.Time{}} }

// started is a limit that a response began or extended: Category "all" for every
// category; Seconds is how far it moved the deadline (what the metric counts).
type started struct {
	Category string
	Until    time.Time
	Seconds  float64
	New      bool // the category was not limited before
	Scope    string
	Reason   string
}

// fromResponse records the limits a response announces: its X-Sentry-Rate-Limits,
// or for a 429 without it, every category for Retry-After (defaultRetryAfter when
// absent or invalid). It returns what changed.
func (r *rateLimits) fromResponse(code int, h http.Header, now time.Time) []started {
	if v := h.Values(headerRateLimits); len(v) > 0 {
		return r.apply(parseRateLimits(strings.Join(v, ",")), now)
	}
	if code != http.StatusTooManyRequests {
		return nil
	}
	after, ok := exporterhelper.ParseRetryAfter(h.Get(headerRetryAfter), now)
	if !ok {
		after = defaultRetryAfter
	}
	return r.apply([]rateLimit{{After: min(after, maxLimit)}}, now)
}

// apply records limits that start at now, keeping the later deadline of a category.
func (r *rateLimits) apply(ls []rateLimit, now time.Time) []started {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []started
	for _, l := range ls {
		if l.After <= 0 {
			continue
		}
		until := now.Add(l.After)
		if l.Categories == nil {
			if s, ok := extend(&r.all, "all", until, now, l); ok {
				out = append(out, s)
			}
			continue
		}
		for _, c := range l.Categories {
			cur, ok := r.byCat[c]
			if !ok && !r.roomFor(now) {
				continue
			}
			if s, ok := extend(&cur, c, until, now, l); ok {
				r.byCat[c] = cur
				out = append(out, s)
			}
		}
	}
	return out
}

// roomFor makes room for one more category, dropping expired deadlines; it reports
// false when every remembered category is still limited.
func (r *rateLimits) roomFor(now time.Time) bool {
	if len(r.byCat) < maxLimitedCategories {
		return true
	}
	for c, d := range r.byCat {
		if !d.After(now) {
			delete(r.byCat, c)
		}
	}
	return len(r.byCat) < maxLimitedCategories
}

func extend(cur *time.Time, cat string, until, now time.Time, l rateLimit) (started, bool) {
	if !until.After(*cur) {
		return started{}, false
	}
	from := now
	wasLimited := cur.After(now)
	if wasLimited {
		from = *cur
	}
	*cur = until
	return started{Category: cat, Until: until, Seconds: until.Sub(from).Seconds(), New: !wasLimited,
		Scope: l.Scope, Reason: l.Reason}, true
}

// until returns the latest deadline after now that holds any of cats (or every
// category), and the category it is for ("all" for every category); a zero time when
// none of cats is limited.
func (r *rateLimits) until(cats []string, now time.Time) (time.Time, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		d   time.Time
		cat string
	)
	if r.all.After(now) {
		d, cat = r.all, "all"
	}
	for _, c := range cats {
		if t, ok := r.byCat[c]; ok && t.After(now) && t.After(d) {
			d, cat = t, c
		}
	}
	return d, cat
}
