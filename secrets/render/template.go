package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Fetcher gives templates their data. The Syncer implements it on Vault, with caching
// and lease tracking; tests use a map.
//
// Contract: Secret returns what Vault returns for path — a read when args is empty, a
// write with args as "key=value" parameters otherwise (consul-template's secret
// semantics; pki/issue/ROLE is written to). It returns a non-nil *Secret or an error;
// when there is nothing at path it returns an error wrapping ErrNotFound (a nil *Secret
// with a nil error is treated the same way). Its errors must never contain a secret
// value: they are shown to users as they are. It must honour ctx. A Render calls it at
// most once per distinct (path, args) and never concurrently.
type Fetcher interface {
	Secret(ctx context.Context, path string, args []string) (*Secret, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, path string, args []string) (*Secret, error)

// Secret calls f.
func (f FetcherFunc) Secret(ctx context.Context, path string, args []string) (*Secret, error) {
	return f(ctx, path, args)
}

// Secret is what templates see of a Vault response: {{ .Data.data.password }} for KV
// v2, {{ .Data.password }} for KV v1 and dynamic secrets, {{ .LeaseID }} … Templates
// must treat it as read-only: one Secret may be shared by several renders.
type Secret struct {
	// Data is the response's data. Numbers are json.Number when it comes from the
	// Vault client.
	Data map[string]any `json:"data" yaml:"data"`
	// LeaseID is the lease of a dynamic secret, empty otherwise.
	LeaseID string `json:"lease_id" yaml:"lease_id"`
	// LeaseDuration is the lease's TTL in seconds, as consul-template has it.
	LeaseDuration int `json:"lease_duration" yaml:"lease_duration"`
	// Renewable says whether the lease can be renewed.
	Renewable bool `json:"renewable" yaml:"renewable"`
}

// Dependency is one Vault request a render made: Path with no Args for a read, Path
// with "key=value" Args for a write (such as pki/issue).
type Dependency struct {
	Path string
	Args []string
}

// Sentinel errors a caller can branch on with errors.Is.
var (
	// ErrNotFound means there is no secret at a path. Fetchers wrap it.
	ErrNotFound = errors.New("no secret at this path")
	// ErrMissingKey means a template or a raw short form asked for a key the secret
	// does not have while error_on_missing_key is on; the last good file should stay.
	ErrMissingKey = errors.New("missing key")
)

// Template turns secrets into the bytes of one file, from a template or a short form.
// It is immutable once built; Render may be called concurrently.
type Template struct {
	cfg  FileConfig
	tmpl *template.Template // nil for a short form and for EngineConsulTemplate
	text string             // the template, for EngineConsulTemplate
	size int                // the template's length, a hint for the output's
}

// NewTemplate validates cfg (after applying its defaults to a copy), reads
// template_file, and parses the template. A problem is returned as a
// *confval.Error whose message names the field and, for a template, the line:
// `template_file: /etc/t.tmpl: line 3: function "secrt" not defined`.
func NewTemplate(cfg FileConfig) (*Template, error) {
	cfg.ApplyDefaults()
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	t := &Template{cfg: cfg}
	var err error
	switch {
	case cfg.TemplateEngine == EngineConsulTemplate:
		if err := t.loadConsul(); err != nil {
			return nil, err
		}
	case cfg.Template != "":
		t.tmpl, err = parseTemplate(cfg.Path, cfg.Template, cfg.missingKeyIsError())
		if err != nil {
			p.Addf("template", "%v", err)
		}
		t.size = len(cfg.Template)
	case cfg.TemplateFile != "":
		var text string
		text, err = readTemplateFile(cfg.TemplateFile)
		if err == nil {
			t.tmpl, err = parseTemplate(cfg.Path, text, cfg.missingKeyIsError())
			t.size = len(text)
			if err != nil {
				err = fmt.Errorf("%s: %w", cfg.TemplateFile, err)
			}
		}
		if err != nil {
			p.Addf("template_file", "%v", err)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// Config returns a copy of the file's configuration, with defaults applied.
func (t *Template) Config() FileConfig {
	c := t.cfg
	uid, gid := c.Owner()
	missing := c.missingKeyIsError()
	c.UID, c.GID, c.ErrorOnMissingKey = &uid, &gid, &missing
	return c
}

// Render fetches what the template needs through f and returns the file's bytes and
// the requests made, in the order they were first made (each distinct path and args
// once: within one render, a repeated {{ secret }} or {{ pkiCert }} reuses the first
// response, so a certificate and its key always match). On error, deps holds the
// requests made before the failure, and the error names the file, the template line
// and the field or function concerned — never a secret value.
func (t *Template) Render(ctx context.Context, f Fetcher) (data []byte, deps []Dependency, err error) {
	r := &run{ctx: ctx, fetcher: f}
	if t.cfg.TemplateEngine == EngineConsulTemplate {
		data, err = t.renderConsul(r)
		return data, r.deps, err
	}
	if t.tmpl == nil {
		data, err = t.renderShort(r)
		return data, r.deps, err
	}
	tm, err := t.tmpl.Clone()
	if err != nil {
		return nil, nil, fmt.Errorf("render %s: %w", t.cfg.Path, err)
	}
	tm.Funcs(r.funcs())
	var buf bytes.Buffer
	buf.Grow(t.size + 64)
	if err := tm.Execute(&buf, nil); err != nil {
		return nil, r.deps, execError(t.cfg.Path, err, r)
	}
	return buf.Bytes(), r.deps, nil
}

func (t *Template) renderShort(r *run) ([]byte, error) {
	s, err := r.fetch("source", t.cfg.Source, nil)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", t.cfg.Path, err)
	}
	data, err := kvData(s.Data)
	if err != nil {
		return nil, fmt.Errorf("render %s: source %q: %w", t.cfg.Path, t.cfg.Source, err)
	}
	out, err := encode(t.cfg.Format, data, t.cfg.Key, t.cfg.missingKeyIsError())
	if err != nil {
		return nil, fmt.Errorf("render %s: source %q: %w", t.cfg.Path, t.cfg.Source, err)
	}
	return out, nil
}

// run is the state of one Render: the requests made and their responses.
type run struct {
	ctx     context.Context
	fetcher Fetcher
	deps    []Dependency
	memo    map[string]*Secret
	envSeen []string // values {{ env }} returned
	// lastFunc is the last error of a function bound to a consul-template render.
	lastFunc *funcError
}

// seen returns the strings this render fetched, to scrub out of an error message.
func (r *run) seen() []string {
	out := append([]string(nil), r.envSeen...)
	for _, s := range r.memo {
		out = collectStrings(out, s.Data)
		out = collectStrings(out, s.LeaseID)
	}
	return out
}

func (r *run) fetch(fn, path string, args []string) (*Secret, error) {
	if path == "" {
		return nil, &funcError{msg: fn + ": empty path; give the Vault path to read, such as \"secret/data/app\""}
	}
	for i, a := range args {
		if k, _, ok := strings.Cut(a, "="); !ok || k == "" {
			return nil, &funcError{msg: fmt.Sprintf("%s %q: argument %d is not of the form key=value", fn, path, i+1)}
		}
	}
	key := path
	if len(args) > 0 {
		key = path + "\x00" + strings.Join(args, "\x00")
	}
	if s, ok := r.memo[key]; ok {
		return s, nil
	}
	if err := r.ctx.Err(); err != nil {
		return nil, &funcError{msg: fmt.Sprintf("%s %q: %v", fn, path, err), err: err}
	}
	if len(args) == 0 {
		args = nil
	} else {
		args = append([]string(nil), args...)
	}
	r.deps = append(r.deps, Dependency{Path: path, Args: args})
	s, err := r.fetcher.Secret(r.ctx, path, args)
	if err == nil && s == nil {
		err = ErrNotFound
	}
	if err != nil {
		return nil, &funcError{msg: fmt.Sprintf("%s %q: %v", fn, path, err), err: err}
	}
	if r.memo == nil {
		r.memo = make(map[string]*Secret, 4)
	}
	r.memo[key] = s
	return s, nil
}

// funcError is an error from a template function. Its message is written never to
// contain a value, so it is shown to the user as it is.
type funcError struct {
	msg string
	err error
}

func (e *funcError) Error() string { return e.msg }
func (e *funcError) Unwrap() error { return e.err }

func readTemplateFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the template: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot read the template: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTemplateFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the template: %w", err)
	}
	if len(b) > maxTemplateFileBytes {
		return "", fmt.Errorf("%s is larger than the %s a template may be", path, confval.ByteSize(maxTemplateFileBytes))
	}
	return string(b), nil
}

func parseTemplate(name, text string, missingKeyIsError bool) (*template.Template, error) {
	opt := "missingkey=default"
	if missingKeyIsError {
		opt = "missingkey=error"
	}
	t, err := template.New(name).Option(opt).Funcs(parseFuncs).Parse(text)
	if err != nil {
		return nil, parseError(name, err)
	}
	return t, nil
}
