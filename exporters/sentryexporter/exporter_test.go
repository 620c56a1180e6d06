package sentryexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/pipeline"
)

func TestDeliverRewritesHeaderAndAuth(t *testing.T) {
	f := newFakeSentry(t, nil)
	h := newHarness(t, testConfig(f))
	before := time.Now()

	own := makeEnvelope(t, eventID(1), "event")
	// An envelope whose trace began in another project keeps that project's key.
	env, err := sentryenv.Parse(makeEnvelope(t, eventID(2), "event"), sentryenv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	env.Header["trace"].(map[string]any)["public_key"] = "0ther0project0key"
	foreign := env.Marshal()

	h.export(t, 1, own)
	h.export(t, 2, foreign)
	for i := 1; i <= 2; i++ {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", i, err)
		}
	}
	calls, _ := f.snapshot()
	if len(calls) != 2 {
		t.Fatalf("%d requests, want 2", len(calls))
	}
	wantAuth := "Sentry sentry_version=7, sentry_client=" + UserAgent + ", sentry_key=" + upstreamKey
	wantDSN := "http://" + upstreamKey + "@" + f.srv.Listener.Addr().String() + "/prefix/42"
	for _, c := range calls {
		if c.path != "/prefix/api/42/envelope/" {
			t.Errorf("path %q", c.path)
		}
		for k, want := range map[string]string{
			"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip",
			"X-Sentry-Auth": wantAuth, "User-Agent": UserAgent,
		} {
			if got := c.header.Get(k); got != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		for k, vs := range c.header {
			for _, v := range vs {
				if strings.Contains(v, appKey) {
					t.Errorf("header %s carries the application's key: %q", k, v)
				}
			}
		}
		if bytes.Contains(c.raw, []byte(appKey)) {
			t.Errorf("the envelope still carries the application's key:\n%s", c.raw)
		}
		if got := c.env.Header["dsn"]; got != wantDSN {
			t.Errorf("dsn header %v, want %q", got, wantDSN)
		}
		sentAt, err := time.Parse(time.RFC3339Nano, fmt.Sprint(c.env.Header["sent_at"]))
		if err != nil || sentAt.Before(before.Truncate(time.Microsecond)) {
			t.Errorf("sent_at %v (%v), want the time of sending, after %v", c.env.Header["sent_at"], err, before)
		}
		if !bytes.Contains(c.raw, []byte(`"sample_rate":0.10000000000000001`)) {
			t.Errorf("numbers of the header were not kept exactly:\n%s", c.raw)
		}
	}
	byID := map[string]*call{calls[0].id: calls[0], calls[1].id: calls[1]}
	if got := byID[eventID(1)].env.Header["trace"].(map[string]any)["public_key"]; got != upstreamKey {
		t.Errorf("trace public_key %v, want upstream's key in place of the application's", got)
	}
	if got := byID[eventID(2)].env.Header["trace"].(map[string]any)["public_key"]; got != "0ther0project0key" {
		t.Errorf("trace public_key %v, want the other project's key kept", got)
	}
	for id, data := range map[string][]byte{eventID(1): own, eventID(2): foreign} {
		if got := itemsOf(byID[id].raw); !bytes.Equal(got, itemsOf(data)) {
			t.Errorf("items of %s changed:\n%s\nwant\n%s", id, got, itemsOf(data))
		}
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", nil); v != 2 {
		t.Errorf("sent records %v, want 2 envelopes", v)
	}
	if strings.Contains(h.log.String(), upstreamKey) {
		t.Errorf("the log shows the key: %s", h.log.String())
	}
}

// limitErrorsOnce answers the first request with a 429 that announces limit (and a
// Retry-After, which the header's limits override), and every other with 200.
func limitErrorsOnce(limit string) func(c *call, n int) reply {
	return func(c *call, n int) reply {
		if n == 0 {
			return reply{status: 429, header: map[string]string{"X-Sentry-Rate-Limits": limit, "Retry-After": "1"},
				body: `{"detail":"event submission rejected with_reason: Usage"}`}
		}
		return reply{}
	}
}

func TestRateLimitedCategoryHeldOthersFlow(t *testing.T) {
	t.Parallel() // waits out a real rate limit
	f := newFakeSentry(t, limitErrorsOnce("2:error:organization:usage_exceeded"))
	h := newHarness(t, testConfig(f)) // concurrency 1
	e1, e2, t1 := eventID(1), eventID(2), eventID(3)

	h.export(t, 1, makeEnvelope(t, e1, "event"))
	limitedAt := f.waitFor(t, "the 429", func(c []*call) bool { return len(c) == 1 })[0].replied
	h.export(t, 2, makeEnvelope(t, e2, "event"))
	h.export(t, 3, makeEnvelope(t, t1, "transaction"))
	for i := 1; i <= 3; i++ {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", i, err)
		}
	}
	calls, _ := f.snapshot()
	if len(calls) != 4 {
		t.Fatalf("%d requests (%s), want 4: the 429, the transaction, and each error envelope once", len(calls), summary(calls))
	}
	deadline := limitedAt.Add(2 * time.Second)
	c1, c2, ct := callsOf(calls, e1), callsOf(calls, e2), callsOf(calls, t1)
	if len(c1) != 2 || len(c2) != 1 || len(ct) != 1 {
		t.Fatalf("requests per envelope: %d, %d, %d; want 2 (429, then delivered), 1, 1", len(c1), len(c2), len(ct))
	}
	for _, c := range []*call{c1[1], c2[0]} {
		if c.at.Before(deadline) {
			t.Errorf("error envelope %s sent %v before the rate limit passed", c.id, deadline.Sub(c.at))
		}
	}
	// The transaction, exported after the held error envelope, went first.
	if idx := indexOf(calls, ct[0]); idx != 1 {
		t.Errorf("the transaction was request %d (%s), want it sent while errors were limited", idx, summary(calls))
	}
	if v := h.metric(t, "outrider_sentry_rate_limited_seconds_total", map[string]string{"category": "error"}); v != 2 {
		t.Errorf("rate limited seconds %v, want 2", v)
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", nil); v != 0 {
		t.Errorf("%v envelopes dropped", v)
	}
	logs := h.log.String()
	if !strings.Contains(logs, `"categories":"error"`) || !strings.Contains(logs, "usage_exceeded") {
		t.Errorf("the rate limit was not logged with its category and reason:\n%s", logs)
	}
}

