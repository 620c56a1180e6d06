package agent

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// listenerPool hands listening sockets from one generation of units to the next, so
// that a reload never closes the OTLP, Sentry or metrics port: a unit's server closes
// its listener on Stop, which only detaches it from the socket; the next unit that
// listens on the same configured address gets the same socket, and connections that
// arrive in between wait in the kernel's accept queue. Sockets no unit took over are
// closed by closeUnused after a reload.
type listenerPool struct {
	mu   sync.Mutex
	open map[string]*pooled // by setting and configured address ("127.0.0.1:0" keeps its port)
}

type pooled struct {
	addr     string
	ln       *net.TCPListener
	attached *poolHandle
	// pending are connections accepted while the handle was being detached; the next
	// handle returns them first.
	pending []net.Conn
}

func newListenerPool() *listenerPool { return &listenerPool{open: map[string]*pooled{}} }

// Listen returns a listener on addr for the setting field: the socket an earlier
// generation listened on for it when there is one, else a new one. Sockets are kept
// by setting and address, so several settings may use port 0.
func (p *listenerPool) Listen(field, addr string) (net.Listener, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := field + " " + addr
	pl := p.open[key]
	if pl == nil {
		// The same fixed address moved to another setting: take its socket.
		if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" && port != "" {
			for k, o := range p.open {
				if o.addr == addr && o.attached == nil {
					pl = o
					delete(p.open, k)
					p.open[key] = o
					break
				}
			}
		}
	}
	if pl == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		tl, ok := ln.(*net.TCPListener)
		if !ok {
			ln.Close()
			return nil, fmt.Errorf("%s is not a TCP address", addr)
		}
		pl = &pooled{addr: addr, ln: tl}
		p.open[key] = pl
	}
	if pl.attached != nil {
		return nil, fmt.Errorf("%s is already served by another listener of this agent; give each listener its own address", addr)
	}
	_ = pl.ln.SetDeadline(time.Time{})
	h := &poolHandle{pool: p, pl: pl}
	pl.attached = h
	return h, nil
}

// closeUnused closes the sockets no unit listens on any more.
func (p *listenerPool) closeUnused() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, pl := range p.open {
		if pl.attached == nil {
			for _, c := range pl.pending {
				c.Close()
			}
			pl.ln.Close()
			delete(p.open, addr)
		}
	}
}

// poolHandle is one unit's use of a pooled socket.
type poolHandle struct {
	pool *listenerPool
	pl   *pooled

	mu       sync.Mutex
	closed   bool
	inAccept sync.WaitGroup
}

// Accept implements net.Listener.
func (h *poolHandle) Accept() (net.Conn, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, net.ErrClosed
	}
	h.inAccept.Add(1)
	h.mu.Unlock()
	defer h.inAccept.Done()
	for {
		h.pool.mu.Lock()
		if n := len(h.pl.pending); n > 0 && h.pl.attached == h {
			c := h.pl.pending[0]
			h.pl.pending = h.pl.pending[1:]
			h.pool.mu.Unlock()
			return c, nil
		}
		h.pool.mu.Unlock()
		c, err := h.pl.ln.Accept()
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			if c != nil {
				h.pool.mu.Lock()
				h.pl.pending = append(h.pl.pending, c)
				h.pool.mu.Unlock()
			}
			return nil, net.ErrClosed
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline left by a detached handle: clear it and go on.
				_ = h.pl.ln.SetDeadline(time.Time{})
				continue
			}
			return nil, err
		}
		return c, nil
	}
}

// Close detaches the handle: its Accept returns net.ErrClosed, the socket stays open
// for the next generation.
func (h *poolHandle) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	_ = h.pl.ln.SetDeadline(time.Now())
	h.inAccept.Wait()
	h.pool.mu.Lock()
	if h.pl.attached == h {
		h.pl.attached = nil
	}
	h.pool.mu.Unlock()
	return nil
}

// Addr implements net.Listener.
func (h *poolHandle) Addr() net.Addr { return h.pl.ln.Addr() }

// closeAll closes every socket (the agent stops).
func (p *listenerPool) closeAll() {
	p.mu.Lock()
	for _, pl := range p.open {
		pl.attached = nil
	}
	p.mu.Unlock()
	p.closeUnused()
}
