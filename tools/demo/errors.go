package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/outrider-dev/outrider/internal/sentrytest"
)

// goPanic is what a crashing Go service writes to its log.
const goPanic = `panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x10 pc=0x4a1f2c]

goroutine 42 [running]:
shop/payments.(*Client).Charge(0x0, {0xc000120000, 0x24})
	/app/payments/client.go:88 +0x2c
shop/orders.Place({0x7f3c, 0xc0000a6000}, 0xc0000b4000)
	/app/orders/place.go:42 +0x1a5
net/http.HandlerFunc.ServeHTTP(0xc0000a2000, {0x7f3c, 0xc0000a6000}, 0xc0000b4000)
	/usr/local/go/src/net/http/server.go:2220 +0x29
`

// reportWithSDK plays the demo app's Sentry SDK, its DSN pointing at the sidecar: it
// reports one exception inside the failed request's trace.
func reportWithSDK(dsn, traceID, spanID string) error {
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Environment: "demo"})
	if err != nil {
		return err
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	pc, err := sentry.PropagationContextFromHeaders(traceID+"-"+spanID+"-1", "")
	if err != nil {
		return err
	}
	hub.ConfigureScope(func(s *sentry.Scope) {
		s.SetPropagationContext(pc)
		s.SetTag("request_id", "req-demo-payment")
	})
	hub.CaptureException(errors.New("payment declined: card expired"))
	if !hub.Flush(10 * time.Second) {
		return errors.New("the SDK could not send its event to the sidecar")
	}
	return nil
}

// printEvents waits for n events at the Sentry receiver and prints each.
func printEvents(ctx context.Context, srv *sentrytest.Server, n int) error {
	events, err := srv.WaitEvents(ctx, n)
	if err != nil {
		return fmt.Errorf("events at the Sentry receiver: %w (got %d)", err, len(srv.Events()))
	}
	for _, e := range events {
		src, _ := e.Tag("outrider.source")
		exc := e.Exceptions()
		title, frames := e.Message(), 0
		if len(exc) > 0 {
			last := exc[len(exc)-1]
			title, frames = last.Type+": "+last.Value, len(last.Frames)
		}
		contexts, _ := e.Payload["contexts"].(map[string]any)
		_, links := contexts["grafana"]
		fmt.Printf("    from %-4s  %-60.60s  frames=%-2d trace_id=%s links=%t\n", src, title, frames, e.TraceID(), links)
	}
	if errs := srv.Errors(); len(errs) > 0 {
		return fmt.Errorf("the Sentry receiver refused what it got: %v", errs)
	}
	return nil
}
