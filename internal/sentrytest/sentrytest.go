// Package sentrytest is a strict Sentry-protocol receiver for tests. It stands in for
// Sentry, which cannot be run here: it checks what a client sends the way Sentry would
// refuse it, and more strictly — authentication (X-Sentry-Auth with the right
// sentry_key and sentry_version=7), the envelope endpoint path, the envelope framing
// (internal/sentryenv.Parse), item types and the event schema's essentials — and
// records every failure. Tests read back what was accepted (Events, Envelopes,
// Requests) and can inject responses such as 429 with X-Sentry-Rate-Limits.
//
// Failures are answered as Sentry would (400/401/404/415 with {"detail": ...}) and
// make the test fail at cleanup unless it takes them with TakeErrors.
package sentrytest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/sentryenv"
)

// DefaultPublicKey is the key a Server accepts unless WithPublicKey says otherwise.
const DefaultPublicKey = "sentrytest"

// Option configures a Server.
type Option func(*Server)

// WithPublicKey sets the sentry_key the server accepts.
func WithPublicKey(key string) Option { return func(s *Server) { s.key = key } }

// WithProject restricts the accepted project ID; by default any numeric project is.
func WithProject(id int) Option { return func(s *Server) { s.project = strconv.Itoa(id) } }

// WithMaxEnvelopeBytes sets the largest (decompressed) envelope accepted; default 20MiB.
func WithMaxEnvelopeBytes(n int) Option { return func(s *Server) { s.maxBytes = n } }

// Responder decides the answer to a valid envelope request: status 0 (or 2xx) accepts
// the envelope and answers 200 (with the given headers, e.g. X-Sentry-Rate-Limits);
// any other status refuses it with that status and headers, and the envelope is not
// recorded as accepted. env is the parsed envelope.
type Responder func(r *http.Request, env *sentryenv.Envelope) (status int, headers http.Header)

// Server is a running strict Sentry receiver on 127.0.0.1.
type Server struct {
	key      string
	project  string
	maxBytes int
	srv      *httptest.Server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced when something was recorded
	respond   Responder
	errs      []error
	events    []Event
	envelopes []*sentryenv.Envelope
	requests  []Request
}

// Event is one accepted "event" item.
type Event struct {
	// EnvelopeHeader is the header of the envelope that carried the event.
	EnvelopeHeader map[string]any
	// ItemHeader holds the item's headers other than type and length.
	ItemHeader map[string]any
	// Payload is the decoded event (numbers as float64).
	Payload map[string]any
	// Raw is the event's JSON as sent.
	Raw []byte
}

// Request is one request the server answered.
type Request struct {
	Time   time.Time
	Path   string
	Header http.Header
	// Envelope is the parsed envelope, nil when it could not be parsed.
	Envelope *sentryenv.Envelope
	// Status is what the server answered.
	Status int
}

// Start starts a Server on 127.0.0.1:0 and closes it when the test ends; the test
// then fails for every protocol error recorded and not taken with TakeErrors.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(func() {
		s.Close()
		for _, err := range s.Errors() {
			t.Errorf("sentrytest: %v", err)
		}
	})
	return s
}

// New starts a Server on 127.0.0.1:0 outside a test (the demo uses it); Close stops
// it, and Errors says what it refused.
func New(opts ...Option) *Server {
	s := &Server{key: DefaultPublicKey, maxBytes: 20 << 20, changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL returns the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL }

// DSN returns a DSN pointing at the server with publicKey and project.
func (s *Server) DSN(publicKey string, project int) string {
	return fmt.Sprintf("http://%s@%s/%d", publicKey, strings.TrimPrefix(s.srv.URL, "http://"), project)
}

// RespondWith installs f to decide the answers to valid envelopes; nil restores the
// default (accept everything valid).
func (s *Server) RespondWith(f Responder) {
	s.mu.Lock()
	s.respond = f
	s.mu.Unlock()
}

// Errors returns the protocol errors recorded so far.
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// TakeErrors returns the protocol errors recorded so far and forgets them, for tests
// that send invalid data on purpose.
func (s *Server) TakeErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := s.errs
	s.errs = nil
	return errs
}

// Events returns the accepted events in the order they arrived.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Envelopes returns the accepted envelopes (of every item type) in order.
func (s *Server) Envelopes() []*sentryenv.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*sentryenv.Envelope(nil), s.envelopes...)
}

// Requests returns every request answered, accepted or not, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// WaitEvents waits until at least n events were accepted and returns them all, or
// returns ctx's error with the events so far.
func (s *Server) WaitEvents(ctx context.Context, n int) ([]Event, error) {
	for {
		s.mu.Lock()
		evs := append([]Event(nil), s.events...)
		ch := s.changed
		s.mu.Unlock()
		if len(evs) >= n {
			return evs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return evs, fmt.Errorf("sentrytest: %d of %d events arrived: %w", len(evs), n, ctx.Err())
		}
	}
}

