package sentryexporter

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRateLimits(t *testing.T) {
	s := time.Second
	tests := []struct {
		in   string
		want []rateLimit
	}{
		{"", nil},
		{",  , ,", nil},
		{":", nil},
		{"::,,:,", nil},
		{"60", []rateLimit{{After: 60 * s}}},
		{"60::organization", []rateLimit{{After: 60 * s, Scope: "organization"}}},
		{"60:;:organization", []rateLimit{{After: 60 * s, Scope: "organization"}}},
		{"60:transaction:key", []rateLimit{{After: 60 * s, Categories: []string{"transaction"}, Scope: "key"}}},
		{
			"60:transaction:key, 2700:default;error;security:organization",
			[]rateLimit{
				{After: 60 * s, Categories: []string{"transaction"}, Scope: "key"},
				{After: 2700 * s, Categories: []string{"default", "error", "security"}, Scope: "organization"},
			},
		},
		{
			"60:error:organization:usage_exceeded",
			[]rateLimit{{After: 60 * s, Categories: []string{"error"}, Scope: "organization", Reason: "usage_exceeded"}},
		},
		{
			"2700:metric_bucket:organization:quota_exceeded:custom:future:fields",
			[]rateLimit{{After: 2700 * s, Categories: []string{"metric_bucket"}, Scope: "organization", Reason: "quota_exceeded"}},
		},
		{" 10 : Error ; error ;TRANSACTION : project ", []rateLimit{{After: 10 * s, Categories: []string{"error", "transaction"}, Scope: "project"}}},
		{"3.1:error", []rateLimit{{After: 4 * s, Categories: []string{"error"}}}},
		{"0.001:error", []rateLimit{{After: s, Categories: []string{"error"}}}},
		{"1e2:error", []rateLimit{{After: 100 * s, Categories: []string{"error"}}}},
		{"-5:error", []rateLimit{{After: 0, Categories: []string{"error"}}}},
		{"0:error", []rateLimit{{After: 0, Categories: []string{"error"}}}},
		{"100000000000000000:error", []rateLimit{{After: maxLimit, Categories: []string{"error"}}}},
		{"1e400:error", []rateLimit{{After: maxLimit, Categories: []string{"error"}}}},
		{"inf:error, NaN:error, 0x10:error, abc:error, :error, 5:error", []rateLimit{{After: 5 * s, Categories: []string{"error"}}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got := parseRateLimits(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRateLimits = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseRateLimits(f *testing.F) {
	for _, s := range []string{
		"60:transaction:key, 2700:default;error;security:organization",
		"60::organization, 2700::organization", "2700:metric_bucket:organization:quota_exceeded:custom",
		"3.5:error", "-1:x", "1e400", " , ;:", "NaN:error",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := parseRateLimits(s)
		var parts []string
		for _, l := range got {
			if l.After < 0 || l.After > maxLimit || l.After%time.Second != 0 {
				t.Fatalf("limit of %v from %q", l.After, s)
			}
			for _, c := range l.Categories {
				if c == "" || c != strings.ToLower(c) || strings.ContainsAny(c, ",;:") || c != strings.TrimSpace(c) {
					t.Fatalf("category %q from %q", c, s)
				}
			}
			if strings.ContainsAny(l.Scope+l.Reason, ",:") {
				t.Fatalf("scope %q reason %q from %q", l.Scope, l.Reason, s)
			}
			parts = append(parts, fmt.Sprintf("%d:%s:%s:%s", l.After/time.Second, strings.Join(l.Categories, ";"), l.Scope, l.Reason))
		}
		// What was parsed, written back, parses to the same limits.
		again := parseRateLimits(strings.Join(parts, ","))
		if len(again) != len(got) {
			t.Fatalf("round trip of %q: %+v then %+v", s, got, again)
		}
		for i := range got {
			if got[i].After != again[i].After || !reflect.DeepEqual(got[i].Categories, again[i].Categories) ||
				got[i].Scope != again[i].Scope || got[i].Reason != again[i].Reason {
				t.Fatalf("round trip of %q: %+v then %+v", s, got, again)
			}
		}
	})
}

func TestRateLimitsFromResponse(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := time.Second
	tests := []struct {
		name   string
		code   int
		header map[string][]string
		// want is the deadline offset of each category asked about; 0 means not limited.
		want map[string]time.Duration
	}{
		{"200 without limits", 200, nil, map[string]time.Duration{"error": 0, "transaction": 0}},
		{"429 without headers: every category for 60s", 429, nil,
			map[string]time.Duration{"error": 60 * s, "transaction": 60 * s, "whatever": 60 * s}},
		{"429 with Retry-After", 429, map[string][]string{"Retry-After": {"7"}},
			map[string]time.Duration{"error": 7 * s, "session": 7 * s}},
		{"429 with an invalid Retry-After", 429, map[string][]string{"Retry-After": {"soon"}},
			map[string]time.Duration{"error": 60 * s}},
		{"429 with an HTTP-date Retry-After", 429, map[string][]string{"Retry-After": {now.Add(90 * s).Format(http.TimeFormat)}},
			map[string]time.Duration{"error": 90 * s}},
		{"header limits win over Retry-After", 429,
			map[string][]string{"Retry-After": {"30"}, "X-Sentry-Rate-Limits": {"5:error:key"}},
			map[string]time.Duration{"error": 5 * s, "transaction": 0}},
		{"header limits on a 200", 200, map[string][]string{"X-Sentry-Rate-Limits": {"9:transaction;span:project"}},
			map[string]time.Duration{"transaction": 9 * s, "span": 9 * s, "error": 0}},
		{"several header lines", 200, map[string][]string{"X-Sentry-Rate-Limits": {"9:transaction", "4::organization"}},
			map[string]time.Duration{"transaction": 9 * s, "error": 4 * s}},
		{"the later deadline wins", 429, map[string][]string{"X-Sentry-Rate-Limits": {"30:error, 10:error, 20::org"}},
			map[string]time.Duration{"error": 30 * s, "session": 20 * s}},
		{"a 5xx's Retry-After is not a rate limit", 503, map[string][]string{"Retry-After": {"30"}},
			map[string]time.Duration{"error": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRateLimits()
			r.fromResponse(tt.code, http.Header(tt.header), now)
			for cat, off := range tt.want {
				until, _ := r.until([]string{cat}, now)
				want := time.Time{}
				if off > 0 {
					want = now.Add(off)
				}
				if !until.Equal(want) {
					t.Errorf("%s limited until %v, want %v", cat, until, want)
				}
			}
		})
	}
}

func TestRateLimitsBookkeeping(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := time.Second
	r := newRateLimits()

	got := r.apply(parseRateLimits("10:error:org:usage_exceeded"), now)
	if len(got) != 1 || got[0].Category != "error" || got[0].Seconds != 10 || !got[0].New || got[0].Reason != "usage_exceeded" {
		t.Fatalf("first limit: %+v", got)
	}
	// A shorter limit changes nothing; a longer one counts only its extension.
	if got := r.apply(parseRateLimits("5:error"), now.Add(s)); len(got) != 0 {
		t.Fatalf("shorter limit changed %+v", got)
	}
	got = r.apply(parseRateLimits("12:error"), now.Add(4*s))
	if len(got) != 1 || got[0].Seconds != 6 || got[0].New {
		t.Fatalf("extension: %+v, want 6 seconds, not new", got)
	}
	if until, cat := r.until([]string{"transaction", "error"}, now.Add(5*s)); !until.Equal(now.Add(16*s)) || cat != "error" {
		t.Errorf("until = %v %s", until, cat)
	}
	// After the deadline the category is free, and a new limit is new again.
	if until, _ := r.until([]string{"error"}, now.Add(16*s)); !until.IsZero() {
		t.Errorf("still limited at the deadline: %v", until)
	}
	got = r.apply(parseRateLimits("1:error"), now.Add(20*s))
	if len(got) != 1 || !got[0].New || got[0].Seconds != 1 {
		t.Errorf("limit after expiry: %+v", got)
	}
	// A limit on every category holds any category, and reports itself as "all".
	r.apply(parseRateLimits("30::org"), now.Add(20*s))
	if until, cat := r.until([]string{"profile"}, now.Add(21*s)); !until.Equal(now.Add(50*s)) || cat != "all" {
		t.Errorf("all: until %v %s", until, cat)
	}
	if until, _ := r.until(nil, now.Add(21*s)); until.IsZero() {
		t.Error("an envelope without items is not held by a limit on every category")
	}
}

func TestRateLimitsBoundCategories(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	r := newRateLimits()
	var b strings.Builder
	for i := range 2 * maxLimitedCategories {
		fmt.Fprintf(&b, "10:cat%d,", i)
	}
	r.apply(parseRateLimits(b.String()), now)
	if len(r.byCat) != maxLimitedCategories {
		t.Fatalf("%d categories remembered, want %d", len(r.byCat), maxLimitedCategories)
	}
	// Once they expire, room is made for new ones.
	r.apply(parseRateLimits("10:error"), now.Add(time.Minute))
	if until, _ := r.until([]string{"error"}, now.Add(time.Minute)); until.IsZero() {
		t.Error("no room for a new category after the old ones expired")
	}
	if len(r.byCat) != 1 {
		t.Errorf("%d categories remembered after expiry, want 1", len(r.byCat))
	}
}