func indexOf(calls []*call, c *call) int {
	for i := range calls {
		if calls[i] == c {
			return i
		}
	}
	return -1
}

// TestInFlightLimitedEnvelopesFreeTheirWorkers has every slot hold an error envelope
// when Sentry limits errors: both wait for the limit, and a transaction still goes.
func TestInFlightLimitedEnvelopesFreeTheirWorkers(t *testing.T) {
	t.Parallel() // waits out a real rate limit
	var (
		mu      sync.Mutex
		waiting int
		both    = make(chan struct{})
	)
	f := newFakeSentry(t, func(c *call, n int) reply {
		if c.env.Items[0].Type != "event" || n >= 2 {
			return reply{}
		}
		mu.Lock()
		waiting++
		if waiting == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
		case <-time.After(10 * time.Second):
		}
		return reply{status: 429, header: map[string]string{"X-Sentry-Rate-Limits": "2:error:key"}}
	})
	cfg := testConfig(f)
	cfg.Concurrency = 2
	h := newHarness(t, cfg)
	h.export(t, 1, makeEnvelope(t, eventID(1), "event"))
	h.export(t, 2, makeEnvelope(t, eventID(2), "event"))
	calls := f.waitFor(t, "both 429s", func(c []*call) bool { return len(c) == 2 })
	limitedAt := calls[0].replied
	if calls[1].replied.Before(limitedAt) {
		limitedAt = calls[1].replied
	}
	h.export(t, 3, makeEnvelope(t, eventID(3), "transaction"))
	for i := 1; i <= 3; i++ {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", i, err)
		}
	}
	calls, _ = f.snapshot()
	if len(calls) != 5 || calls[2].id != eventID(3) {
		t.Fatalf("requests %s; want the two 429s, the transaction, then each error once", summary(calls))
	}
	for _, c := range calls[3:] {
		if c.at.Before(limitedAt.Add(2 * time.Second)) {
			t.Errorf("error envelope %s sent before the limit passed", c.id)
		}
	}
}

