package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrider-dev/outrider/pipeline"
	"github.com/outrider-dev/outrider/secrets"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// auditSource is the source label of the audit stream in Loki.
const auditSource = "outrider-audit"

// auditLog records audit events in the agent's own log and, when a log sink is set, as
// records of their own stream (source="outrider-audit") so that an SRE sees rotations
// next to the application's errors; when a trace sink is set (tracing is on), also as
// spans with the event as a span event (see auditSpans). Record never blocks: events
// wait in bounded buffers, and when one is full the oldest are dropped and counted.
type auditLog struct {
	logger  *slog.Logger
	stream  *pipeline.Stream
	dropped prometheus.Counter

	mu       sync.Mutex
	buf      []pipeline.Record
	spanBuf  []audit.Event
	sink     pipeline.Sink
	traces   pipeline.TraceSink
	resource map[string]string
	wake     chan struct{}
	// renders are the last render event of each secret file, and auth the last
	// login event, for /readyz to say why a file is not there yet.
	renders map[string]audit.Event
	auth    audit.Event
}

// auditBuffer bounds the events waiting to be exported.
const auditBuffer = 1024

func newAuditLog(logger *slog.Logger, identity map[string]string, dropped prometheus.Counter) *auditLog {
	a := &auditLog{
		logger:  logger.With("component", "audit"),
		dropped: dropped,
		wake:    make(chan struct{}, 1),
	}
	a.setIdentity(identity, nil)
	return a
}

// setIdentity sets the labels of the audit stream (the application's identity and
// source="outrider-audit") and the resource attributes of audit spans.
func (a *auditLog) setIdentity(identity, resource map[string]string) {
	labels := map[string]string{"source": auditSource}
	for k, v := range identity {
		labels[k] = v
	}
	a.mu.Lock()
	a.stream = pipeline.NewStream(labels)
	a.resource = resource
	a.mu.Unlock()
}

var _ audit.Sink = (*auditLog)(nil)

// Record logs e and queues it for the log sink.
func (a *auditLog) Record(e audit.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	level := slog.LevelInfo
	if e.Outcome != "" && e.Outcome != "ok" {
		level = slog.LevelWarn
	}
	a.logger.LogAttrs(context.Background(), level, "audit", e.Attrs()...)

	line, err := json.Marshal(auditLine(e))
	if err != nil {
		return
	}
	rec := pipeline.Record{Time: e.Time, Line: string(line), Level: pipeline.LevelInfo}
	if level != slog.LevelInfo {
		rec.Level = pipeline.LevelWarn
	}
	a.mu.Lock()
	switch e.Kind {
	case audit.KindRender:
		if a.renders == nil {
			a.renders = map[string]audit.Event{}
		}
		a.renders[e.Path] = e
	case audit.KindAuth:
		a.auth = e
	}
	rec.Stream = a.stream
	if len(a.buf) >= auditBuffer {
		copy(a.buf, a.buf[1:])
		a.buf = a.buf[:len(a.buf)-1]
		a.dropped.Inc()
	}
	a.buf = append(a.buf, rec)
	if a.traces != nil {
		if len(a.spanBuf) >= auditBuffer {
			copy(a.spanBuf, a.spanBuf[1:])
			a.spanBuf = a.spanBuf[:len(a.spanBuf)-1]
			a.dropped.Inc()
		}
		a.spanBuf = append(a.spanBuf, e)
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// setSink points the audit stream at the current graph's log sink (nil: the agent's
// log only) and trace sink (nil: no audit spans).
func (a *auditLog) setSink(s pipeline.Sink, traces pipeline.TraceSink) {
	a.mu.Lock()
	a.sink, a.traces = s, traces
	if traces == nil {
		a.spanBuf = nil
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run hands queued events to the sink until ctx is done.
func (a *auditLog) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		a.mu.Lock()
		sink, recs := a.sink, a.buf
		traces, events, resource := a.traces, a.spanBuf, a.resource
		a.spanBuf = nil
		if sink == nil || len(recs) == 0 {
			recs = nil
		} else {
			a.buf = nil
		}
		a.mu.Unlock()
		if traces != nil && len(events) > 0 {
			a.exportSpans(ctx, traces, events, resource)
		}
		if recs == nil {
			continue
		}
		if err := sink.Export(ctx, pipeline.Batch{Records: recs}); err != nil {
			a.mu.Lock()
			a.buf = append(recs, a.buf...)
			if n := len(a.buf) - auditBuffer; n > 0 {
				a.buf = a.buf[n:]
				a.dropped.Add(float64(n))
			}
			a.mu.Unlock()
		}
	}
}

// auditLine is the JSON form of an event in Loki.
func auditLine(e audit.Event) map[string]any {
	m := map[string]any{"kind": string(e.Kind), "outcome": e.Outcome}
	for k, v := range map[string]string{"path": e.Path, "lease_id": e.LeaseID, "error": e.Error, "detail": e.Detail} {
		if v != "" {
			m[k] = v
		}
	}
	if e.Version != 0 {
		m["version"] = e.Version
	}
	if e.TTL != 0 {
		m["ttl"] = e.TTL.String()
	}
	if e.Duration != 0 {
		m["duration"] = e.Duration.String()
	}
	return m
}

// secretsStatus says which of cfg's files have not been rendered yet and the last
// error of each (never a value: audit events hold none), and the last login error.
func (a *auditLog) secretsStatus(cfg secrets.Config) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var parts []string
	if a.auth.Outcome != "" && a.auth.Outcome != "ok" {
		parts = append(parts, "vault login failed: "+a.auth.Error)
	}
	for _, f := range cfg.Files {
		e, ok := a.renders[f.Path]
		switch {
		case !ok:
			parts = append(parts, f.Path+": not rendered yet")
		case e.Outcome != "ok":
			parts = append(parts, f.Path+": "+e.Error)
		}
	}
	if len(parts) == 0 {
		return "waiting for the first render"
	}
	return strings.Join(parts, "; ")
}
