package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/config"
)

// world is what the test units share: the listener pool, a "disk" that one queue
// unit at a time may own (like a durable queue's directory), and the leases taken.
type world struct {
	t    *testing.T
	pool *listenerPool

	mu     sync.Mutex
	events []string
	faults map[string]string // "kind@version" → build, rebuild (all but the first), start or hang
	builds map[string]int
	hang   chan struct{} // closed to let hanging Stops return
	owner  *queueUnit    // the unit that owns the disk
	disk   []string      // items stored
	lost   int           // items appended while no unit owned the disk
	taken  []string      // every lease ever taken
}

func (w *world) event(format string, args ...any) {
	w.mu.Lock()
	w.events = append(w.events, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

func (w *world) fault(kind, version string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.faults[kind+"@"+version]
}

// built counts a build of kind@version and reports whether it must fail.
func (w *world) buildFails(kind, version string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.builds == nil {
		w.builds = map[string]int{}
	}
	w.builds[kind+"@"+version]++
	switch w.faults[kind+"@"+version] {
	case "build":
		return true
	case "rebuild":
		return w.builds[kind+"@"+version] > 1
	}
	return false
}

// append stores an item through the unit that owns the disk.
func (w *world) append(item string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.owner == nil {
		w.lost++
		return
	}
	w.disk = append(w.disk, item)
}

// cfgV is a test configuration: identity.service is the version every test unit
// depends on; server.listen is the port unit's address.
func cfgV(version, listen string) *config.Config {
	return &config.Config{Identity: config.Identity{Service: version}, Server: config.Server{Listen: listen}, DataDir: "d"}
}

func (w *world) kinds() []unitKind {
	type slice struct{ version, addr string }
	return []unitKind{
		defineUnit("leases", nil, func(c *config.Config) slice { return slice{version: c.Identity.Service} },
			func(s slice) (unit, error) {
				if w.buildFails("leases", s.version) {
					return nil, errors.New("leases: cannot build")
				}
				return &leaseUnit{w: w, version: s.version}, nil
			}),
		defineUnit("port", nil, func(c *config.Config) slice { return slice{version: c.Identity.Service, addr: c.Server.Listen} },
			func(s slice) (unit, error) {
				if w.buildFails("port", s.version) {
					return nil, errors.New("port: cannot build")
				}
				return &portUnit{w: w, version: s.version, addr: s.addr}, nil
			}),
		defineUnit("queue", []string{"port"}, func(c *config.Config) slice { return slice{version: c.Identity.Service} },
			func(s slice) (unit, error) { return &queueUnit{w: w, version: s.version}, nil }),
	}
}

// leaseUnit models the syncer: it takes a lease when it starts and hands the
// leases it holds to its successor.
type leaseUnit struct {
	w       *world
	version string
	held    []string
}

func (u *leaseUnit) TakeOver(prev unit) {
	p := prev.(*leaseUnit)
	u.held = append(u.held, p.held...)
	p.held = nil
	u.w.event("takeover leases@%s from %s", u.version, p.version)
}

func (u *leaseUnit) Start(context.Context) error {
	if u.w.fault("leases", u.version) == "start" {
		return errors.New("leases: cannot start")
	}
	u.w.mu.Lock()
	l := fmt.Sprintf("L-%s-%d", u.version, len(u.w.taken))
	u.w.taken = append(u.w.taken, l)
	u.w.mu.Unlock()
	u.held = append(u.held, l)
	u.w.event("start leases@%s", u.version)
	return nil
}

func (u *leaseUnit) Stop(context.Context) error {
	u.w.event("stop leases@%s", u.version)
	return nil
}

// portUnit models a receiver: it serves its version on a pooled socket.
type portUnit struct {
	w       *world
	version string
	addr    string
	srv     *http.Server
	done    chan struct{}
	bound   string
}

func (u *portUnit) Start(context.Context) error {
	if u.w.fault("port", u.version) == "start" {
		return errors.New("port: cannot start")
	}
	ln, err := u.w.pool.Listen("port", u.addr)
	if err != nil {
		return err
	}
	u.bound = ln.Addr().String()
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, u.version) })}
	u.done = make(chan struct{})
	go func() { defer close(u.done); _ = u.srv.Serve(ln) }()
	u.w.event("start port@%s", u.version)
	return nil
}

