package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// exportMethod is the OTLP trace service's one RPC.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// spanAttrs is how many attributes each generated span carries.
const spanAttrs = 10

// resourcesPerRequest is how many resources (services) each request holds.
const resourcesPerRequest = 2

// buildRequest returns an OTLP trace export request of n spans, split over two
// resources, each span with spanAttrs HTTP-server attributes: what an instrumented
// web service sends. rng picks the IDs and values.
func buildRequest(rng *rand.Rand, n int, now time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	services := [resourcesPerRequest]string{"checkout", "catalog"}
	for r := range resourcesPerRequest {
		count := n / resourcesPerRequest
		if r == 0 {
			count += n % resourcesPerRequest
		}
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", services[r])
		ra.PutStr("service.namespace", "shop")
		ra.PutStr("service.version", "1.42."+strconv.Itoa(r))
		ra.PutStr("deployment.environment.name", "production")
		ra.PutStr("k8s.namespace.name", "shop")
		ra.PutStr("k8s.pod.name", services[r]+"-7d9f8b6c5-"+strconv.Itoa(rng.IntN(100000)))
		ra.PutStr("host.name", "node-"+strconv.Itoa(rng.IntN(64)))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		ss.Scope().SetVersion("0.63.0")
		spans := ss.Spans()
		spans.EnsureCapacity(count)
		var traceID pcommon.TraceID
		var parent pcommon.SpanID
		for i := range count {
			sp := spans.AppendEmpty()
			if i%5 == 0 { // five spans per trace: a server span and four children
				fillRandom(rng, traceID[:])
				parent = pcommon.SpanID{}
			}
			var id pcommon.SpanID
			fillRandom(rng, id[:])
			sp.SetTraceID(traceID)
			sp.SetSpanID(id)
			sp.SetParentSpanID(parent)
			route := routes[rng.IntN(len(routes))]
			code := int64(200)
			if rng.IntN(50) == 0 {
				code = 500
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("internal server error")
			}
			if parent.IsEmpty() {
				sp.SetKind(ptrace.SpanKindServer)
				parent = id
			} else {
				sp.SetKind(ptrace.SpanKindClient)
			}
			sp.SetName(route.method + " " + route.route)
			start := now.Add(-time.Duration(rng.IntN(1000)) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(1+rng.IntN(250_000)) * time.Microsecond)))
			a := sp.Attributes()
			a.EnsureCapacity(spanAttrs)
			a.PutStr("http.request.method", route.method)
			a.PutStr("http.route", route.route)
			a.PutStr("url.path", route.path(rng))
			a.PutStr("url.scheme", "https")
			a.PutStr("server.address", services[r]+".shop.svc.cluster.local")
			a.PutInt("server.port", 8443)
			a.PutInt("http.response.status_code", code)
			a.PutStr("network.protocol.version", "1.1")
			a.PutStr("client.address", "10.42."+strconv.Itoa(rng.IntN(256))+"."+strconv.Itoa(rng.IntN(256)))
			a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
		}
	}
	return td
}

type route struct{ method, route, prefix string }

func (r route) path(rng *rand.Rand) string {
	if r.prefix == "" {
		return r.route
	}
	return r.prefix + strconv.Itoa(rng.IntN(1_000_000))
}

var routes = []route{
	{"GET", "/api/v1/products/{id}", "/api/v1/products/"},
	{"GET", "/api/v1/products", ""},
	{"POST", "/api/v1/cart/{id}/items", "/api/v1/cart/"},
	{"GET", "/api/v1/users/{id}", "/api/v1/users/"},
	{"POST", "/api/v1/checkout", ""},
	{"GET", "/healthz", ""},
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if b[0] == 0 {
		b[0] = 1 // all-zero IDs are invalid
	}
}

// payload is one marshalled export request and its span count.
type payload struct {
	data  []byte
	spans int
}

// buildPayloads marshals k distinct requests of n spans each.
func buildPayloads(seed uint64, k, n int) ([]payload, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now := time.Now()
	out := make([]payload, k)
	for i := range out {
		td := buildRequest(rng, n, now)
		data, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return nil, fmt.Errorf("marshal a generated request: %w", err)
		}
		out[i] = payload{data: data, spans: n}
	}
	return out, nil
}

// rawCodec sends pre-marshalled request bytes as they are and keeps the response's
// bytes, so the load generator spends no CPU on protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

// Name is "proto": the content type stays application/grpc+proto.
func (rawCodec) Name() string { return "proto" }

// loadStats is what the load generator sent.
type loadStats struct {
	// sent counts spans the system accepted; rejected those it reported as rejected
	// (partial success) or that failed permanently.
	sent, rejected, requests atomic.Int64
	// retries counts requests the system refused with a retryable code and that were
	// sent again.
	retries atomic.Int64
}

// loadConfig sets how spans are sent.
type loadConfig struct {
	endpoint string
	spans    int64
	clients  int
	payloads []payload
	// retryWait is the pause before sending a refused request again.
	retryWait time.Duration
}

// retryable reports whether the OTLP specification says the client may retry.
func retryable(c codes.Code) bool {
	switch c {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
		codes.Unavailable, codes.DataLoss, codes.ResourceExhausted:
		return true
	}
	return false
}

// generate sends cfg.spans spans over cfg.clients gRPC connections, each sending one
// request at a time, and returns when all were sent or ctx ended. A request refused
// with a retryable code is sent again; any other error ends the run.
func generate(ctx context.Context, cfg loadConfig, st *loadStats) error {
	if len(cfg.payloads) == 0 || cfg.payloads[0].spans <= 0 {
		return errors.New("no requests to send")
	}
	per := int64(cfg.payloads[0].spans)
	var next atomic.Int64 // spans claimed by clients so far
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, cfg.clients)
	var wg sync.WaitGroup
	for c := range cfg.clients {
		conn, err := grpc.NewClient(cfg.endpoint,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("connect to %s: %w", cfg.endpoint, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if err := sendLoop(ctx, conn, c, cfg, per, &next, st); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

func sendLoop(ctx context.Context, conn *grpc.ClientConn, client int, cfg loadConfig, per int64, next *atomic.Int64, st *loadStats) error {
	var resp []byte
	for i := client; ; i += cfg.clients {
		claimed := next.Add(per)
		if claimed-per >= cfg.spans {
			return nil
		}
		p := cfg.payloads[i%len(cfg.payloads)]
		if claimed > cfg.spans {
			// The last request of the run: send a smaller one so exactly cfg.spans go.
			short, err := buildPayloads(uint64(i), 1, int(cfg.spans-(claimed-per)))
			if err != nil {
				return err
			}
			p = short[0]
		}
		for {
			err := conn.Invoke(ctx, exportMethod, &p.data, &resp)
			if err == nil {
				rejected, err := rejectedSpans(resp)
				if err != nil {
					return err
				}
				st.requests.Add(1)
				st.rejected.Add(rejected)
				st.sent.Add(int64(p.spans) - rejected)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s, _ := status.FromError(err); !retryable(s.Code()) {
				st.rejected.Add(int64(p.spans))
				return fmt.Errorf("export to %s: %w", cfg.endpoint, err)
			}
			st.retries.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cfg.retryWait):
			}
		}
	}
}

// rejectedSpans reads partial_success.rejected_spans from an export response.
func rejectedSpans(resp []byte) (int64, error) {
	if len(resp) == 0 {
		return 0, nil
	}
	r := ptraceotlp.NewExportResponse()
	if err := r.UnmarshalProto(resp); err != nil {
		return 0, fmt.Errorf("decode the export response: %w", err)
	}
	return r.PartialSuccess().RejectedSpans(), nil
}
