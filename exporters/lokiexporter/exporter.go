package lokiexporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/memtrim"
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
	sender   *exporterhelper.Sender[chunk]
	// chunkMax is the most bytes a chunk of several records holds.
	chunkMax int
	utf8     utf8Fixer
	meta     *metaPolicy
	metrics  *Metrics
	now      func() time.Time
	// unhook unregisters dropBuffers from memtrim; set by Start.
	unhook func()
}

var (
	_ pipeline.Sink      = (*Exporter)(nil)
	_ pipeline.Component = (*Exporter)(nil)
)

// New builds an Exporter from cfg, which gets its defaults applied here.
func New(cfg Config, set Settings, opts ...Option) (*Exporter, error) {
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
	tlsCfg, err := cfg.TLS.LoadFor(hostOf(u))
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
	for _, o := range opts {
		o(e)
	}
	if e.metrics == nil {
		e.metrics = NewMetrics(nil)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e.meta = &metaPolicy{
		mode:  cfg.StructuredMetadata,
		log:   log.With("exporter", set.Name),
		gauge: e.metrics.disallowed.WithLabelValues(set.Name),
	}
	e.meta.gauge.Set(0)
	// A free list rather than a sync.Pool: at most Concurrency pushes run at once, and
	// their multi-megabyte buffers should survive garbage collections.
	e.encoders = make(chan *encoder, cfg.Concurrency)
	qcfg := exporterhelper.Config{Batch: cfg.Batch, Retry: cfg.Retry, Concurrency: cfg.Concurrency, Timeout: cfg.Timeout}
	e.chunkMax = max(int(cfg.Batch.MaxBytes)/16, 1)
	e.sender, err = exporterhelper.New(qcfg, set.Sender(), chunkBytes, e.push,
		exporterhelper.WithRecordCount(chunkRecords, 0), exporterhelper.WithSplit(e.split))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Start starts the push workers and returns.
func (e *Exporter) Start(ctx context.Context) error {
	e.unhook = memtrim.OnRelease(e.dropBuffers)
	return e.sender.Start(ctx)
}

// Shutdown stops accepting batches, pushes what is buffered until ctx is done, and
// closes idle connections. Records not delivered by then are not acknowledged. Safe
// without Start and more than once.
func (e *Exporter) Shutdown(ctx context.Context) error {
	err := e.sender.Shutdown(ctx)
	e.client.CloseIdleConnections()
	if e.unhook != nil {
		e.unhook()
	}
	return err
}

// Export implements pipeline.Sink: it blocks while max_pending_bytes are unsent. It
// makes the records' strings valid UTF-8 first (see utf8Fixer). The requests refer to
// b's records (chunk) until they acknowledge b.
func (e *Exporter) Export(ctx context.Context, b pipeline.Batch) error {
	var seen metaSeen
	for i := range b.Records {
		e.utf8.fixSeen(&b.Records[i], &seen)
	}
	return e.sender.Add(ctx, appendChunks(nil, b.Records, e.chunkMax), b.Ack)
}

// split is the Sender's SplitFunc. Loki refuses a request as a whole for one bad
// record; the parts it returns isolate the records Loki refuses, so that only those
// are dropped. A refusal of whole streams (their labels) splits the request by
// stream, and a part holding one such stream is dropped whole: every record of it is
// refused. Any other refusal splits the request in halves.
func (e *Exporter) split(chunks []chunk, err error) [][]chunk {
	if !exporterhelper.IsSplittable(err) || countRecords(chunks) < 2 {
		return nil
	}
	var sr *streamRejected
	if !errors.As(err, &sr) {
		if len(chunks) == 1 {
			recs := chunks[0].recs
			mid := len(recs) / 2
			return [][]chunk{
				appendChunks(nil, recs[:mid:mid], e.chunkMax),
				appendChunks(nil, recs[mid:], e.chunkMax),
			}
		}
		return exporterhelper.Halves(chunks, err)
	}
	var parts [][]pipeline.Record
	index := map[string]int{}
	for _, c := range chunks {
		for _, r := range c.recs {
			ls := e.labels.get(streamKey{stream: r.Stream, level: r.Level})
			i, ok := index[ls]
			if !ok {
				i = len(parts)
				index[ls] = i
				parts = append(parts, nil)
			}
			parts[i] = append(parts[i], r)
		}
	}
	if len(parts) < 2 {
		return nil
	}
	out := make([][]chunk, len(parts))
	for i, p := range parts {
		out[i] = appendChunks(nil, p, e.chunkMax)
	}
	return out
}

// push sends one request; it is the queue's PushFunc. With structured_metadata auto,
// a request Loki refuses for its structured metadata is sent again at once: the
// entries that carried some, with their IDs in the line (see resend).
func (e *Exporter) push(ctx context.Context, chunks []chunk) error {
	strip := e.meta.strip(e.now())
	err := e.send(ctx, chunks, strip)
	if strip {
		return err
	}
	var mr *metadataRefused
	if !errors.As(err, &mr) {
		if err == nil || pipeline.RejectedCount(err) > 0 {
			e.acceptedMetadata(chunks)
		}
		return err
	}
	if e.meta.mode != StructuredMetadataAuto {
		return fmt.Errorf("%w; loki does not allow structured metadata: set exporters.loki.structured_metadata to auto or off, "+
			"or set limits_config.allow_structured_metadata: true in Loki", err)
	}
	e.meta.refused(e.now())
	return e.resend(ctx, chunks, mr)
}

// acceptedMetadata tells the policy that Loki stored a request, when some of its
// entries carried structured metadata.
func (e *Exporter) acceptedMetadata(chunks []chunk) {
	for _, c := range chunks {
		for i := range c.recs {
			if hasMetadata(&c.recs[i]) {
				e.meta.accepted()
				return
			}
		}
	}
}

// resend sends again, without structured metadata, the entries of recs that Loki
// refused for carrying it (mr), and returns the outcome of the whole request. Loki
// checks an entry's timestamp and size before its metadata, so of the entries that
// carried metadata, those not refused for it were refused for another reason; the
// entries without metadata that Loki refused are the other refusals less those. When
// Loki's answer cannot be read that closely (it refused whole streams, or said
// something unknown), every entry is sent again without structured metadata by a
// retry: those Loki stored are sent identical (labels, timestamp, line), which Loki
// ignores as duplicates.
func (e *Exporter) resend(ctx context.Context, chunks []chunk, mr *metadataRefused) error {
	if mr.r.stream || mr.r.unknown {
		return pipeline.Retryable(fmt.Errorf("loki refused structured metadata; sending the request again without it: %w", mr.err), 0)
	}
	var withMeta []pipeline.Record
	for _, c := range chunks {
		for i := range c.recs {
			if hasMetadata(&c.recs[i]) {
				withMeta = append(withMeta, c.recs[i])
			}
		}
	}
	reason, _ := pipeline.IsPermanent(mr.err)
	othersWithout := max(0, mr.r.entries-len(withMeta))
	err := e.send(ctx, []chunk{{recs: withMeta}}, true)
	switch {
	case err == nil:
		if othersWithout > 0 {
			return pipeline.PartlyRejected(reason, othersWithout, mr.err)
		}
		return nil
	case exporterhelper.IsSplittable(err):
		// The Sender splits the whole request and sends its parts without structured
		// metadata; Loki ignores the entries it stored as duplicates.
		return err
	}
	reason2, permanent := pipeline.IsPermanent(err)
	if !permanent {
		return err
	}
	dropped := pipeline.RejectedCount(err)
	if dropped <= 0 || dropped > len(withMeta) {
		dropped = len(withMeta)
	}
	dropped += othersWithout
	if dropped >= countRecords(chunks) {
		return pipeline.Permanent(reason2, err)
	}
	return pipeline.PartlyRejected(reason2, dropped, err)
}

// send encodes the records of chunks, with or without structured metadata, and pushes
// them.
func (e *Exporter) send(ctx context.Context, chunks []chunk, strip bool) error {
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
	payload, err := enc.encodeChunks(chunks, e.now(), strip)
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
		return pipeline.Retryable(e.auth.transport(fmt.Errorf("push to loki: %w", err)), 0)
	}
	defer exporterhelper.CloseBody(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return e.auth.refused(classify(resp, e.now()))
	}
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

// dropBuffers lets go of the idle encoders and the shared buffer, which the agent
// returns to the kernel once it is quiet after a burst (memtrim.OnRelease); encoders
// in use are left alone, and the next request allocates what it needs.
func (e *Exporter) dropBuffers() {
	for {
		select {
		case <-e.encoders:
		default:
			e.raw.mu.Lock()
			e.raw.buf = nil
			e.raw.mu.Unlock()
			return
		}
	}
}

func (e *Exporter) putEncoder(enc *encoder) {
	enc.reset()
	select {
	case e.encoders <- enc:
	default:
	}
}

// Entry is what the exporter sends to Loki for one record.
type Entry struct {
	// Labels are the labels of the record's stream as sent, e.g. {level="error",
	// service="shop", source="app"}.
	Labels string
	// Line is the line as sent.
	Line string
	// Metadata is the entry's structured metadata; empty when it is not sent.
	Metadata []pipeline.Label
}

// Preview returns what the exporter would send for r now, sending nothing: r's
// strings made valid UTF-8, its stream's labels, its structured metadata, and its
// line, which holds the IDs when structured metadata is not sent (structured_metadata
// off, or auto while Loki refuses it).
func (e *Exporter) Preview(r pipeline.Record) Entry {
	r.Metadata = slices.Clone(r.Metadata)
	e.utf8.fix(&r)
	out := Entry{Labels: e.labels.get(streamKey{stream: r.Stream, level: r.Level}), Line: r.Line}
	if e.meta.strip(e.now()) {
		out.Line = lineWithIDs(&r)
		return out
	}
	for _, m := range appendMetadata(nil, &r) {
		out.Metadata = append(out.Metadata, pipeline.Label{Name: m.Name, Value: m.Value})
	}
	return out
}
