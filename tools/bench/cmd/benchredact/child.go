package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/tools/bench/internal/measure"
	"github.com/outrider-dev/outrider/tools/bench/internal/sink"
)

// childEnv, set to "1", makes the program the counting sink of a run instead of the
// benchmark: it reads a childConfig as one JSON line on stdin, prints its URL as one
// line on stdout, serves until stdin is closed, then exits. The sink runs in its own
// process so that decoding and checking what arrives is not counted in the CPU time
// of the pipeline under test.
const childEnv = "OUTRIDER_BENCHREDACT_SINK"

// childConfig tells the sink what the input holds.
type childConfig struct {
	// Secrets, Seed and MinLen regenerate the secret values written into the
	// input.
	Secrets int    `json:"secrets"`
	Seed    uint64 `json:"seed"`
	MinLen  int    `json:"min_len"`
	// SampleEvery checks every n-th line for secrets in full; lines that carry a
	// leak field are always checked.
	SampleEvery int `json:"sample_every"`
}

// childCounts is what the sink reports on GET /counts.
type childCounts struct {
	// Entries, WithTraceID, Requests and WireBytes count the accepted pushes as
	// the counting sink (tools/bench/internal/sink) does.
	Entries     int64 `json:"entries"`
	WithTraceID int64 `json:"with_trace_id"`
	Requests    int64 `json:"requests"`
	WireBytes   int64 `json:"wire_bytes"`
	// Rejected counts the pushes answered with an error; LastError says why.
	Rejected  int64  `json:"rejected"`
	LastError string `json:"last_error,omitempty"`
	// Scrubbed counts the lines holding redact.Marker; Checked the lines searched
	// for every form of every secret; Leaked those where one was found.
	Scrubbed int64 `json:"scrubbed"`
	Checked  int64 `json:"checked"`
	Leaked   int64 `json:"leaked"`
	// Forms counts, by leak form (leakForm.name), the lines carrying its field.
	Forms map[string]formCounts `json:"forms,omitempty"`
	// LastUnixNano is when the latest push with entries was accepted.
	LastUnixNano int64 `json:"last_unix_nano"`
}

// formCounts are one leak form's lines: Lines carry its field, Scrubbed of them
// hold redact.Marker and none of the secret forms, Leaked hold a secret form.
type formCounts struct {
	Lines    int64 `json:"lines"`
	Scrubbed int64 `json:"scrubbed"`
	Leaked   int64 `json:"leaked"`
}

// leakPrefix begins the key of every field insertField adds; a line holding one is
// always checked.
const leakPrefix = `"leak_`

// formOf returns the leak form whose field line carries, if any.
func formOf(line string) (leakForm, bool) {
	i := strings.Index(line, leakPrefix)
	if i < 0 {
		return leakForm{}, false
	}
	for _, f := range leakForms {
		if strings.HasPrefix(line[i:], f.key()) {
			return f, true
		}
	}
	return leakForm{}, false
}

// childServer is the state of the sink process.
type childServer struct {
	forms       []string
	sampleEvery int

	mu     sync.Mutex
	counts childCounts
	line   int64 // lines seen, for sampling
}

// runChild is the sink process's main; it returns the exit status.
func runChild(stdin io.Reader, stdout, stderr io.Writer) int {
	in := bufio.NewReader(stdin)
	first, err := in.ReadBytes('\n')
	if err != nil {
		fmt.Fprintln(stderr, "benchredact sink: read the configuration line:", err)
		return 2
	}
	var cfg childConfig
	if err := json.Unmarshal(first, &cfg); err != nil {
		fmt.Fprintln(stderr, "benchredact sink: configuration:", err)
		return 2
	}
	cs := &childServer{forms: secretForms(secrets(cfg.Secrets, cfg.Seed, cfg.MinLen)), sampleEvery: max(cfg.SampleEvery, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "benchredact sink: listen on loopback:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+sink.LokiPushPath, cs.handlePush)
	mux.HandleFunc("GET /counts", cs.handleCounts)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())

	// The parent closes stdin to stop the sink (or dies, which closes it too).
	_, _ = io.Copy(io.Discard, in)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintln(stderr, "benchredact sink: stop:", err)
		return 1
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "benchredact sink: serve:", err)
		return 1
	}
	return 0
}

// secretForms returns every string of the values that insertField may write.
func secretForms(values []string) []string {
	var forms []string
	for _, v := range values {
		for _, lf := range leakForms {
			if _, fs, ok := lf.field(v); ok {
				forms = append(forms, fs...)
			}
		}
	}
	return forms
}

func (cs *childServer) reject(w http.ResponseWriter, status int, err error) {
	cs.mu.Lock()
	cs.counts.Rejected++
	cs.counts.LastError = err.Error()
	cs.mu.Unlock()
	http.Error(w, err.Error(), status)
}