func (u *portUnit) Stop(ctx context.Context) error {
	err := u.srv.Shutdown(ctx)
	<-u.done
	u.w.event("stop port@%s", u.version)
	return err
}

// queueUnit models the intake and graph: one unit at a time owns the disk; a second
// cannot start while the first holds it.
type queueUnit struct {
	w       *world
	version string
}

func (u *queueUnit) Start(context.Context) error {
	if u.w.fault("queue", u.version) == "start" {
		return errors.New("queue: cannot start")
	}
	u.w.mu.Lock()
	defer u.w.mu.Unlock()
	if u.w.owner != nil {
		return fmt.Errorf("queue: the disk is still owned by queue@%s", u.w.owner.version)
	}
	u.w.owner = u
	u.w.events = append(u.w.events, "start queue@"+u.version)
	return nil
}

func (u *queueUnit) Stop(ctx context.Context) error {
	if u.w.fault("queue", u.version) == "hang" {
		<-u.w.hang
	}
	u.w.mu.Lock()
	defer u.w.mu.Unlock()
	if u.w.owner == u {
		u.w.owner = nil
	}
	u.w.events = append(u.w.events, "stop queue@"+u.version)
	return nil
}

// get returns what the port answers, or the error.
func get1(addr string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// dialer dials addr until stopped and counts refusals: the port must never close.
func dialer(addr string) (stop func() (dials, refused int)) {
	var d, r atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			d.Add(1)
			if err != nil {
				r.Add(1)
			} else {
				c.Close()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() (int, int) { close(done); <-stopped; return int(d.Load()), int(r.Load()) }
}

// TestSupervisorReloadPaths injects a fault into each step of a reload and checks
// what must always hold: the port never closes, no item is lost, every lease taken
// is held by the running lease unit, and the running units form one generation.
func TestSupervisorReloadPaths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults map[string]string
		// want is the version each unit runs afterwards ("" for the hung one).
		want       map[string]string
		rejected   bool
		rolledBack bool
		wedged     string
		// restoreFails: a previous unit cannot be rebuilt; it is reported failed and
		// its port may close.
		restoreFails string
		// events that must appear, in this order, among all the reload's events.
		events []string
	}{
		{
			name: "success", want: map[string]string{"leases": "v2", "port": "v2", "queue": "v2"},
			events: []string{"stop queue@v1", "stop port@v1", "stop leases@v1", "takeover leases@v2 from v1", "start leases@v2", "start port@v2", "start queue@v2"},
		},
		{
			name: "build fails", faults: map[string]string{"leases@v2": "build"}, rejected: true,
			want: map[string]string{"leases": "v1", "port": "v1", "queue": "v1"},
		},
		{
			name: "start fails", faults: map[string]string{"queue@v2": "start"}, rolledBack: true,
			want: map[string]string{"leases": "v1", "port": "v1", "queue": "v1"},
			events: []string{"stop queue@v1", "stop leases@v1", "start leases@v2", "start port@v2",
				"stop port@v2", "stop leases@v2", "takeover leases@v1 from v2", "start leases@v1", "start port@v1", "start queue@v1"},
		},
		{
			name: "first start fails", faults: map[string]string{"leases@v2": "start"}, rolledBack: true,
			want:   map[string]string{"leases": "v1", "port": "v1", "queue": "v1"},
			events: []string{"stop leases@v1", "takeover leases@v2 from v1", "takeover leases@v1 from v2", "start leases@v1", "start port@v1", "start queue@v1"},
		},
		{
			name: "start fails and a previous unit cannot be rebuilt", faults: map[string]string{"queue@v2": "start", "port@v1": "rebuild"},
			rolledBack: true, restoreFails: "port",
			want: map[string]string{"leases": "v1", "queue": "v1"},
		},
		{
			name: "stop hangs", faults: map[string]string{"queue@v1": "hang"}, rolledBack: true, wedged: "queue",
			want: map[string]string{"leases": "v1", "port": "v1", "queue": "v1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{t: t, pool: newListenerPool(), faults: tc.faults, hang: make(chan struct{})}
			defer w.pool.closeAll()
			sup, err := newSupervisor(w.kinds(), discard())
			if err != nil {
				t.Fatal(err)
			}
			sup.stopTimeout = 200 * time.Millisecond
			sup.afterSwap = w.pool.closeUnused
			ctx := context.Background()
			if err := sup.Start(ctx, cfgV("v1", "127.0.0.1:0")); err != nil {
				t.Fatal(err)
			}
			addr := sup.cur["port"].u.(*portUnit).bound
			w.append("before")
			w.mu.Lock()
			w.events = nil
			w.mu.Unlock()

			stopDial := dialer(addr)
			res := sup.Reload(ctx, cfgV("v2", "127.0.0.1:0"))
			dials, refused := stopDial()
			w.append("after")

			if (res.Rejected != nil) != tc.rejected || (res.RolledBack != nil) != tc.rolledBack || (res.Restored != nil) != (tc.restoreFails != "") {
				t.Fatalf("result %+v", res)
			}
			if tc.restoreFails == "" {
				if refused > 0 {
					t.Errorf("the port closed during the reload: %d of %d dials refused", refused, dials)
				}
				if got := get1(addr); got != tc.want["port"] {
					t.Errorf("the port answers %q, want %q (on the same port %s)", got, tc.want["port"], addr)
				}
			}
			for name, v := range tc.want {
				r := sup.cur[name]
				var got string
				switch u := r.u.(type) {
				case *leaseUnit:
					got = u.version
				case *portUnit:
					got = u.version
				case *queueUnit:
					got = u.version
				}
				if got != v {
					t.Errorf("unit %s runs %s, want %s", name, got, v)
				}
			}
			w.mu.Lock()
			lost, disk, taken, events := w.lost, slices.Clone(w.disk), slices.Clone(w.taken), slices.Clone(w.events)
			w.mu.Unlock()
			if lost != 0 || !slices.Equal(disk, []string{"before", "after"}) {
				t.Errorf("data lost: %d items without an owner; disk %v", lost, disk)
			}
			held := slices.Clone(sup.cur["leases"].u.(*leaseUnit).held)
			slices.Sort(held)
			slices.Sort(taken)
			if !slices.Equal(held, taken) {
				t.Errorf("orphaned leases: the running unit holds %v of %v", held, taken)
			}
			if !inOrder(events, tc.events) {
				t.Errorf("events %q\nwant in order %q", events, tc.events)
			}
			if tc.rejected && slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, "stop") }) {
				t.Errorf("a rejected reload stopped a unit: %q", events)
			}
			states := map[string]string{}
			for _, st := range sup.Status() {
				states[st.Name] = st.State
			}
			if tc.restoreFails != "" {
				if states[tc.restoreFails] != stateFailed {
					t.Errorf("states %v, want %s failed", states, tc.restoreFails)
				}
			} else if tc.wedged != "" {
				if states[tc.wedged] != stateWedged {
					t.Errorf("states %v, want %s wedged", states, tc.wedged)
				}
				close(w.hang)
				deadline := time.Now().Add(5 * time.Second)
				for states[tc.wedged] != stateFailed && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
					for _, st := range sup.Status() {
						states[st.Name] = st.State
					}
				}
				if states[tc.wedged] != stateFailed {
					t.Errorf("a wedged unit that stopped late is %s, want failed (until the agent restarts)", states[tc.wedged])
				}
			} else {
				for n, s := range states {
					if s != stateRunning {
						t.Errorf("unit %s is %s", n, s)
					}
				}
			}
			if err := sup.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
}