func TestRetryAfterHoldsEveryCategory(t *testing.T) {
	t.Parallel() // waits out a real rate limit
	f := newFakeSentry(t, func(c *call, n int) reply {
		if n == 0 {
			return reply{status: 429, header: map[string]string{"Retry-After": "1"}}
		}
		return reply{}
	})
	h := newHarness(t, testConfig(f))
	h.export(t, 1, makeEnvelope(t, eventID(1), "event"))
	limitedAt := f.waitFor(t, "the 429", func(c []*call) bool { return len(c) == 1 })[0].replied
	h.export(t, 2, makeEnvelope(t, eventID(2), "transaction"))
	for i := 1; i <= 2; i++ {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", i, err)
		}
	}
	calls, _ := f.snapshot()
	if len(calls) != 3 {
		t.Fatalf("requests %s, want 3", summary(calls))
	}
	for _, c := range calls[1:] {
		if c.at.Before(limitedAt.Add(time.Second)) {
			t.Errorf("envelope %s sent before Retry-After passed", c.id)
		}
	}
	if v := h.metric(t, "outrider_sentry_rate_limited_seconds_total", map[string]string{"category": "all"}); v != 1 {
		t.Errorf("rate limited seconds (all) %v, want 1", v)
	}
}

func TestRateLimitsFromSuccessfulAnswer(t *testing.T) {
	t.Parallel() // waits out a real rate limit
	f := newFakeSentry(t, func(c *call, n int) reply {
		if n == 0 {
			return reply{header: map[string]string{"X-Sentry-Rate-Limits": "1:transaction:key"}}
		}
		return reply{}
	})
	h := newHarness(t, testConfig(f))
	h.export(t, 1, makeEnvelope(t, eventID(1), "transaction"))
	if err := h.acks.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	limitedAt := f.waitFor(t, "the first answer", func(c []*call) bool { return len(c) == 1 })[0].replied
	h.export(t, 2, makeEnvelope(t, eventID(2), "transaction"))
	h.export(t, 3, makeEnvelope(t, eventID(3), "event"))
	for i := 2; i <= 3; i++ {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatal(err)
		}
	}
	calls, _ := f.snapshot()
	if len(calls) != 3 || calls[1].id != eventID(3) || calls[2].id != eventID(2) {
		t.Fatalf("requests %s; want the error envelope before the held transaction", summary(calls))
	}
	if calls[2].at.Before(limitedAt.Add(time.Second)) {
		t.Error("transaction sent before the limit announced with a 200 passed")
	}
}

func TestServerErrorsRetried(t *testing.T) {
	f := newFakeSentry(t, func(c *call, n int) reply {
		if n < 2 {
			return reply{status: 500, body: "upstream hiccup"}
		}
		return reply{}
	})
	h := newHarness(t, testConfig(f))
	h.export(t, 1, makeEnvelope(t, eventID(1), "event"))
	if err := h.acks.Wait(t, 1); err != nil {
		t.Fatal(err)
	}
	calls, _ := f.snapshot()
	if len(calls) != 3 {
		t.Fatalf("requests %s, want two 500s then the delivery", summary(calls))
	}
	if v := h.metric(t, "outrider_exporter_retries_total", nil); v != 2 {
		t.Errorf("retries %v, want 2", v)
	}
	if v := h.metric(t, "outrider_sentry_rate_limited_seconds_total", nil); v != 0 {
		t.Errorf("a 500 was taken for a rate limit: %v", v)
	}
}

