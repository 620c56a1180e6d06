package sentryreceiver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/outrider-dev/outrider/pipeline"
)

func sdkDSN(r *Receiver) string {
	return fmt.Sprintf("http://%s@%s/42", testKey, r.Addr())
}

// TestSentryGoSDK sends errors with the real sentry-go SDK and checks what the queue
// got (Flush reports success even when the server refused the events).
func TestSentryGoSDK(t *testing.T) {
	q := &memQueue{}
	r := startReceiver(t, testConfig(), Settings{Queue: q, Process: func(ev map[string]any) bool {
		ev["tags"] = map[string]any{"outrider.pod": "web-1"}
		return true
	}})
	if err := sentry.Init(sentry.ClientOptions{Dsn: sdkDSN(r), Release: "shop@1.2.3", Environment: "test"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sentry.CurrentHub().Client().Close(); sentry.CurrentHub().BindClient(nil) })

	excID := sentry.CaptureException(errors.New("payment declined: <card> & co"))
	msgID := sentry.CaptureMessage("cache warmed")
	if excID == nil || msgID == nil {
		t.Fatal("the SDK did not capture")
	}
	sentry.Flush(5 * time.Second)

	evs := q.events(t)
	if len(evs) != 2 {
		t.Fatalf("queue got %d events, want 2", len(evs))
	}
	byID := map[string]map[string]any{}
	for _, ev := range evs {
		byID[ev["event_id"].(string)] = ev
		if tags, _ := ev["tags"].(map[string]any); tags["outrider.pod"] != "web-1" {
			t.Errorf("event not processed: tags %v", ev["tags"])
		}
		if ev["release"] != "shop@1.2.3" || ev["platform"] != "go" {
			t.Errorf("event lost SDK fields: %v", ev)
		}
	}
	exc := byID[string(*excID)]
	if exc == nil {
		t.Fatalf("no event with the exception's id %s", *excID)
	}
	excs, _ := exc["exception"].([]any) // sentry-go sends the bare-array form
	if len(excs) != 1 || excs[0].(map[string]any)["value"] != "payment declined: <card> & co" {
		t.Errorf("exception %v", exc["exception"])
	}
	if msg := byID[string(*msgID)]; msg == nil || msg["message"] != "cache warmed" {
		t.Errorf("message event %v", msg)
	}
	if got := counter(r.m.requests.WithLabelValues("envelope", "ok")); got != 2 {
		t.Errorf("ok requests %v, want 2", got)
	}
}

// TestSentryGoBacksOffWhenQueueFull checks that the 429 a full queue answers makes the
// real SDK hold back every category for Retry-After.
func TestSentryGoBacksOffWhenQueueFull(t *testing.T) {
	q := &memQueue{err: fmt.Errorf("sentry queue: %w", pipeline.ErrFull)}
	r := startReceiver(t, testConfig(), Settings{Queue: q, RetryAfter: time.Minute})
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: sdkDSN(r), EnableTracing: true, TracesSampleRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hub := sentry.NewHub(client, sentry.NewScope())
	hub.CaptureMessage("refused: queue full")
	hub.Flush(5 * time.Second)
	if got := counter(r.m.requests.WithLabelValues("envelope", "full")); got != 1 {
		t.Fatalf("full requests %v, want 1", got)
	}

	q.setErr(nil)
	hub.CaptureException(errors.New("held back"))
	tx := sentry.StartTransaction(sentry.SetHubOnContext(context.Background(), hub), "GET /held-back")
	tx.Finish()
	hub.Flush(5 * time.Second)
	for _, env := range q.envelopes(t) {
		for _, it := range env.Items {
			if it.Type == "event" || it.Type == "transaction" {
				t.Fatalf("the SDK sent a %s during the back-off: %s", it.Type, it.Payload)
			}
		}
	}
	if got := counter(r.m.Events("sdk", EventAccepted)); got != 0 {
		t.Errorf("%v events accepted during the back-off", got)
	}
}
