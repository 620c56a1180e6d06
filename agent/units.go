package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/outrider-dev/outrider/config"
)

// The agent's units, in dependency order. Each declares the slice of the
// configuration it depends on as a config.Config holding only those fields, and is
// built from that slice alone: a field outside it cannot influence the unit, and a
// change inside it always rebuilds the unit.
const (
	unitServer  = "server"
	unitSecrets = "secrets"
	unitAudit   = "audit"
	unitIntake  = "intake"
	unitGraph   = "graph"
)

// present returns an empty value when p is set: the slice records that an exporter
// exists, not how it is configured.
func present[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return new(T)
}

func serverSlice(c *config.Config) *config.Config {
	return &config.Config{Server: config.Server{Listen: c.Server.Listen, Pprof: c.Server.Pprof}}
}

func secretsSlice(c *config.Config) *config.Config {
	// data_dir holds the lease-state file.
	return &config.Config{Secrets: c.Secrets, DataDir: c.DataDir}
}

func auditSlice(c *config.Config) *config.Config {
	return &config.Config{Identity: c.Identity}
}

func intakeSlice(c *config.Config) *config.Config {
	return &config.Config{
		DataDir:   c.DataDir,
		Identity:  c.Identity,
		Server:    config.Server{ShutdownTimeout: c.Server.ShutdownTimeout},
		Receivers: c.Receivers,
		Queue:     c.Queue,
		Errors:    c.Errors,
		Grafana:   c.Grafana,
		Exporters: config.Exporters{Loki: present(c.Exporters.Loki), OTLP: present(c.Exporters.OTLP), OTLPMetrics: present(c.Exporters.OTLPMetrics), Sentry: present(c.Exporters.Sentry)},
	}
}

func graphSlice(c *config.Config) *config.Config {
	return &config.Config{
		DataDir:   c.DataDir,
		Identity:  c.Identity,
		Server:    config.Server{ShutdownTimeout: c.Server.ShutdownTimeout},
		Logs:      c.Logs,
		Errors:    c.Errors,
		Exporters: c.Exporters,
	}
}

// unitKinds are the agent's units. The graph depends on the intake: its pumps read the
// intake's queues, so a new intake always comes with a new graph (and a rollback
// restores both together).
func (a *Agent) unitKinds() []unitKind {
	kinds := []unitKind{
		defineUnit(unitServer, nil, serverSlice, a.buildServer),
		defineUnit(unitSecrets, nil, secretsSlice, a.buildSecrets),
		defineUnit(unitAudit, nil, auditSlice, a.buildAudit),
		defineUnit(unitIntake, nil, intakeSlice, a.buildIntake),
		defineUnit(unitGraph, []string{unitIntake}, graphSlice, a.buildGraph),
	}
	if a.unitHook != nil {
		for i := range kinds {
			k := kinds[i]
			build := k.build
			kinds[i].build = func(s any) (unit, error) {
				u, err := build(s)
				return a.unitHook(k.name, u, err)
			}
		}
	}
	return kinds
}

// serverUnit serves /metrics, /healthz and /readyz on server.listen.
type serverUnit struct {
	a    *Agent
	addr string
	srv  *http.Server
	done chan struct{}
	err  error
}

func (a *Agent) buildServer(c *config.Config) (unit, error) {
	return &serverUnit{
		a:    a,
		addr: c.Server.Listen,
		srv:  &http.Server{Handler: a.handler(c.Server.Pprof), ReadHeaderTimeout: 5 * time.Second},
		done: make(chan struct{}),
	}, nil
}

func (u *serverUnit) Start(context.Context) error {
	ln, err := u.a.listeners.Listen("server.listen", u.addr)
	if err != nil {
		return fmt.Errorf("server.listen: cannot listen on %s: %w; is another agent using the port?", u.addr, err)
	}
	go func() {
		defer close(u.done)
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			u.err = fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}()
	if u.a.opts.OnListen != nil {
		u.a.opts.OnListen(ln.Addr().String())
	}
	u.a.serverAddr.Store(ln.Addr().String())
	return nil
}

func (u *serverUnit) Stop(ctx context.Context) error {
	err := u.srv.Shutdown(ctx)
	if err != nil {
		u.srv.Close()
	}
	<-u.done
	return err
}

func (u *serverUnit) Exited() <-chan struct{} { return u.done }
func (u *serverUnit) Err() error              { return u.err }

// secretsUnit runs the secrets syncer. It alone owns the lease-state file; a
// replaced syncer hands its leases to its successor (secrets.Syncer.HandOver).
type secretsUnit struct {
	a *Agent
	r *syncerRun
}

func (a *Agent) buildSecrets(c *config.Config) (unit, error) {
	r, err := a.newSyncer(c.Secrets, c.DataDir)
	if err != nil || r == nil {
		return nil, err
	}
	return &secretsUnit{a: a, r: r}, nil
}

// TakeOver implements successor: the leases prev held or had still to revoke become
// this syncer's to revoke.
func (u *secretsUnit) TakeOver(prev unit) {
	if p, ok := prev.(*secretsUnit); ok {
		p.r.s.HandOver(u.r.s)
	}
}

