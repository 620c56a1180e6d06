package lokiexporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/pipeline"
)

// UserAgent is sent with every push. The agent sets it to "outrider/<version>" at
// start-up.
var UserAgent = "outrider/dev"

// Settings are what an Exporter needs besides its configuration; Name "" means "loki".
type Settings = exporterhelper.ExporterSettings

// Exporter pushes records to Loki. It is a pipeline.Sink and a pipeline.Component.
type Exporter struct {
	url      string
	tenant   string
	auth     *authorizer
	client   *http.Client
	labels   *labelCache
	encoders chan *encoder // free list, one per worker
	raw      rawBuffer     // shared by the encoders
	sender   *exporterhelper.Sender[pipeline.Record]
	utf8     utf8Fixer
	now      func() time.Time
}

var (
	_ pipeline.Sink      = (*Exporter)(nil)
	_ pipeline.Component = (*Exporter)(nil)
)

// New builds an Exporter from cfg, which gets its defaults applied here.
func New(cfg Config, set Settings) (*Exporter, error) {
	cfg.ApplyDefaults()
	if set.Name == "" {
		set.Name = "loki"
	}
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	u, err := pushURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	tlsCfg, err := cfg.TLS.Load()
	if err != nil {
		return nil, err
	}
	e := &Exporter{
		url:    u,
		tenant: cfg.TenantID,
		auth:   newAuthorizer(&cfg),
		client: exporterhelper.NewHTTPClient(tlsCfg, cfg.Concurrency),
		labels: newLabelCache(cfg.Labels, set.QueueMetrics.InvalidUTF8(set.Name, "label")),
		utf8: utf8Fixer{
			line: set.QueueMetrics.InvalidUTF8(set.Name, "line"),
			meta: set.QueueMetrics.InvalidUTF8(set.Name, "metadata"),
		},
		now: time.Now,
	}
	// A free list rather than a sync.Pool: at most Concurrency pushes run at once, and
	// their multi-megabyte buffers should survive garbage collections.
	e.encoders = make(chan *encoder, cfg.Concurrency)
	qcfg := exporterhelper.Config{Batch: cfg.Batch, Retry: cfg.Retry, Concurrency: cfg.Concurrency, Timeout: cfg.Timeout}
	e.sender, err = exporterhelper.New(qcfg, set.Sender(), exporterhelper.RecordSize, e.push, exporterhelper.WithSplit(e.split))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Start starts the push workers and returns.
func (e *Exporter) Start(ctx context.Context) error { return e.sender.Start(ctx) }

// Shutdown stops accepting batches, pushes what is buffered until ctx is done, and
// closes idle connections. Records not delivered by then are not acknowledged. Safe
// without Start and more than once.
func (e *Exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	e.client.CloseIdleConnections()
	return err
}

// Export implements pipeline.Sink: it blocks while max_pending_bytes are unsent. It
// makes the records' strings valid UTF-8 first (see utf8Fixer).
func (e *Exporter) Export(ctx context.Context, b pipeline.Batch) error {
	for i := range b.Records {
		e.utf8.fix(&b.Records[i])
	}
	return e.sender.Add(ctx, b.Records, b.Ack)
}

// split is the Sender's SplitFunc. Loki refuses a request as a whole for one bad
// record; the parts it returns isolate the records Loki refuses, so that only those
// are dropped. A refusal of whole streams (their labels) splits the request by
// stream, and a part holding one such stream is dropped whole: every record of it is
// refused. Any other refusal splits the request in halves.
func (e *Exporter) split(recs []pipeline.Record, err error) [][]pipeline.Record {
	if !exporterhelper.IsSplittable(err) || len(recs) < 2 {
		return nil
	}
	var sr *streamRejected
	if !errors.As(err, &sr) {
		return exporterhelper.Halves(recs, err)
	}
	var parts [][]pipeline.Record
	index := map[string]int{}
	for _, r := range recs {
		ls := e.labels.get(streamKey{stream: r.Stream, level: r.Level})
		i, ok := index[ls]
		if !ok {
			i = len(parts)
			index[ls] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], r)
	}
	if len(parts) < 2 {
		return nil
	}
	return parts
}

// push sends one request; it is the queue's PushFunc.
func (e *Exporter) push(ctx context.Context, recs []pipeline.Record) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, nil)
	if err != nil {
		return pipeline.Permanent(ReasonBadRequest, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", UserAgent)
	if e.tenant != "" {
		req.Header.Set("X-Scope-OrgID", e.tenant)
	}
	authz, err := e.auth.header()
	if err != nil {
		return pipeline.Retryable(err, 0)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}

	enc := e.getEncoder()
	payload, err := enc.encode(recs, e.now())
	if err != nil {
		e.putEncoder(enc)
		return pipeline.Permanent(ReasonBadRequest, err)
	}
	rb := exporterhelper.NewRequestBody(payload)
	defer func() {
		// The transport may still hold the body after Do returns; reuse the buffers
		// only once it has closed it.
		if rb.Wait() {
			e.putEncoder(enc)
		}
	}()
	req.Body = rb
	req.ContentLength = int64(len(payload))
	resp, err := e.client.Do(req)
	if err != nil {
		return pipeline.Retryable(fmt.Errorf("push to loki: %w", err), 0)
	}
	defer exporterhelper.CloseBody(resp.Body)
	return classify(resp, e.now())
}

func (e *Exporter) getEncoder() *encoder {
	select {
	case enc := <-e.encoders:
		return enc
	default:
		return newEncoder(e.labels, &e.raw)
	}
}

func (e *Exporter) putEncoder(enc *encoder) {
	enc.reset()
	select {
	case e.encoders <- enc:
	default:
	}
}