func TestPermanentAnswersDropped(t *testing.T) {
	tests := []struct {
		code   int
		body   string
		reason string
		want   []string
	}{
		{400, `{"detail":"invalid event envelope","causes":["missing newline"]}`, ReasonBadRequest, []string{"invalid event envelope (missing newline)"}},
		{413, `{"detail":"envelope exceeded size limits"}`, ReasonTooLarge, []string{"envelope exceeded size limits"}},
		{401, `{"detail":"bad sentry DSN public key"}`, ReasonUnauthorized, []string{"bad sentry DSN public key", "check the public key in dsn"}},
		{403, `{"detail":"event submission rejected with_reason: DisabledKey"}`, ReasonUnauthorized, []string{"DisabledKey", "check the public key in dsn"}},
		{404, "", ReasonNotFound, []string{"check dsn"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			f := newFakeSentry(t, func(*call, int) reply { return reply{status: tt.code, body: tt.body} })
			h := newHarness(t, testConfig(f))
			h.export(t, 1, makeEnvelope(t, eventID(1), "event"))
			err := h.acks.Wait(t, 1)
			if reason, ok := pipeline.IsPermanent(err); !ok || reason != tt.reason {
				t.Fatalf("acknowledged with %v, want a permanent %s error", err, tt.reason)
			}
			for _, w := range append(tt.want, eventID(1)) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), upstreamKey) || strings.Contains(h.log.String(), upstreamKey) {
				t.Error("the error or the log shows the DSN's key")
			}
			if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": tt.reason}); v != 1 {
				t.Errorf("dropped %v, want 1", v)
			}
			if lines := h.log.Lines(); len(lines) != 1 || !strings.Contains(lines[0], tt.want[0]) {
				t.Errorf("log %q, want one line with Sentry's reason", lines)
			}
			if calls, _ := f.snapshot(); len(calls) != 1 {
				t.Errorf("%d requests, want 1: a permanent rejection is not retried", len(calls))
			}
		})
	}
}

func TestInvalidEnvelopeDropped(t *testing.T) {
	f := newFakeSentry(t, nil)
	h := newHarness(t, testConfig(f))
	h.export(t, 1, []byte("this is not an envelope\n"))
	err := h.acks.Wait(t, 1)
	if reason, ok := pipeline.IsPermanent(err); !ok || reason != ReasonInvalidEnvelope {
		t.Fatalf("acknowledged with %v, want permanent %s", err, ReasonInvalidEnvelope)
	}
	// A valid envelope after it still goes.
	h.export(t, 2, makeEnvelope(t, eventID(2), "event"))
	if err := h.acks.Wait(t, 2); err != nil {
		t.Fatal(err)
	}
	if calls, _ := f.snapshot(); len(calls) != 1 || calls[0].id != eventID(2) {
		t.Errorf("requests %s, want only the valid envelope", summary(calls))
	}
}

