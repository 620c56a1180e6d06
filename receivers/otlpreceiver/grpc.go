package otlpreceiver

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // clients may send gzip-compressed requests
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/outrider-dev/outrider/internal/grpcraw"
	"github.com/outrider-dev/outrider/internal/inflight"
	"github.com/outrider-dev/outrider/pipeline"
)

// The OTLP services are registered by hand over a pass-through codec, so that a
// request that does not decode is answered INVALID_ARGUMENT with the reason (gRPC's
// own decoding would say INTERNAL) and the receiver controls every decode.
var (
	traceServiceDesc = exportService("opentelemetry.proto.collector.trace.v1.TraceService",
		"opentelemetry/proto/collector/trace/v1/trace_service.proto", (*Receiver).exportTracesGRPC)
	logsServiceDesc = exportService("opentelemetry.proto.collector.logs.v1.LogsService",
		"opentelemetry/proto/collector/logs/v1/logs_service.proto", (*Receiver).exportLogsGRPC)
	metricsServiceDesc = exportService("opentelemetry.proto.collector.metrics.v1.MetricsService",
		"opentelemetry/proto/collector/metrics/v1/metrics_service.proto", (*Receiver).exportMetricsGRPC)
)

// exportService describes an OTLP service whose one method, Export, hands the raw
// request to export.
func exportService(name, metadata string, export func(*Receiver, context.Context, []byte) (any, error)) grpc.ServiceDesc {
	return grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var msg mem.BufferSlice
				if err := dec(&msg); err != nil {
					return nil, err
				}
				defer msg.Free()
				if len(msg) == 1 {
					return export(srv.(*Receiver), ctx, msg[0].ReadOnlyData())
				}
				buf := grpcBodyPool.Get().(*[]byte)
				defer putGRPCBody(buf)
				*buf = sized(*buf, msg.Len())[:msg.Len()]
				msg.CopyTo(*buf)
				return export(srv.(*Receiver), ctx, *buf)
			},
		}},
		Metadata: metadata,
	}
}

// bodyCodec is grpcraw.Codec receiving into a *mem.BufferSlice: the handler gets
// the message in the buffers gRPC read it into, with a reference of its own that it
// frees once the request is answered. A message that came in one HTTP/2 frame (16
// KiB) is one buffer and is read where it is; a larger or decompressed one is
// several, which the handler joins in a buffer of grpcBodyPool.
type bodyCodec struct{ grpcraw.Codec }

// Unmarshal implements encoding.CodecV2.
func (c bodyCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if p, ok := v.(*mem.BufferSlice); ok {
		data.Ref()
		*p = data
		return nil
	}
	return c.Codec.Unmarshal(data, v)
}

// grpcBodyPool holds request buffers; decoding copies what it keeps.
var grpcBodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func putGRPCBody(b *[]byte) {
	if cap(*b) <= maxPooledEntry {
		*b = (*b)[:0]
		grpcBodyPool.Put(b)
	}
}

// maxConcurrentStreams bounds the requests in progress on one gRPC connection;
// further ones wait in the client.
const maxConcurrentStreams = 16

// grpcBufferPool is the gRPC servers' buffer pool (a request's frames are read into
// its buffers). gRPC's default pool clears every buffer it hands out: for a 51 KB
// export, four 16 KiB frame buffers, 2% of the agent's CPU on make bench-traces.
// gRPC writes every byte of a buffer it reads into before anything reads it (a
// frame's payload is read in full), so this pool hands buffers out as they were
// put back.
var grpcBufferPool dirtyPool

// dirtyPool is a mem.BufferPool of buffers in a few sizes, as gRPC's default, that
// does not clear them.
type dirtyPool struct {
	tiers [len(dirtyPoolSizes)]sync.Pool
}

// dirtyPoolSizes are the buffer capacities pooled, as in gRPC's default pool.
var dirtyPoolSizes = [...]int{256, 4 << 10, 16 << 10, 32 << 10, 1 << 20}

// Get implements mem.BufferPool.
func (p *dirtyPool) Get(length int) *[]byte {
	for i, size := range dirtyPoolSizes {
		if length <= size {
			if b, ok := p.tiers[i].Get().(*[]byte); ok {
				*b = (*b)[:length]
				return b
			}
			b := make([]byte, length, size)
			return &b
		}
	}
	b := make([]byte, length)
	return &b
}

