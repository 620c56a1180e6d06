package otlpexporter

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"github.com/outrider-dev/outrider/pipeline"
)

// benchChunks are distinct TraceBatches of 100 spans each, as the OTLP receiver hands
// them over: random IDs, varying timestamps and attribute values, so compression sees
// data like real spans rather than one batch repeated.
func benchChunks(b *testing.B) []pipeline.TraceBatch {
	rng := rand.New(rand.NewPCG(1, 2))
	routes := []string{"/api/orders/{id}", "/api/cart", "/api/users/{id}/profile", "/healthz", "/api/payments"}
	out := make([]pipeline.TraceBatch, 64)
	for n := range out {
		td := makeTraces(fmt.Sprintf("svc-%d", n%4), rng.Uint64(), n*100, 100)
		rs := td.ResourceSpans().At(0)
		rs.Resource().Attributes().PutStr("k8s.pod.name", fmt.Sprintf("checkout-7d9f8b6c4-%05x", rng.IntN(1<<20)))
		rs.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
		spans := rs.ScopeSpans().At(0).Spans()
		for i := range spans.Len() {
			s := spans.At(i)
			var sid pcommon.SpanID
			binary.LittleEndian.PutUint64(sid[:], rng.Uint64())
			s.SetSpanID(sid)
			start := s.StartTimestamp() + pcommon.Timestamp(rng.IntN(1e9))
			s.SetStartTimestamp(start)
			s.SetEndTimestamp(start + pcommon.Timestamp(rng.IntN(5e8)))
			s.Attributes().PutStr("http.request.method", "GET")
			s.Attributes().PutStr("http.route", routes[rng.IntN(len(routes))])
			s.Attributes().PutInt("http.response.status_code", int64([]int{200, 200, 200, 404, 500}[rng.IntN(5)]))
			s.Attributes().PutStr("url.full", fmt.Sprintf("https://shop.example.com/api/orders/%d?expand=items", rng.IntN(1e6)))
			s.Attributes().PutInt("enduser.id", int64(rng.IntN(1e7)))
		}
		out[n] = batch(b, td, nil)
	}
	return out
}

// discardClient builds each request body as the exporter does — the chunks one after
// the other, gzipped through the pooled writer or not — and throws it away.
type discardClient struct {
	gzip bool
	enc  *gzipBuffer
}

func (d *discardClient) push(_ context.Context, chunks []chunk) error {
	if d.gzip {
		if d.enc == nil {
			d.enc = newGzipBuffer()
		}
		_, err := d.enc.compress(chunks)
		return err
	}
	if d.enc == nil {
		d.enc = newGzipBuffer()
	}
	_, err := io.Discard.Write(d.enc.concat(chunks))
	return err
}

func (d *discardClient) close() {}

// runExport exports b.N batches of 100 spans and waits until every one is sent; the
// time per op is per batch of 100 spans.
func runExport(b *testing.B, exp *Exporter, tbs []pipeline.TraceBatch) {
	b.ReportAllocs()
	b.SetBytes(int64(len(tbs[0].Data)))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := exp.ExportTraces(ctx, tbs[i%len(tbs)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := exp.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*tbs[0].Spans)/b.Elapsed().Seconds(), "spans/s")
}

func benchConfig(endpoint, protocol, compression string) Config {
	cfg := testConfig(endpoint, protocol)
	cfg.Compression = compression
	cfg.Batch.MaxWait = time.Second
	cfg.Concurrency = 1
	return cfg
}

// BenchmarkExport measures the exporter's own work per batch of 100 spans: queueing,
// cutting requests of up to 8192 spans, and building their bodies (concatenation,
// gzip on or off), into a push that discards them.
func BenchmarkExport(b *testing.B) {
	tbs := benchChunks(b)
	for _, compression := range []string{CompressionNone, CompressionGzip} {
		b.Run(compression, func(b *testing.B) {
			exp, err := New(benchConfig("http://127.0.0.1:1", ProtocolHTTP, compression), Settings{})
			if err != nil {
				b.Fatal(err)
			}
			exp.client.close()
			exp.client = &discardClient{gzip: compression == CompressionGzip}
			if err := exp.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			runExport(b, exp, tbs)
		})
	}
}

// BenchmarkExportLoopback is BenchmarkExport over a real transport to a loopback
// backend that reads and discards each request (for gRPC, without decoding it; gRPC
// does decompress it, in this process).
func BenchmarkExportLoopback(b *testing.B) {
	tbs := benchChunks(b)
	grpcAddr := discardGRPC(b)
	httpURL := discardHTTP(b)
	for _, proto := range []string{ProtocolGRPC, ProtocolHTTP} {
		for _, compression := range []string{CompressionNone, CompressionGzip} {
			b.Run(proto+"/"+compression, func(b *testing.B) {
				endpoint := "http://" + grpcAddr
				if proto == ProtocolHTTP {
					endpoint = httpURL
				}
				exp, err := New(benchConfig(endpoint, proto, compression), Settings{})
				if err != nil {
					b.Fatal(err)
				}
				if err := exp.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				runExport(b, exp, tbs)
			})
		}
	}
}

// discardGRPC serves every method by reading the raw request and answering an empty
// response.
func discardGRPC(b *testing.B) string {
	srv := grpc.NewServer(grpc.ForceServerCodecV2(discardCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(&struct{}{}); err != nil {
				return err
			}
			return stream.SendMsg(&rawRequest{})
		}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func discardHTTP(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// discardCodec is the benchmark backend's codec: it ignores requests and sends empty
// responses.
type discardCodec struct{ rawCodec }

func (discardCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