func TestShutdownLeavesUndeliveredUnacked(t *testing.T) {
	tests := []struct {
		name   string
		answer func(*call, int) reply
		want   string
	}{
		{"sentry down", func(*call, int) reply { return reply{status: 503} }, "2 requests undelivered"},
		{"rate limited", func(*call, int) reply {
			return reply{status: 429, header: map[string]string{"X-Sentry-Rate-Limits": "60:error:key"}}
		}, "2 requests undelivered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSentry(t, tt.answer)
			h := newHarness(t, testConfig(f))
			h.export(t, 1, makeEnvelope(t, eventID(1), "event"))
			h.export(t, 2, makeEnvelope(t, eventID(2), "event"))
			f.waitFor(t, "a first answer", func(c []*call) bool { return len(c) >= 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err := h.exp.Shutdown(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Shutdown = %v, want %q", err, tt.want)
			}
			if h.acks.Count() != 0 {
				t.Fatalf("undelivered envelopes were acknowledged: %v %v", h.acks.Get(1), h.acks.Get(2))
			}
			if err := h.exp.ExportEnvelope(context.Background(), pipeline.Envelope{Data: makeEnvelope(t, eventID(3), "event")}); !errors.Is(err, exporterhelper.ErrClosed) {
				t.Errorf("ExportEnvelope after Shutdown = %v, want ErrClosed", err)
			}
		})
	}
}

func TestHeldEnvelopesCountAgainstPendingBytes(t *testing.T) {
	f := newFakeSentry(t, func(*call, int) reply {
		return reply{status: 429, header: map[string]string{"X-Sentry-Rate-Limits": "60:error:key"}}
	})
	cfg := testConfig(f)
	first := makeEnvelope(t, eventID(1), "event")
	cfg.MaxPendingBytes = 1
	h := newHarness(t, cfg)
	h.export(t, 1, first)
	f.waitFor(t, "the 429", func(c []*call) bool { return len(c) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.exp.ExportEnvelope(ctx, pipeline.Envelope{Data: makeEnvelope(t, eventID(2), "transaction")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ExportEnvelope while a held envelope fills max_pending_bytes = %v, want to wait", err)
	}
	if v := h.metric(t, "outrider_exporter_pending_bytes", nil); v != float64(len(first)) {
		t.Errorf("pending bytes %v, want the held envelope's %d", v, len(first))
	}
	sctx, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer scancel()
	_ = h.exp.Shutdown(sctx)
}

func TestManyEnvelopesDeliveredOnce(t *testing.T) {
	var (
		mu   sync.Mutex
		rng  = rand.New(rand.NewPCG(7, 8))
		seen = map[string]int{}
	)
	f := newFakeSentry(t, func(c *call, n int) reply {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(4) == 0 {
			return reply{status: 502}
		}
		seen[c.id]++
		return reply{}
	})
	cfg := testConfig(f)
	cfg.Concurrency = 3
	h := newHarness(t, cfg)
	const n = 60
	for i := range n {
		typ := "event"
		if i%3 == 0 {
			typ = "transaction"
		}
		h.export(t, i, makeEnvelope(t, eventID(i+1), typ))
	}
	for i := range n {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if seen[eventID(i+1)] != 1 {
			t.Errorf("envelope %d delivered %d times", i, seen[eventID(i+1)])
		}
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", nil); v != n {
		t.Errorf("sent records %v, want %d", v, n)
	}
}

// TestRefusedEnvelopeDropsOnlyItself: Sentry refusing one envelope (400) neither
// blocks nor drops the envelopes around it; it is counted once.
func TestRefusedEnvelopeDropsOnlyItself(t *testing.T) {
	f := newFakeSentry(t, func(c *call, _ int) reply {
		if c.id == eventID(3) {
			return reply{status: 400, body: `{"detail":"invalid event envelope"}`}
		}
		return reply{status: 200}
	})
	h := newHarness(t, testConfig(f))
	for i := 1; i <= 5; i++ {
		h.export(t, i, makeEnvelope(t, eventID(i), "event"))
	}
	for i := 1; i <= 5; i++ {
		err := h.acks.Wait(t, i)
		if _, perm := pipeline.IsPermanent(err); (i == 3) != perm {
			t.Errorf("envelope %d acknowledged with %v", i, err)
		}
	}
	if v := h.metric(t, "outrider_exporter_dropped_records_total", map[string]string{"reason": ReasonBadRequest}); v != 1 {
		t.Errorf("dropped %v, want 1", v)
	}
	if v := h.metric(t, "outrider_exporter_sent_records_total", nil); v != 4 {
		t.Errorf("sent %v, want 4", v)
	}
	if calls, _ := f.snapshot(); len(calls) != 5 {
		t.Errorf("requests %s, want each envelope once", summary(calls))
	}
}