// Put implements mem.BufferPool; a buffer of a capacity not pooled is dropped.
func (p *dirtyPool) Put(b *[]byte) {
	for i, size := range dirtyPoolSizes {
		if cap(*b) == size {
			p.tiers[i].Put(b)
			return
		}
	}
}

// grpcStreamWorkers is how many goroutines serve streams and are kept between them
// (gRPC starts a goroutine for a stream when all are busy). A goroutine per stream
// grew its stack, copying it, on nearly every export: 7% of the agent's user-space
// instructions on make bench-traces.
const grpcStreamWorkers = 4

// grpcReadBufferSize is each connection's read buffer: with gRPC's 32 KiB, a 51 KB
// export took two reads besides the one that finds the socket empty.
const grpcReadBufferSize = 64 << 10

func (r *Receiver) newGRPCServer() *grpc.Server {
	s := grpc.NewServer(
		grpc.ForceServerCodecV2(bodyCodec{}),
		grpc.MaxRecvMsgSize(int(r.cfg.MaxRequestBytes)),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.ConnectionTimeout(r.cfg.HeaderTimeout()),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: r.cfg.IdleTimeout,
			Time:              time.Minute,
			Timeout:           20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ReadBufferSize(grpcReadBufferSize),
		grpc.NumStreamWorkers(grpcStreamWorkers),
		experimental.BufferPool(&grpcBufferPool),
		grpc.InTapHandle(r.tapGRPC),
	)
	s.RegisterService(&traceServiceDesc, r)
	s.RegisterService(&logsServiceDesc, r)
	s.RegisterService(&metricsServiceDesc, r)
	return s
}

// grpcAdmission is what tapGRPC gives a request: its reservation and the timer
// that cancels it when the message takes longer than read_timeout to arrive.
type grpcAdmission struct {
	res   *inflight.Reservation
	timer *time.Timer
}

type admissionKey struct{}

// grpcUpfrontFactor times max_request_bytes is what a gRPC export reserves before its
// message is read: gRPC holds the whole message (its length prefix is checked
// against max_request_bytes, then its frames are kept as they arrive), and a
// compressed one is decompressed, up to the same limit, before the handler sees it. Once the message is in, the reservation is resized to what this message
// takes (costFactor times its size, plus the decoding estimate on the pdata path),
// so that the full reservation is held only while a message arrives and two streams
// may be arriving at once.
const grpcUpfrontFactor = 2

// tapGRPC runs before a new stream is read: an export reserves grpcUpfrontFactor
// times max_request_bytes, since the size is not known yet, or is refused with
// RESOURCE_EXHAUSTED and a retry delay. It runs on the connection's reader, so it
// never waits. The reservation is released when the stream ends, whatever ends it.
func (r *Receiver) tapGRPC(ctx context.Context, info *tap.Info) (context.Context, error) {
	var k Kind
	switch info.FullMethodName {
	case "/" + traceServiceDesc.ServiceName + "/Export":
		k = KindTraces
	case "/" + logsServiceDesc.ServiceName + "/Export":
		k = KindLogs
	case "/" + metricsServiceDesc.ServiceName + "/Export":
		k = KindMetrics
	default:
		return ctx, nil
	}
	res, ok := r.lim.TryAcquire(min(grpcUpfrontFactor*int64(r.cfg.MaxRequestBytes), r.lim.Max()))
	if !ok {
		r.m.requests.WithLabelValues(k.String(), "grpc", resultBusy).Inc()
		return nil, withRetryInfo(codes.ResourceExhausted, r.busyRefusal().msg, r.retryAfter)
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &grpcAdmission{res: res, timer: time.AfterFunc(r.cfg.ReadTimeout, cancel)}
	context.AfterFunc(ctx, func() { a.timer.Stop(); res.Release() })
	return context.WithValue(ctx, admissionKey{}, a), nil
}

// received returns the admission tapGRPC gave the stream of ctx, now that its
// message has arrived.
func received(ctx context.Context) (*grpcAdmission, error) {
	a, _ := ctx.Value(admissionKey{}).(*grpcAdmission)
	if a == nil {
		return nil, status.Error(codes.Internal, "the request did not pass the receiver's admission (tapGRPC)")
	}
	a.timer.Stop()
	return a, nil
}

// admitGRPC checks a received message against the limits; the error is the status
// to answer.
func (r *Receiver) admitGRPC(a *grpcAdmission, in []byte, k Kind) error {
	ref := r.admit(in, k, false, a.res)
	if ref == nil {
		return nil
	}
	res := resultInvalid
	var err error
	switch ref.kind {
	case refuseInvalid:
		err = status.Error(codes.InvalidArgument, ref.msg)
	case refuseTooDeep:
		res, err = resultTooDeep, status.Error(codes.InvalidArgument, ref.msg)
	case refuseTooLarge:
		res, err = resultTooLarge, status.Error(codes.ResourceExhausted, ref.msg)
	default:
		res, err = resultBusy, withRetryInfo(codes.ResourceExhausted, ref.msg, r.retryAfter)
	}
	r.m.requests.WithLabelValues(k.String(), "grpc", res).Inc()
	return err
}

func (r *Receiver) exportTracesGRPC(ctx context.Context, in []byte) (any, error) {
	a, err := received(ctx)
	if err != nil {
		return nil, err
	}
	scanned := false
	if !r.fastBoundsDepth() {
		if err := r.admitGRPC(a, in, KindTraces); err != nil {
			return nil, err
		}
		scanned = true
	} else if !a.res.Resize(costFactor * int64(len(in))) {
		// What the fast path holds (the message and its queue entry); the pdata
		// path below resizes again to its decoding estimate.
		r.m.requests.WithLabelValues(KindTraces.String(), "grpc", resultBusy).Inc()
		return nil, withRetryInfo(codes.ResourceExhausted, r.busyRefusal().msg, r.retryAfter)
	}
	if o, ok := r.consumeTracesProto(ctx, in, "grpc"); ok {
		if o.err != nil {
			return nil, r.grpcStatus(o.err)
		}
		return emptyResponse, nil
	}
	if !scanned {
		if err := r.admitGRPC(a, in, KindTraces); err != nil {
			return nil, err
		}
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(in); err != nil {
		r.m.requests.WithLabelValues("traces", "grpc", resultInvalid).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "cannot decode the OTLP traces request: %v", err)
	}
	o := r.consumeTraces(ctx, req.Traces(), "grpc")
	if o.err != nil {
		return nil, r.grpcStatus(o.err)
	}
	resp := ptraceotlp.NewExportResponse()
	if o.rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(o.rejected))
		resp.PartialSuccess().SetErrorMessage(o.message)
	}
	return resp.MarshalProto()
}