// Start starts the syncer. At the agent's start it waits for the first render (at
// most firstRenderWait), so that a log backlog read next is scrubbed of the values
// the syncer registers; on a reload the previous values stay registered instead.
func (u *secretsUnit) Start(ctx context.Context) error {
	u.r.start()
	u.a.syncer.Store(u.r)
	if u.a.running.Load() {
		return nil
	}
	if err := u.a.waitFirstRender(ctx, u.r); err != nil {
		u.a.syncer.CompareAndSwap(u.r, nil)
		_ = u.r.stop()
		u.a.retireOwners(u.r)
		return err
	}
	return nil
}

// Stop stops the syncer; its values stay registered for scrubbing for a while, since
// the application may still use them.
func (u *secretsUnit) Stop(context.Context) error {
	u.a.syncer.CompareAndSwap(u.r, nil)
	err := u.r.stop()
	u.a.retireOwners(u.r)
	return err
}

func (u *secretsUnit) Exited() <-chan struct{} { return u.r.done }
func (u *secretsUnit) Err() error              { return u.r.err }

// Explain implements explainer: which secret files are not rendered yet and why.
func (u *secretsUnit) Explain() (bool, string) {
	if u.r.s.Ready() {
		return true, fmt.Sprintf("%d secret files rendered", len(u.r.cfg.Files))
	}
	return false, u.a.audit.secretsStatus(u.r.cfg)
}

// auditUnit runs the audit stream: it hands audit events to the current graph's
// log and trace exporters.
type auditUnit struct {
	a        *Agent
	labels   map[string]string
	resource map[string]string
	cancel   context.CancelFunc
	done     chan struct{}
}

func (a *Agent) buildAudit(c *config.Config) (unit, error) {
	return &auditUnit{a: a, labels: c.Identity.Labels(), resource: c.Identity.ResourceAttributes(), done: make(chan struct{})}, nil
}

func (u *auditUnit) Start(context.Context) error {
	u.a.audit.setIdentity(u.labels, u.resource)
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	go func() { defer close(u.done); u.a.audit.run(ctx) }()
	return nil
}

func (u *auditUnit) Stop(ctx context.Context) error {
	u.cancel()
	select {
	case <-u.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit stream: %w", ctx.Err())
	}
}

// intakeUnit is the receivers and their durable queues.
type intakeUnit struct {
	a   *Agent
	cfg *config.Config
	in  *intake
}

func (a *Agent) buildIntake(c *config.Config) (unit, error) {
	if !wantsIntake(c) {
		return nil, nil
	}
	return &intakeUnit{a: a, cfg: c}, nil
}

// Start opens the queues and serves the receivers on the sockets handed over by the
// previous intake, if any.
func (u *intakeUnit) Start(ctx context.Context) error {
	in, err := openIntake(u.cfg, u.a.metrics, u.a.scrub, u.a.logger, u.a.listeners.Listen)
	if err != nil {
		return err
	}
	if err := in.start(ctx); err != nil {
		return errors.Join(err, in.closeQueues())
	}
	u.in = in
	u.a.setIntake(in)
	return nil
}

// Stop closes the listeners (the sockets stay with the pool) once the requests in
// progress are answered, then closes the queues: what was not delivered stays on
// disk for the next intake.
func (u *intakeUnit) Stop(ctx context.Context) error {
	if u.a.current.Load() == u.in {
		u.a.setIntake(nil)
	}
	return errors.Join(u.in.stopReceiving(ctx), u.in.closeQueues())
}

// graphUnit is one pipeline graph: exporters, log sources and the pumps of the
// intake's queues.
type graphUnit struct {
	a      *Agent
	g      *graph
	exited chan struct{}
	once   sync.Once
}

func (a *Agent) buildGraph(c *config.Config) (unit, error) {
	g, err := buildGraph(c, a.metrics, a.scrub, a.logger, a.errorTarget)
	if err != nil {
		return nil, err
	}
	return &graphUnit{a: a, g: g, exited: make(chan struct{})}, nil
}

func (u *graphUnit) Start(ctx context.Context) error {
	if err := u.g.start(ctx, u.a.logger, u.a.current.Load()); err != nil {
		return err
	}
	u.a.audit.setSink(u.g.logSink, u.g.traceSink)
	u.a.graphInfo.Store(&graphInfo{sources: len(u.g.sources), exporters: len(u.g.exporters)})
	go func() {
		<-u.g.sourcesDone()
		if u.g.sourceErr() != nil {
			u.once.Do(func() { close(u.exited) })
		}
	}()
	return nil
}

// Discard shuts down the exporters of a graph that was built and never started.
func (u *graphUnit) Discard() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, e := range u.g.exporters {
		_ = e.Shutdown(ctx)
	}
}

func (u *graphUnit) Stop(context.Context) error {
	u.a.audit.setSink(nil, nil)
	return u.g.stop(u.a.logger)
}

// Exited is closed when a source failed; sources without errors returning (a graph
// with nothing to read) is not an exit.
func (u *graphUnit) Exited() <-chan struct{} { return u.exited }
func (u *graphUnit) Err() error              { return u.g.sourceErr() }

// graphInfo is what the agent logs about the running graph.
type graphInfo struct{ sources, exporters int }

// listenFunc opens a listener for a setting; see listenerPool.Listen.
type listenFunc func(field, addr string) (net.Listener, error)
