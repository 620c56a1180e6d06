package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // a system may compress despite its configuration
	"google.golang.org/grpc/status"

	"github.com/outrider-dev/outrider/tools/bench/internal/spancount"
)

// sinkMaxRecvBytes bounds one request the sink accepts: far above any batch a system
// sends (the collector's default batch of 8,192 spans is ~5 MB).
const sinkMaxRecvBytes = 256 << 20

// countingSink is an OTLP/gRPC trace receiver that counts the spans it is sent and
// answers success. It walks the protobuf wire format instead of decoding it into
// pdata (which would cost ~10x more CPU in the benchmark process, CPU the measured
// system would not get on a small machine). It records when the running span count
// first reached the target.
type countingSink struct {
	target int64
	// wantAttrs is the attribute count every span should carry (0: do not check).
	wantAttrs int

	spans, requests, wrongAttrs atomic.Int64

	mu       sync.Mutex
	last     time.Time
	reached  time.Time
	done     chan struct{}
	doneOnce sync.Once

	srv  *grpc.Server
	lis  net.Listener
	serr chan error
}

// sinkCounts is a snapshot of what the sink counted.
type sinkCounts struct {
	// Spans and Requests are what arrived; WrongAttrs counts spans that arrived
	// without the attribute count the load generator gave them.
	Spans, Requests, WrongAttrs int64
	// Last is when the latest request arrived; Reached when the span count first
	// reached the target (zero if it has not).
	Last, Reached time.Time
}

// newCountingSink makes a sink that closes Done once target spans arrived.
func newCountingSink(target int64, wantAttrs int) *countingSink {
	return &countingSink{target: target, wantAttrs: wantAttrs, done: make(chan struct{})}
}

// export counts the spans of one serialized ExportTraceServiceRequest.
func (s *countingSink) export(req []byte) error {
	n, wrong, err := spancount.Count(req, s.wantAttrs)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "counting sink: %v", err)
	}
	now := time.Now()
	s.requests.Add(1)
	if wrong > 0 {
		s.wrongAttrs.Add(wrong)
	}
	total := s.spans.Add(n)
	s.mu.Lock()
	if now.After(s.last) {
		s.last = now
	}
	if total >= s.target && s.reached.IsZero() {
		s.reached = now
	}
	s.mu.Unlock()
	if total >= s.target {
		s.doneOnce.Do(func() { close(s.done) })
	}
	return nil
}

// Done is closed once the target span count arrived.
func (s *countingSink) Done() <-chan struct{} { return s.done }

// Counts returns what arrived so far.
func (s *countingSink) Counts() sinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkCounts{
		Spans:      s.spans.Load(),
		Requests:   s.requests.Load(),
		WrongAttrs: s.wrongAttrs.Load(),
		Last:       s.last,
		Reached:    s.reached,
	}
}

// rawTraceServer is what traceServiceDesc dispatches to.
type rawTraceServer interface {
	export(req []byte) error
}

// traceServiceDesc is the OTLP TraceService with its request left serialized (the
// server uses rawCodec).
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*rawTraceServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req []byte
			if err := dec(&req); err != nil {
				return nil, err
			}
			if err := srv.(rawTraceServer).export(req); err != nil {
				return nil, err
			}
			resp := []byte{} // an empty ExportTraceServiceResponse: full success
			return &resp, nil
		},
	}},
}

// Serve starts the gRPC server on a free 127.0.0.1 port.
func (s *countingSink) Serve() error {
	srv, lis, serr, err := serveRaw(s)
	if err != nil {
		return fmt.Errorf("counting sink: %w", err)
	}
	s.srv, s.lis, s.serr = srv, lis, serr
	return nil
}

// serveRaw serves impl as the OTLP TraceService on a free 127.0.0.1 port; the channel
// reports Serve's result once the server stopped.
func serveRaw(impl rawTraceServer) (*grpc.Server, net.Listener, chan error, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listen: %w", err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(sinkMaxRecvBytes), grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&traceServiceDesc, impl)
	serr := make(chan error, 1)
	go func() { serr <- srv.Serve(lis) }()
	return srv, lis, serr, nil
}

// Addr is the sink's host:port.
func (s *countingSink) Addr() string { return s.lis.Addr().String() }

// Close stops the server, ending open calls after a short grace.
func (s *countingSink) Close() error {
	if s.srv == nil {
		return nil
	}
	stopped := make(chan struct{})
	go func() { s.srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.srv.Stop()
		<-stopped
	}
	return <-s.serr
}
