package inflight

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener wraps a net.Listener and keeps at most max connections open: a connection
// accepted beyond that is closed at once (the client sees a reset or EOF, and
// retries), rather than waiting in the kernel's backlog or holding memory.
type Listener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused func()
}

// LimitListener returns l limited to max open connections; refused, if not nil, is
// called for every connection closed for being over the limit.
func LimitListener(l net.Listener, max int, refused func()) *Listener {
	return &Listener{Listener: l, max: int64(max), refused: refused}
}

// Open returns the number of connections open now.
func (l *Listener) Open() int64 { return l.open.Load() }

// Accept returns the next connection within the limit.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: no TIME_WAIT kept for it
			}
			c.Close()
			if l.refused != nil {
				l.refused()
			}
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// conn gives its slot back once when closed.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
