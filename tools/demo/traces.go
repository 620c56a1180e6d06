package main

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/outrider-dev/outrider/internal/jaegertest"
)

// sendTraces plays the demo app's OpenTelemetry SDK: it sends n traces (a request span
// with four children: cache, two queries, payment) over OTLP/gRPC to the agent at addr,
// one of them failing with the API key in an attribute. It returns the trace IDs.
func sendTraces(ctx context.Context, addr string, n int) ([]string, error) {
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tr := tp.Tracer("demo-shop")
	ids := make([]string, 0, n)
	for i := range n {
		rctx, root := tr.Start(ctx, "POST /api/orders")
		root.SetAttributes(attribute.String("http.request.method", "POST"), attribute.Int("order", i))
		for _, name := range []string{"cache.get", "db.select orders", "db.insert order", "payments.charge"} {
			_, child := tr.Start(rctx, name)
			if i == n/2 && name == "payments.charge" {
				child.SetAttributes(attribute.String("payments.request", "Authorization: Bearer "+demoAPIKey))
				child.SetStatus(codes.Error, "payment declined")
			}
			child.End()
		}
		root.End()
		ids = append(ids, root.SpanContext().TraceID().String())
	}
	if err := tp.Shutdown(ctx); err != nil {
		return nil, fmt.Errorf("the SDK could not export to the agent: %w", err)
	}
	return ids, nil
}

// tracesArrived counts the spans of ids in Jaeger and returns the failed trace's
// payment span attribute as stored.
func tracesArrived(ctx context.Context, j *jaegertest.Jaeger, ids []string) (spans int, stored string, err error) {
	for i, id := range ids {
		got, err := j.WaitForTrace(ctx, id, 5)
		if err != nil {
			return spans, stored, err
		}
		spans += len(got)
		if i == len(ids)/2 {
			for _, s := range got {
				if v, ok := s.Attributes["payments.request"]; ok {
					stored = v
				}
			}
		}
	}
	return spans, stored, nil
}