// inOrder reports whether want appears in got in this order (other events between).
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestSupervisorKeepsUnchangedUnits: a reload that changes only one unit's slice
// replaces it and its dependents, and leaves the others running.
func TestSupervisorKeepsUnchangedUnits(t *testing.T) {
	w := &world{t: t, pool: newListenerPool(), hang: make(chan struct{})}
	defer w.pool.closeAll()
	sup, _ := newSupervisor(w.kinds(), discard())
	sup.afterSwap = w.pool.closeUnused
	if err := sup.Start(context.Background(), cfgV("v1", "127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	leases := sup.cur["leases"].u
	res := sup.Reload(context.Background(), cfgV("v1", "127.0.0.2:0"))
	if !slices.Equal(res.Replaced, []string{"port", "queue"}) {
		t.Errorf("replaced %v, want port and its dependent queue", res.Replaced)
	}
	if sup.cur["leases"].u != leases {
		t.Error("the lease unit was replaced")
	}
	if res = sup.Reload(context.Background(), cfgV("v1", "127.0.0.2:0")); len(res.Replaced) != 0 {
		t.Errorf("an unchanged configuration replaced %v", res.Replaced)
	}
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSupervisorReportsAnExit: a unit that stops on its own is reported, and one the
// supervisor stops is not.
func TestSupervisorReportsAnExit(t *testing.T) {
	ex := &exitUnit{done: make(chan struct{})}
	sup, _ := newSupervisor([]unitKind{defineUnit("x", nil, func(*config.Config) int { return 0 }, func(int) (unit, error) { return ex, nil })}, discard())
	if err := sup.Start(context.Background(), &config.Config{}); err != nil {
		t.Fatal(err)
	}
	close(ex.done)
	select {
	case f := <-sup.Failures():
		if f.name != "x" || f.err == nil {
			t.Errorf("failure %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the exit was not reported")
	}
	_ = sup.Stop()
}

type exitUnit struct{ done chan struct{} }

func (u *exitUnit) Start(context.Context) error { return nil }
func (u *exitUnit) Stop(context.Context) error  { return nil }
func (u *exitUnit) Exited() <-chan struct{}     { return u.done }
func (u *exitUnit) Err() error                  { return errors.New("source failed") }

// TestListenerPoolHandsOver: a socket detached by one server and taken by the next
// keeps its port and loses no connection made in between.
func TestListenerPoolHandsOver(t *testing.T) {
	p := newListenerPool()
	defer p.closeAll()
	l1, err := p.Listen("a", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l1.Addr().String()
	if _, err := p.Listen("a", "127.0.0.1:0"); err == nil {
		t.Fatal("two listeners attached to one socket")
	}
	b, err := p.Listen("b", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("a second setting on port 0: %v", err)
	}
	defer b.Close()
	accepted := make(chan error, 1)
	go func() { _, err := l1.Accept(); accepted <- err }()
	time.Sleep(20 * time.Millisecond)
	l1.Close()
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v", err)
	}
	c, err := net.Dial("tcp", addr) // between generations
	if err != nil {
		t.Fatalf("the port closed between generations: %v", err)
	}
	defer c.Close()
	l2, err := p.Listen("a", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if l2.Addr().String() != addr {
		t.Fatalf("the next generation listens on %s, not %s", l2.Addr(), addr)
	}
	got := make(chan net.Conn, 1)
	go func() { c, _ := l2.Accept(); got <- c }()
	select {
	case sc := <-got:
		if sc == nil {
			t.Fatal("no connection")
		}
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the connection made between generations was not accepted")
	}
	l2.Close()
	p.closeUnused()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a socket nobody took over stays open")
	}
}