func (r *Receiver) exportLogsGRPC(ctx context.Context, in []byte) (any, error) {
	a, err := received(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.admitGRPC(a, in, KindLogs); err != nil {
		return nil, err
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(in); err != nil {
		r.m.requests.WithLabelValues("logs", "grpc", resultInvalid).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "cannot decode the OTLP logs request: %v", err)
	}
	o := r.consumeLogs(ctx, req.Logs(), "grpc")
	if o.err != nil {
		return nil, r.grpcStatus(o.err)
	}
	return plogotlp.NewExportResponse().MarshalProto()
}

func (r *Receiver) exportMetricsGRPC(ctx context.Context, in []byte) (any, error) {
	a, err := received(ctx)
	if err != nil {
		return nil, err
	}
	if r.metrics == nil {
		r.m.requests.WithLabelValues("metrics", "grpc", resultInvalid).Inc()
		return nil, r.grpcStatus(errNoMetrics)
	}
	if err := r.admitGRPC(a, in, KindMetrics); err != nil {
		return nil, err
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(in); err != nil {
		r.m.requests.WithLabelValues("metrics", "grpc", resultInvalid).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "cannot decode the OTLP metrics request: %v", err)
	}
	o := r.consumeMetrics(ctx, req.Metrics(), "grpc")
	if o.err != nil {
		return nil, r.grpcStatus(o.err)
	}
	return metricsResponse(o).MarshalProto()
}

// emptyResponse is the serialized ExportTraceServiceResponse without partial success.
var emptyResponse = []byte{}

// grpcStatus maps a refusal to its gRPC status: a full queue is RESOURCE_EXHAUSTED
// with RetryInfo (which OTLP clients need to retry it), a failed store UNAVAILABLE.
func (r *Receiver) grpcStatus(err error) error {
	switch {
	case noExporter(err):
		return status.Error(codes.Unimplemented, err.Error())
	case errors.Is(err, pipeline.ErrFull):
		return withRetryInfo(codes.ResourceExhausted, "outrider's queue is full; retry later: "+err.Error(), r.retryAfter)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.Canceled, err.Error())
	}
	return withRetryInfo(codes.Unavailable, "outrider could not store the request; retry: "+err.Error(), time.Second)
}

func withRetryInfo(c codes.Code, msg string, after time.Duration) error {
	st, err := status.New(c, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)})
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}
