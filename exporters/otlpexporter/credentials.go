package otlpexporter

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/secretfile"
)

// headerFiles are the headers whose values are read from files (HeadersFromFiles),
// read again when a file changes, and where they come from for the error of a
// refusal.
type headerFiles struct {
	names   []string // as configured, sorted
	files   []*secretfile.File
	sources string
}

func newHeaderFiles(cfg *Config) *headerFiles {
	h := &headerFiles{}
	for name := range cfg.HeadersFromFiles {
		h.names = append(h.names, name)
	}
	sort.Strings(h.names)
	for _, name := range h.names {
		h.files = append(h.files, secretfile.New(cfg.HeadersFromFiles[name]))
	}
	h.sources = cfg.CredentialSources.Describe(cfg.credentialFiles()...)
	return h
}

// apply calls set with each header's current value.
func (h *headerFiles) apply(set func(name, value string)) error {
	for i, f := range h.files {
		v, err := f.Get()
		if err != nil {
			return fmt.Errorf("headers_from_files.%s: %w", h.names[i], err)
		}
		if !validHeaderValue(v) {
			return fmt.Errorf("headers_from_files.%s: %s holds a line break or another control character; a header value is one line", h.names[i], f.Path())
		}
		set(h.names[i], v)
	}
	return nil
}

// refused adds to the error of a refusal (401, 403, Unauthenticated,
// PermissionDenied) where the credentials came from.
func (h *headerFiles) refused(err error) error {
	if h.sources == "" {
		return err
	}
	return fmt.Errorf("%w; the credentials were read from %s: fix them there", err, h.sources)
}

// validateHeaderFiles checks the names of headers_from_files as validateHeaders does,
// that no header is set both ways, and that the files can be read.
func validateHeaderFiles(p *confval.Problems, files map[string]string, headers map[string]confval.Secret) {
	static := map[string]string{}
	for name := range headers {
		static[strings.ToLower(name)] = name
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		lower := strings.ToLower(name)
		switch {
		case !validHeaderName(name):
			p.Addf("", "invalid header name %q; use letters, digits, '-', '_' and '.'", name)
			continue
		case reservedHeaders[lower] || strings.HasPrefix(lower, "grpc-"):
			p.Addf("", "header %q is set by the exporter itself and cannot be configured", name)
			continue
		}
		if other, ok := static[lower]; ok {
			p.Addf(name, "header %q is also in headers (as %q); set it in one place", name, other)
		}
		if prev, ok := seen[lower]; ok {
			p.Addf("", "headers %q and %q differ only in case; header names are case-insensitive, keep one", prev, name)
			continue
		}
		seen[lower] = name
		if files[name] == "" {
			p.Addf(name, "needs the path of the file holding the value")
			continue
		}
		secretfile.CheckReadable(p, name, files[name])
	}
}

// credentialFiles lists the files the exporter reads credentials and certificates
// from.
func (c *Config) credentialFiles() []string {
	files := []string{c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile}
	names := make([]string, 0, len(c.HeadersFromFiles))
	for name := range c.HeadersFromFiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		files = append(files, c.HeadersFromFiles[name])
	}
	return files
}

// host is the name or address the server's certificate must hold.
func (ep endpoint) host() string {
	if ep.target != "" {
		h, _, err := net.SplitHostPort(ep.target)
		if err != nil {
			return ep.target
		}
		return h
	}
	u, err := url.Parse(ep.url)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
