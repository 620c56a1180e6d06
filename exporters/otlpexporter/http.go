package otlpexporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/pipeline"
)

// maxResponseBody is how much of a response body is read: an
// ExportTraceServiceResponse or an error status is far smaller.
const maxResponseBody = 64 << 10

// gzipLevel is the compression level of requests, over HTTP and gRPC: the fastest,
// which costs little in size on span data and much less CPU than the default level.
const gzipLevel = gzip.BestSpeed

// httpClient posts requests as OTLP/HTTP protobuf bodies: the chunks' bytes as they
// are, or gzip-compressed through a pooled writer into a pooled buffer.
type httpClient struct {
	creds    *headerFiles
	url      string
	header   http.Header
	gzip     bool
	client   *http.Client
	encoders chan *gzipBuffer // free list, one per worker
	warn     func(string)
	now      func() time.Time
	sig      *signal
}

func newHTTPClient(cfg *Config, ep endpoint, sig *signal, warn func(string)) (*httpClient, error) {
	tlsCfg, err := cfg.TLS.LoadFor(ep.host())
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		h.Set(k, v.Reveal())
	}
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("User-Agent", UserAgent)
	if cfg.Compression == CompressionGzip {
		h.Set("Content-Encoding", "gzip")
	}
	return &httpClient{
		creds:  newHeaderFiles(cfg),
		url:    ep.url,
		header: h,
		gzip:   cfg.Compression == CompressionGzip,
		client: exporterhelper.NewHTTPClient(tlsCfg, cfg.Concurrency),
		// A free list rather than a sync.Pool: at most Concurrency requests are built at
		// once, and their megabyte buffers should survive garbage collections.
		encoders: make(chan *gzipBuffer, cfg.Concurrency),
		warn:     warn,
		now:      time.Now,
		sig:      sig,
	}, nil
}

func (c *httpClient) push(ctx context.Context, chunks []chunk) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, nil)
	if err != nil {
		return fmt.Errorf("build request for %s: %w", c.url, err)
	}
	req.Header = c.header.Clone()
	if err := c.creds.apply(req.Header.Set); err != nil {
		return pipeline.Retryable(err, 0)
	}
	// The body is built in a buffer of the client's, compressed or not: net/http may
	// still read a body after Do returns, and the chunks are the caller's again once
	// the request is acknowledged (the queue reuses their memory).
	enc := c.getEncoder()
	var payload []byte
	if c.gzip {
		payload, err = enc.compress(chunks)
	} else {
		payload = enc.concat(chunks)
	}
	if err != nil {
		c.putEncoder(enc)
		return fmt.Errorf("compress request: %w", err)
	}
	b := exporterhelper.NewRequestBody(payload)
	defer func() {
		// Reuse the buffer only once the transport has closed the body.
		if b.Wait() {
			c.putEncoder(enc)
		}
	}()
	req.Body, req.ContentLength = b, int64(len(payload))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
	resp, err := c.client.Do(req)
	if err != nil {
		return classifyTransport(fmt.Errorf("export to %s: %w", c.url, err))
	}
	defer exporterhelper.CloseBody(resp.Body)
	body, cut, rerr := exporterhelper.ReadBody(resp.Body, maxResponseBody)
	if rerr != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The status says the spans arrived; only the partial-success report is lost.
		body, cut = nil, false
	}
	err = c.sig.classifyHTTP(resp.StatusCode, resp.Header, body, cut, c.url, c.now(), c.warn)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		err = c.creds.refused(err)
	}
	return err
}

func (c *httpClient) close() { c.client.CloseIdleConnections() }

func (c *httpClient) getEncoder() *gzipBuffer {
	select {
	case enc := <-c.encoders:
		return enc
	default:
		return newGzipBuffer()
	}
}

func (c *httpClient) putEncoder(enc *gzipBuffer) {
	if enc.buf.Cap() > maxPooledBuffer {
		return
	}
	select {
	case c.encoders <- enc:
	default:
	}
}

// maxPooledBuffer keeps an unusually large compressed request's buffer out of the free
// list, so one burst does not pin its memory.
const maxPooledBuffer = 16 << 20

// gzipBuffer is a reusable gzip writer and its output buffer.
type gzipBuffer struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

func newGzipBuffer() *gzipBuffer {
	g := &gzipBuffer{}
	g.zw, _ = gzip.NewWriterLevel(&g.buf, gzipLevel) // the level is valid
	return g
}

// compress gzips the chunks' bytes one after the other; the result is valid until the
// next compress.
func (g *gzipBuffer) compress(chunks []chunk) ([]byte, error) {
	g.buf.Reset()
	g.zw.Reset(&g.buf)
	for _, c := range chunks {
		if _, err := g.zw.Write(c.data); err != nil {
			return nil, err
		}
	}
	if err := g.zw.Close(); err != nil {
		return nil, err
	}
	return g.buf.Bytes(), nil
}

// concat copies the chunks' bytes one after the other into the buffer; the result is
// valid until the next compress or concat.
func (g *gzipBuffer) concat(chunks []chunk) []byte {
	g.buf.Reset()
	for _, c := range chunks {
		g.buf.Write(c.data)
	}
	return g.buf.Bytes()
}