// notify wakes waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	rec := Request{Time: time.Now(), Path: req.URL.Path, Header: req.Header.Clone()}
	status, hdr, env, accepted, err := s.handle(req)
	rec.Envelope, rec.Status = env, status
	s.mu.Lock()
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err))
	}
	s.requests = append(s.requests, rec)
	if accepted {
		s.envelopes = append(s.envelopes, env)
		for _, it := range env.Items {
			if it.Type != "event" {
				continue
			}
			var p map[string]any
			_ = json.Unmarshal(it.Payload, &p) // validated already
			s.events = append(s.events, Event{EnvelopeHeader: env.Header, ItemHeader: it.Header, Payload: p, Raw: it.Payload})
		}
	}
	s.notify()
	s.mu.Unlock()

	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	switch {
	case err != nil:
		out, _ := json.Marshal(map[string]string{"detail": err.Error()})
		_, _ = w.Write(out)
	case status >= 200 && status < 300:
		out, _ := json.Marshal(map[string]string{"id": env.EventID()})
		_, _ = w.Write(out)
	default:
		_, _ = io.WriteString(w, `{"detail":"refused by the test"}`)
	}
}

// handle checks one request; err is a protocol error (the status says how Sentry
// would answer it).
func (s *Server) handle(req *http.Request) (status int, hdr http.Header, env *sentryenv.Envelope, accepted bool, err error) {
	if req.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, nil, nil, false, fmt.Errorf("method %s; Sentry takes POST", req.Method)
	}
	project, ok := strings.CutSuffix(strings.TrimPrefix(req.URL.Path, "/api/"), "/envelope/")
	if !ok || !strings.HasPrefix(req.URL.Path, "/api/") || project == "" || strings.Trim(project, "0123456789") != "" {
		return http.StatusNotFound, nil, nil, false, fmt.Errorf("path %s is not /api/<numeric project>/envelope/", req.URL.Path)
	}
	if s.project != "" && project != s.project {
		return http.StatusForbidden, nil, nil, false, fmt.Errorf("project %s, want %s", project, s.project)
	}
	if err := s.checkAuth(req.Header.Get("X-Sentry-Auth")); err != nil {
		return http.StatusUnauthorized, nil, nil, false, err
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-sentry-envelope" {
		return http.StatusBadRequest, nil, nil, false, fmt.Errorf("Content-Type %q, want application/x-sentry-envelope", ct)
	}
	body, err := s.readBody(req)
	if err != nil {
		return http.StatusBadRequest, nil, nil, false, err
	}
	env, err = sentryenv.Parse(body, sentryenv.Limits{MaxEnvelopeBytes: s.maxBytes})
	if err != nil {
		if errors.Is(err, sentryenv.ErrTooLarge) {
			return http.StatusRequestEntityTooLarge, nil, nil, false, err
		}
		return http.StatusBadRequest, nil, nil, false, err
	}
	if err := CheckEnvelope(env); err != nil {
		return http.StatusBadRequest, nil, env, false, err
	}
	s.mu.Lock()
	respond := s.respond
	s.mu.Unlock()
	if respond != nil {
		status, hdr = respond(req, env)
	}
	if status == 0 || (status >= 200 && status < 300) {
		return http.StatusOK, hdr, env, true, nil
	}
	return status, hdr, env, false, nil
}

// checkAuth checks an X-Sentry-Auth header: "Sentry sentry_key=..., sentry_version=7".
func (s *Server) checkAuth(v string) error {
	if v == "" {
		return errors.New("no X-Sentry-Auth header")
	}
	rest, ok := strings.CutPrefix(v, "Sentry ")
	if !ok {
		return fmt.Errorf("X-Sentry-Auth %q does not start with \"Sentry \"", v)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("X-Sentry-Auth: %q is not key=value", part)
		}
		fields[k] = val
	}
	switch {
	case fields["sentry_key"] == "":
		return errors.New("X-Sentry-Auth has no sentry_key")
	case fields["sentry_key"] != s.key:
		return fmt.Errorf("X-Sentry-Auth sentry_key %q is not the server's %q", fields["sentry_key"], s.key)
	case fields["sentry_version"] != "7":
		return fmt.Errorf("X-Sentry-Auth sentry_version %q, want 7", fields["sentry_version"])
	}
	return nil
}

func (s *Server) readBody(req *http.Request) ([]byte, error) {
	var body io.Reader = req.Body
	switch ce := req.Header.Get("Content-Encoding"); ce {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, fmt.Errorf("Content-Encoding gzip: %w", err)
		}
		body = gz
	case "deflate":
		zr, err := zlib.NewReader(req.Body)
		if err != nil {
			return nil, fmt.Errorf("Content-Encoding deflate: %w", err)
		}
		body = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", ce)
	}
	data, err := io.ReadAll(io.LimitReader(body, int64(s.maxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	return data, nil
}

// jsonNumberDecode decodes data as exactly one JSON object, numbers as json.Number.
func jsonNumberDecode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null, not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}
