package otlp

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // clients may send gzip-compressed requests
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/outrider-dev/outrider/agent/pipeline"
	"github.com/outrider-dev/outrider/internal/grpcraw"
)

// The OTLP services are registered by hand over a pass-through codec, so that a
// request that does not decode is answered INVALID_ARGUMENT with the reason (gRPC's
// own decoding would say INTERNAL) and the receiver controls every decode.
var (
	traceServiceDesc = grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				buf := grpcBodyPool.Get().(*[]byte)
				defer putGRPCBody(buf)
				if err := dec(buf); err != nil {
					return nil, err
				}
				return srv.(*Receiver).exportTracesGRPC(ctx, *buf)
			},
		}},
		Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
	}
	logsServiceDesc = grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.logs.v1.LogsService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				buf := grpcBodyPool.Get().(*[]byte)
				defer putGRPCBody(buf)
				if err := dec(buf); err != nil {
					return nil, err
				}
				return srv.(*Receiver).exportLogsGRPC(ctx, *buf)
			},
		}},
		Metadata: "opentelemetry/proto/collector/logs/v1/logs_service.proto",
	}
)

// grpcBodyPool holds request buffers; decoding copies what it keeps.
var grpcBodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func putGRPCBody(b *[]byte) {
	if cap(*b) <= maxPooledEntry {
		*b = (*b)[:0]
		grpcBodyPool.Put(b)
	}
}

func (r *Receiver) newGRPCServer() *grpc.Server {
	s := grpc.NewServer(
		grpc.ForceServerCodecV2(grpcraw.Codec{}),
		grpc.MaxRecvMsgSize(int(r.cfg.MaxRequestBytes)),
	)
	s.RegisterService(&traceServiceDesc, r)
	s.RegisterService(&logsServiceDesc, r)
	return s
}

func (r *Receiver) exportTracesGRPC(ctx context.Context, in []byte) (any, error) {
	if o, ok := r.consumeTracesProto(ctx, in, "grpc"); ok {
		if o.err != nil {
			return nil, r.grpcStatus(o.err)
		}
		return emptyResponse, nil
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

// emptyResponse is the serialized ExportTraceServiceResponse without partial success.
var emptyResponse = []byte{}

// grpcStatus maps a refusal to its gRPC status: a full queue is RESOURCE_EXHAUSTED
// with RetryInfo (which OTLP clients need to retry it), a failed store UNAVAILABLE.
func (r *Receiver) grpcStatus(err error) error {
	switch {
	case errors.Is(err, errNoTraces), errors.Is(err, errNoLogs):
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