func (cs *childServer) handlePush(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil {
		cs.reject(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}
	// The same decoding as sink.CountLokiPush, done here once because the lines
	// are searched too.
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		cs.reject(w, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q, want application/x-protobuf", ct))
		return
	}
	data, err := snappy.Decode(nil, body)
	if err != nil {
		cs.reject(w, http.StatusBadRequest, fmt.Errorf("snappy body: %w", err))
		return
	}
	var req push.PushRequest
	if err := req.Unmarshal(data); err != nil {
		cs.reject(w, http.StatusBadRequest, fmt.Errorf("protobuf PushRequest: %w", err))
		return
	}
	entries, withTrace := 0, 0
	for _, st := range req.Streams {
		entries += len(st.Entries)
		for _, e := range st.Entries {
			for _, l := range e.StructuredMetadata {
				if l.Name == "trace_id" && l.Value != "" {
					withTrace++
					break
				}
			}
		}
	}
	cs.mu.Lock()
	start := cs.line
	cs.line += int64(entries)
	cs.mu.Unlock()
	var scrubbed, checked, leaked int64
	forms := map[string]formCounts{}
	n := start
	for _, st := range req.Streams {
		for _, e := range st.Entries {
			n++
			marked := strings.Contains(e.Line, redact.Marker)
			if marked {
				scrubbed++
			}
			form, carries := formOf(e.Line)
			if n%int64(cs.sampleEvery) != 0 && !carries {
				continue
			}
			checked++
			leak := hasAny(e.Line, cs.forms)
			for _, l := range e.StructuredMetadata {
				leak = leak || hasAny(l.Value, cs.forms)
			}
			if leak {
				leaked++
			}
			if carries {
				fc := forms[form.name]
				fc.Lines++
				switch {
				case leak:
					fc.Leaked++
				case marked:
					fc.Scrubbed++
				}
				forms[form.name] = fc
			}
		}
	}
	cs.mu.Lock()
	c := &cs.counts
	c.Entries += int64(entries)
	c.WithTraceID += int64(withTrace)
	c.Requests++
	c.WireBytes += int64(len(body))
	c.Scrubbed += scrubbed
	c.Checked += checked
	c.Leaked += leaked
	if len(forms) > 0 && c.Forms == nil {
		c.Forms = map[string]formCounts{}
	}
	for name, fc := range forms {
		t := c.Forms[name]
		t.Lines += fc.Lines
		t.Scrubbed += fc.Scrubbed
		t.Leaked += fc.Leaked
		c.Forms[name] = t
	}
	if entries > 0 {
		c.LastUnixNano = time.Now().UnixNano()
	}
	cs.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func hasAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func (cs *childServer) handleCounts(w http.ResponseWriter, _ *http.Request) {
	cs.mu.Lock()
	c := cs.counts
	c.Forms = maps.Clone(c.Forms)
	cs.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c)
}

// childSink is the parent's handle on a running sink process.
type childSink struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	url    string
	client *http.Client
	waited chan error
}

// startChild starts the sink process and waits for its URL.
func startChild(cfg childConfig, stderr io.Writer) (*childSink, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start the sink: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = stderr
	measure.KillWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sink stdin: %w", err)
	}
	addr := &firstLine{line: make(chan string, 1)}
	cmd.Stdout = addr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the sink process: %w", err)
	}
	c := &childSink{cmd: cmd, stdin: stdin, client: &http.Client{Timeout: 10 * time.Second}, waited: make(chan error, 1)}
	go func() { c.waited <- cmd.Wait() }()
	line, _ := json.Marshal(cfg)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		_ = c.stop()
		return nil, fmt.Errorf("configure the sink process: %w", err)
	}
	select {
	case c.url = <-addr.line:
	case err := <-c.waited:
		c.waited <- err
	case <-time.After(30 * time.Second):
	}
	if !strings.HasPrefix(c.url, "http://") {
		_ = c.stop()
		return nil, fmt.Errorf("the sink process did not report its address (got %q)", c.url)
	}
	return c, nil
}

// counts asks the sink what it received.
func (c *childSink) counts() (childCounts, error) {
	var out childCounts
	resp, err := c.client.Get(c.url + "/counts")
	if err != nil {
		return out, fmt.Errorf("ask the sink for its counts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("ask the sink for its counts: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("decode the sink's counts: %w", err)
	}
	return out, nil
}

// stop closes the sink's stdin and waits for it to exit, killing it after 15 s.
func (c *childSink) stop() error {
	c.client.CloseIdleConnections()
	_ = c.stdin.Close()
	select {
	case err := <-c.waited:
		if err != nil {
			return fmt.Errorf("sink process: %w", err)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.waited
		return errors.New("the sink process did not stop within 15s; killed it")
	}
}

// firstLine is a writer that hands over the first line written to it and discards
// the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	done bool
	line chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	if i := strings.IndexByte(string(f.buf), '\n'); i >= 0 {
		f.done = true
		f.line <- strings.TrimSpace(string(f.buf[:i]))
		f.buf = nil
	}
	return len(p), nil
}
