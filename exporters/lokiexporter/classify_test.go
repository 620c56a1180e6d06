package lokiexporter

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/pipeline"
)

func response(code int, body string, header map[string]string) *http.Response {
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	type want struct {
		ok        bool
		permanent string // reason
		after     time.Duration
		contains  string
	}
	cases := []struct {
		name   string
		code   int
		body   string
		header map[string]string
		want   want
	}{
		{"204", 204, "", nil, want{ok: true}},
		{"200", 200, "", nil, want{ok: true}},
		{"429 seconds", 429, "ingestion rate limit exceeded", map[string]string{"Retry-After": "7"}, want{after: 7 * time.Second, contains: "429 Too Many Requests: ingestion rate limit exceeded"}},
		{"429 date", 429, "", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, want{after: 90 * time.Second}},
		{"429 bare", 429, "", nil, want{}},
		{"503 retry-after", 503, "", map[string]string{"Retry-After": "3"}, want{after: 3 * time.Second}},
		{"500", 500, "internal", nil, want{contains: "500 Internal Server Error: internal"}},
		{"out of order", 400, "entry with timestamp 2026-01-01 ignored, reason: 'entry out of order' for stream: {a=\"b\"}", nil, want{permanent: ReasonOutOfOrder}},
		{"too far behind", 400, "entry too far behind, oldest acceptable timestamp is: ...", nil, want{permanent: ReasonOutOfOrder}},
		{"too old", 400, "entry for stream '{a=\"b\"}' has timestamp too old: 2020-01-01", nil, want{permanent: ReasonTooOld}},
		{"sample age", 400, "greater_than_max_sample_age", nil, want{permanent: ReasonTooOld}},
		{"too new", 400, "entry for stream '{a=\"b\"}' has timestamp too new: 2030-01-01", nil, want{permanent: ReasonTooNew}},
		{"line too long", 400, "Max entry size '262144' bytes exceeded for stream", nil, want{permanent: ReasonTooLarge}},
		{"exceeds limit", 400, "stream '{}' line too long", nil, want{permanent: ReasonTooLarge}},
		{"413", 413, "request body too large", nil, want{permanent: ReasonTooLarge, contains: "batch.max_bytes"}},
		{"401", 401, "no org id", nil, want{permanent: ReasonUnauthorized, contains: "check tenant_id and the credentials"}},
		{"403", 403, "", nil, want{permanent: ReasonUnauthorized, contains: "(empty body)"}},
		{"404", 404, "404 page not found", nil, want{permanent: ReasonBadRequest, contains: "check url"}},
		{"other 400", 400, "error at least one label pair is required per stream", nil, want{permanent: ReasonBadRequest}},
		{"422", 422, "", nil, want{permanent: ReasonBadRequest}},
		{"redirect", 302, "", nil, want{contains: "set url to Loki's push endpoint"}},
		{"long body truncated", 500, strings.Repeat("x", 5000), nil, want{contains: strings.Repeat("x", 1024) + " …"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(response(tc.code, tc.body, tc.header), now)
			if tc.want.ok {
				if err != nil {
					t.Fatalf("classify = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("classify = nil, want an error")
			}
			reason, perm := pipeline.IsPermanent(err)
			if tc.want.permanent != "" {
				if !perm || reason != tc.want.permanent {
					t.Fatalf("classify = %v, want permanent %q", err, tc.want.permanent)
				}
			} else if perm {
				t.Fatalf("classify = %v, want retryable", err)
			}
			after, _ := pipeline.RetryAfter(err)
			if after != tc.want.after {
				t.Errorf("retry after %v, want %v", after, tc.want.after)
			}
			if !strings.Contains(err.Error(), tc.want.contains) {
				t.Errorf("%q lacks %q", err, tc.want.contains)
			}
			if len(err.Error()) > 1500 {
				t.Errorf("error message of %d bytes; the body must be cut at 1 KiB", len(err.Error()))
			}
		})
	}
}

// FuzzClassify checks that any status, body and Retry-After give a classified error
// (never a panic), that only 2xx succeeds, and that the message stays bounded.
func FuzzClassify(f *testing.F) {
	f.Add(400, "entry out of order", "")
	f.Add(400, "3 errors like: entry for stream '{a=\"b\"}' has timestamp too old: x; 2 errors like: stream '{c=\"; 1 errors like: \"}' has label value too long", "")
	f.Add(429, "rate limited", "5")
	f.Add(503, "\xff\xfe", "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(204, "", "")
	f.Fuzz(func(t *testing.T, code int, body, retryAfter string) {
		if code < 100 || code > 999 {
			return
		}
		err := classify(response(code, body, map[string]string{"Retry-After": retryAfter}), time.Now())
		if (code >= 200 && code < 300) != (err == nil) {
			t.Fatalf("status %d classified as %v", code, err)
		}
		if err == nil {
			return
		}
		_, perm := pipeline.IsPermanent(err)
		if code == 429 || code >= 500 {
			if perm {
				t.Fatalf("status %d classified permanent", code)
			}
		} else if code >= 400 && !perm {
			t.Fatalf("status %d classified retryable", code)
		}
		if len(err.Error()) > 4*maxErrorBody+300 {
			t.Fatalf("message of %d bytes", len(err.Error()))
		}
	})
}

func TestParseRejection(t *testing.T) {
	tests := []struct {
		name string
		body string
		cut  bool
		want rejection
	}{
		{"one too old", "entry for stream '{a=\"b\"}' has timestamp too old: 2026-01-01, oldest acceptable timestamp is: 2026-02-01", false, rejection{entries: 1}},
		{"grouped", "3 errors like: entry for stream '{a=\"b\"}' has timestamp too old: x; 2 errors like: max entry size '262144' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '300000' bytes", false, rejection{entries: 5}},
		{"label value with a separator", "entry for stream '{a=\"x; 2 errors like: y\"}' has timestamp too new: 2030-01-01", false, rejection{entries: 1}},
		{"structured metadata", "stream '{a=\"b\"}' has structured metadata too large: '70000' bytes, limit: '65536' bytes", false, rejection{entries: 1}},
		{"ingester", "entry with timestamp 2026-01-01 ignored, reason: 'entry too far behind' for stream: {a=\"b\"},\nuser 'fake', total ignored: 100 out of 100 for stream: {a=\"b\"}", false, rejection{entries: 100}},
		{"stream labels", "error at least one label pair is required per stream", false, rejection{stream: true}},
		{"label names look like an entry", "entry for stream '{a=\"b\"}' has 20 label names; limit 15", false, rejection{stream: true}},
		{"stream and entries", "1 errors like: stream '{a=\"b\"}' has label value too long: 'x'; 4 errors like: entry for stream '{c=\"d\"}' has timestamp too old: y", false, rejection{entries: 4, stream: true}},
		{"unknown", "something new", false, rejection{unknown: true}},
		{"cut", "entry for stream '{}' has timestamp too old", true, rejection{unknown: true}},
		{"empty", "", false, rejection{unknown: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRejection(tt.body, tt.cut); got != tt.want {
				t.Errorf("parseRejection = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClassify400(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		partly    int
		split     bool
		streamLvl bool
	}{
		{"entries only: Loki stored the rest", "2 errors like: entry for stream '{a=\"b\"}' has timestamp too old: x", 2, false, false},
		{"whole stream", "stream '{a=\"b\"}' has label value too long: 'x'", 0, true, true},
		{"unknown: split", "proto: bad wiretype", 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(response(400, tt.body, nil), time.Now())
			if _, perm := pipeline.IsPermanent(err); !perm {
				t.Fatalf("classify = %v, want permanent", err)
			}
			if n := pipeline.RejectedCount(err); n != tt.partly {
				t.Errorf("RejectedCount = %d, want %d", n, tt.partly)
			}
			if exporterhelper.IsSplittable(err) != tt.split {
				t.Errorf("splittable = %v, want %v", exporterhelper.IsSplittable(err), tt.split)
			}
			var sr *streamRejected
			if errors.As(err, &sr) != tt.streamLvl {
				t.Errorf("stream-level = %v, want %v", !tt.streamLvl, tt.streamLvl)
			}
		})
	}
}

func TestSplitFollowsLokisRefusal(t *testing.T) {
	e, err := New(Config{URL: "http://127.0.0.1:1"}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	a := pipeline.NewStream(map[string]string{"service": "a"})
	b := pipeline.NewStream(map[string]string{"service": "b"})
	recs := []pipeline.Record{{Stream: a, Line: "1"}, {Stream: b, Line: "2"}, {Stream: a, Line: "3"}, {Stream: a, Line: "4", Level: pipeline.LevelError}}
	streamErr := classify(response(400, "stream '{service=\"b\"}' has label value too long: 'x'", nil), time.Now())
	entryErr := classify(response(400, "something Loki may say one day", nil), time.Now())
	partly := classify(response(400, "entry for stream '{service=\"a\"}' has timestamp too old: x", nil), time.Now())
	lines := func(parts [][]chunk) string {
		var out []string
		for _, p := range parts {
			var ls []string
			for _, c := range p {
				for _, r := range c.recs {
					ls = append(ls, r.Line)
				}
			}
			out = append(out, strings.Join(ls, ","))
		}
		return strings.Join(out, " | ")
	}
	tests := []struct {
		name string
		recs []pipeline.Record
		err  error
		want string
	}{
		{"stream refusal: by stream (and level)", recs, streamErr, "1,3 | 2 | 4"},
		{"stream refusal of one stream: all of it refused", recs[:1:1], streamErr, ""},
		{"stream refusal, one stream left: no split", []pipeline.Record{recs[0], recs[2]}, streamErr, ""},
		{"other refusal: halves", recs, entryErr, "1,2 | 3,4"},
		{"partly rejected: nothing to split", recs, partly, ""},
		{"not permanent", recs, pipeline.Retryable(errors.New("x"), 0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(e.split(appendChunks(nil, tt.recs, e.chunkMax), tt.err)); got != tt.want {
				t.Errorf("split = %q, want %q", got, tt.want)
			}
			// The same records in chunks of one record each split the same way.
			var ones []chunk
			for i := range tt.recs {
				ones = append(ones, chunk{recs: tt.recs[i : i+1], bytes: tt.recs[i].Size()})
			}
			if got := lines(e.split(ones, tt.err)); got != tt.want {
				t.Errorf("split = %q, want %q", got, tt.want)
			}
		})
	}
}
