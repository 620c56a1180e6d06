package inflight

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLimiter(t *testing.T) {
	l := New(100, 0)
	a, err := l.Acquire(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(context.Background(), 50); !errors.Is(err, ErrBusy) {
		t.Fatalf("acquire past the limit without waiting: %v, want ErrBusy", err)
	}
	if !a.Resize(100) || a.Bytes() != 100 {
		t.Fatalf("grow to the whole limit: %d", a.Bytes())
	}
	if a.Resize(101) && a.Bytes() != 100 {
		t.Fatalf("a reservation holds more than the limit: %d", a.Bytes())
	}
	if !a.Resize(10) {
		t.Fatal("shrink refused")
	}
	b, ok := l.TryAcquire(90)
	if !ok {
		t.Fatal("the shrunk bytes were not given back")
	}
	if a.Resize(11) {
		t.Fatal("grew past the limit")
	}
	a.Release()
	a.Release() // twice is harmless
	b.Release()
	var nilRes *Reservation
	nilRes.Release()
	c, ok := l.TryAcquire(100)
	if !ok {
		t.Fatal("released bytes were not given back")
	}
	c.Release()
	big, err := l.Acquire(context.Background(), 1<<40)
	if err != nil || big.Bytes() != 100 {
		t.Fatalf("a request larger than the limit takes the whole limit: %v, %d", err, big.Bytes())
	}
	big.Release()
}

func TestLimiterWaits(t *testing.T) {
	l := New(100, 5*time.Second)
	a, _ := l.Acquire(context.Background(), 100)
	time.AfterFunc(50*time.Millisecond, a.Release)
	b, err := l.Acquire(context.Background(), 100)
	if err != nil {
		t.Fatalf("acquire after a release within the wait: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := l.Acquire(ctx, 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("acquire with a cancelled context: %v, want ErrBusy", err)
	}
	b.Release()
	short := New(10, 30*time.Millisecond)
	x, _ := short.Acquire(context.Background(), 10)
	defer x.Release()
	start := time.Now()
	if _, err := short.Acquire(context.Background(), 1); !errors.Is(err, ErrBusy) || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("acquire gave up after %s with %v; want ErrBusy after the wait", time.Since(start), err)
	}
}

func TestListenerClosesExcessConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	ll := LimitListener(ln, 2, func() { refused.Add(1) })
	accepted := make(chan net.Conn, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, c2 := dial(), dial()
	s1, s2 := <-accepted, <-accepted
	// The third is reset: at connect, or at its first read.
	if c3, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c3.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c3.Read(make([]byte, 1)); err == nil || errors.Is(err, errTimeout(err)) {
			t.Fatalf("third connection read: %v, want it closed by the server", err)
		}
		c3.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); refused.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if refused.Load() != 1 || ll.Open() != 2 {
		t.Fatalf("refused %d, open %d; want 1 and 2", refused.Load(), ll.Open())
	}
	s1.Close()
	s1.Close() // twice gives the slot back once
	c4 := dial()
	s4 := <-accepted
	if ll.Open() != 2 {
		t.Fatalf("open %d after a close and a new connection, want 2", ll.Open())
	}
	if _, err := s4.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c4, make([]byte, 1)); err != nil {
		t.Fatalf("the connection that took the freed slot: %v", err)
	}
	for _, c := range []net.Conn{c1, c2, c4, s2, s4} {
		c.Close()
	}
	ln.Close()
	<-done
}

// errTimeout returns err when it is a timeout, so that a read that merely timed out
// (the connection was kept open) fails the test.
func errTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errors.New("not a timeout")
}
