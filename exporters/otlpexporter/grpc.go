package otlpexporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outrider-dev/outrider/pipeline"
)

// init sets gRPC's gzip compressor to its fastest level. gRPC has one gzip compressor
// per process and takes its level only at initialization; the default level costs
// about 1.6 times the CPU of the fastest for a few percent of size on span data, and
// compressing is most of what this exporter does. It changes nothing for
// decompression, so the agent's OTLP receiver is unaffected.
func init() {
	if err := gzip.SetLevel(gzipLevel); err != nil {
		panic(err)
	}
}

// grpcWriteBuffer is the connection's write buffer; see newGRPCClient.
const grpcWriteBuffer = 256 << 10

// grpcClient sends requests with the signal's Export method, passing the chunks' bytes to
// gRPC as they are (rawCodec): no decoding, no re-encoding, no copy.
type grpcClient struct {
	conn   *grpc.ClientConn
	target string
	md     metadata.MD
	opts   []grpc.CallOption
	warn   func(string)
	sig    *signal
	creds  *headerFiles
}

func newGRPCClient(cfg *Config, ep endpoint, sig *signal, warn func(string)) (*grpcClient, error) {
	creds := insecure.NewCredentials()
	if ep.tls {
		tc, err := cfg.TLS.LoadFor(ep.host())
		if err != nil {
			return nil, err
		}
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(ep.target,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(UserAgent),
		// A request is a batch of up to batch.max_bytes; gRPC's default 32 KiB write
		// buffer costs a write call per two 16 KiB frames. The buffer is shared (gRPC's
		// default): returned to its pool whenever the connection has nothing to write.
		grpc.WithWriteBufferSize(grpcWriteBuffer),
		// Reconnect as patiently as the retries: after an outage, the first retry past
		// the backend's return should find the connection ready.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  cfg.Retry.InitialInterval,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   cfg.Retry.MaxInterval,
			},
			MinConnectTimeout: min(cfg.Timeout, 20*time.Second),
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	c := &grpcClient{creds: newHeaderFiles(cfg), conn: conn, target: ep.target, warn: warn, sig: sig,
		opts: []grpc.CallOption{grpc.ForceCodecV2(rawCodec{})}}
	if cfg.Compression == CompressionGzip {
		c.opts = append(c.opts, grpc.UseCompressor(gzip.Name))
	}
	if len(cfg.Headers) > 0 {
		c.md = metadata.MD{}
		for k, v := range cfg.Headers {
			c.md.Set(k, v.Reveal()) // Set lower-cases the key, as gRPC requires
		}
	}
	return c, nil
}

func (c *grpcClient) push(ctx context.Context, chunks []chunk) error {
	md := c.md
	if len(c.creds.files) > 0 {
		md = c.md.Copy()
		if md == nil {
			md = metadata.MD{}
		}
		if err := c.creds.apply(func(k, v string) { md.Set(k, v) }); err != nil {
			return pipeline.Retryable(err, 0)
		}
	}
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	req := rawRequest{chunks: chunks}
	var resp rawResponse
	if err := c.conn.Invoke(ctx, c.sig.method, &req, &resp, c.opts...); err != nil {
		cerr := c.sig.classifyGRPC(err, c.target)
		if code := status.Code(err); code == codes.Unauthenticated || code == codes.PermissionDenied {
			cerr = c.creds.refused(cerr)
		}
		return cerr
	}
	return c.sig.partialSuccess(resp.data, c.target, c.warn)
}

func (c *grpcClient) close() { _ = c.conn.Close() }

// rawRequest is what rawCodec marshals: the chunks of one request.
type rawRequest struct{ chunks []chunk }

// rawResponse is what rawCodec unmarshals into: the response's bytes.
type rawResponse struct{ data []byte }

// rawCodec passes bytes through. Marshal hands gRPC the request's chunks as a
// BufferSlice of their own memory: gRPC writes (or compresses) them one after the
// other, which on the wire is the concatenated request. The chunks are never changed,
// and gRPC's references to them keep them alive as long as it needs them.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*rawRequest)
	if !ok {
		return nil, fmt.Errorf("otlp raw codec: cannot marshal %T", v)
	}
	out := make(mem.BufferSlice, 0, len(req.chunks))
	for _, c := range req.chunks {
		if len(c.data) > 0 {
			out = append(out, mem.SliceBuffer(c.data))
		}
	}
	return out, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	resp, ok := v.(*rawResponse)
	if !ok {
		return errors.New("otlp raw codec: cannot unmarshal into anything but a raw response")
	}
	if data.Len() > 0 {
		resp.data = data.Materialize()
	}
	return nil
}

// Name is "proto": the content-subtype the backend expects, as the bytes are protobuf.
func (rawCodec) Name() string { return "proto" }
