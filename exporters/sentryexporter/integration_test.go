package sentryexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/sentryenv"
	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// goEvent is an event as sentry-go builds it (the agent derives errors from logs and
// spans the same way), serialized with sentry-go's own JSON encoding.
func goEvent(t *testing.T, id string, withException bool) []byte {
	t.Helper()
	ev := sentrygo.NewEvent()
	ev.EventID = sentrygo.EventID(id)
	ev.Level = sentrygo.LevelError
	ev.Platform = "go"
	ev.Timestamp = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ev.Sdk = sentrygo.SdkInfo{Name: "outrider", Version: "dev"}
	ev.Tags = map[string]string{"request_id": "req-" + id[:8]}
	ev.Contexts = map[string]sentrygo.Context{"trace": {
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
	}}
	if withException {
		ev.Exception = []sentrygo.Exception{{
			Type:  "*errors.errorString",
			Value: "connection refused",
			Stacktrace: &sentrygo.Stacktrace{Frames: []sentrygo.Frame{
				{Function: "main", Module: "main", Filename: "main.go", AbsPath: "/app/main.go", Lineno: 12, InApp: true},
				{Function: "(*Server).handle", Module: "example.com/app/server", Filename: "server.go", Lineno: 88, InApp: true},
			}},
		}}
	} else {
		ev.Message = "payment failed for order 42"
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIntegrationStrictReceiver forwards sentry-go events to the strict receiver,
// which checks authentication, path, framing and the event schema, through a rate
// limit it announces itself.
func TestIntegrationStrictReceiver(t *testing.T) {
	t.Parallel() // waits out a real rate limit
	srv := sentrytest.Start(t, sentrytest.WithPublicKey(upstreamKey), sentrytest.WithProject(42))
	var limited atomic.Bool
	srv.RespondWith(func(*http.Request, *sentryenv.Envelope) (int, http.Header) {
		if limited.CompareAndSwap(false, true) {
			return http.StatusTooManyRequests, http.Header{"X-Sentry-Rate-Limits": {"1:error:organization:usage_exceeded"}}
		}
		return 0, nil
	})
	cfg := Config{
		DSN:     confval.Secret(srv.DSN(upstreamKey, 42)),
		Timeout: 5 * time.Second,
		// One at a time, so that no other error envelope is already on its way when
		// the 429 comes back: every later request must wait for the limit.
		Concurrency: 1,
	}
	cfg.Retry.InitialInterval = 5 * time.Millisecond
	h := newHarness(t, cfg)

	ids := []string{sentryenv.NewEventID(), sentryenv.NewEventID(), sentryenv.NewEventID()}
	h.export(t, 0, sentryenv.NewEventEnvelope(ids[0], goEvent(t, ids[0], true), time.Now()))
	h.export(t, 1, sentryenv.NewEventEnvelope(ids[1], goEvent(t, ids[1], false), time.Now()))
	// As an application's SDK sent it to the sidecar: with the sidecar's DSN.
	app, err := sentryenv.Parse(sentryenv.NewEventEnvelope(ids[2], goEvent(t, ids[2], true), time.Now()), sentryenv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	app.Header["dsn"] = appDSN
	app.Header["sdk"] = map[string]any{"name": "sentry.go", "version": "0.50.0"}
	h.export(t, 2, app.Marshal())

	for i := range ids {
		if err := h.acks.Wait(t, i); err != nil {
			t.Fatalf("envelope %d acknowledged with %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	events, err := srv.WaitEvents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		t.Fatalf("the receiver found protocol errors: %v", errs)
	}
	var got []string
	for _, ev := range events {
		got = append(got, ev.EventID())
		if ev.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("event %s lost its trace context: %s", ev.EventID(), ev)
		}
		if dsn, ok := ev.EnvelopeHeader["dsn"].(string); ok && strings.Contains(dsn, appKey) {
			t.Errorf("event %s still carries the application's DSN", ev.EventID())
		}
		if _, ok := ev.EnvelopeHeader["sent_at"]; !ok {
			t.Errorf("event %s has no sent_at", ev.EventID())
		}
	}
	if slices.Sort(got); !slices.Equal(got, sortedCopy(ids)) {
		t.Fatalf("events %v, want each of %v once", got, ids)
	}
	for _, ev := range events {
		if ev.EventID() != ids[0] {
			continue
		}
		ex := ev.Exceptions()
		if len(ex) != 1 || ex[0].Type != "*errors.errorString" || len(ex[0].Frames) != 2 {
			t.Errorf("exception of %s: %+v", ev.EventID(), ex)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 4 || reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("%d requests, first answered %d; want the 429 and three deliveries", len(reqs), reqs[0].Status)
	}
	for _, r := range reqs[1:] {
		if r.Time.Before(reqs[0].Time.Add(time.Second)) {
			t.Errorf("an error envelope was sent %v after the 429, before its rate limit passed", r.Time.Sub(reqs[0].Time))
		}
		if !strings.Contains(r.Header.Get("X-Sentry-Auth"), "sentry_key="+upstreamKey) {
			t.Errorf("X-Sentry-Auth %q", r.Header.Get("X-Sentry-Auth"))
		}
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
