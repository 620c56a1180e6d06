package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/receivers/otlpreceiver"
)

type validateOpts struct {
	config   string
	offline  bool
	overlays overlayFlags
}

func (o *validateOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "path of the YAML configuration file (required; - reads standard input)")
	fs.BoolVar(&o.offline, "offline", false, "skip the checks of this host (files the configuration names, data_dir), for a file meant for another machine")
	o.overlays.register(fs)
}

// runValidate checks a configuration: the file itself (every problem with its field
// path), then what the agent would meet on this host. Problems exit 2; warnings are
// printed and the file is still valid.
func runValidate(args []string, stdout, stderr io.Writer) int {
	return validate(args, os.Stdin, stdout, stderr)
}

func validate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o validateOpts
	if !parseFlags("validate", args, stderr, o.register) || !requireConfig("validate", o.config, stderr) {
		return exitUsage
	}
	name := o.config
	if len(o.overlays) > 0 {
		if name == "-" {
			fmt.Fprintln(stderr, "outrider validate: with --overlay, --config must be a file")
			return exitUsage
		}
		// The merged configuration, as the agent would run it.
		layers, err := config.ReadLayers(o.config, o.overlays)
		if err == nil {
			var cfg *config.Config
			if cfg, err = config.ParseLayers(layers); err == nil {
				return validateHost(o, cfg, nil, name, stdout, stderr)
			}
		}
		fmt.Fprintf(stderr, "outrider: invalid configuration %s with its overlays: %v\n", name, err)
		return exitUsage
	}
	var (
		data []byte
		err  error
	)
	if name == "-" {
		name = "<stdin>"
		data, err = io.ReadAll(io.LimitReader(stdin, config.MaxBytes+1))
		if err != nil {
			fmt.Fprintf(stderr, "outrider validate: read standard input: %v\n", err)
			return exitFailed
		}
	} else if data, err = config.ReadFile(o.config); err != nil {
		fmt.Fprintf(stderr, "outrider: invalid configuration %s: %v\n", name, err)
		return exitUsage
	}
	// Every phase's problems are listed at once: the file's (decoding, validation),
	// then the listeners' and this host's.
	cfg, err := config.Check(name, data)
	if cfg == nil {
		fmt.Fprintf(stderr, "outrider: invalid configuration %s: %v\n", name, err)
		return exitUsage
	}
	return validateHost(o, cfg, err, name, stdout, stderr)
}

// validateHost lists the problems of a parsed configuration (err, from config.Check)
// with those of the listeners and, unless --offline, of this host.
func validateHost(o validateOpts, cfg *config.Config, err error, name string, stdout, stderr io.Writer) int {
	var p confval.Problems
	var ce *confval.Error
	if errors.As(err, &ce) {
		for _, msg := range ce.Problems {
			p.Addf("", "%s", msg)
		}
	} else if err != nil {
		fmt.Fprintf(stderr, "outrider: invalid configuration %s: %v\n", name, err)
		return exitUsage
	}
	checkListeners(cfg, &p)
	var warnings []string
	if !o.offline {
		checkFiles(cfg, &p)
		warnings = append(warnings, checkDataDir(cfg.DataDir)...)
	}
	warnings = append(warnings, checkReceivers(cfg)...)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err := p.Err(); err != nil {
		fmt.Fprintf(stderr, "outrider: invalid configuration %s: %v\n", name, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", name)
	return exitOK
}

// listener is one address the agent listens on.
type listener struct{ field, addr string }

func listeners(cfg *config.Config) []listener {
	ls := []listener{{"server.listen", cfg.Server.Listen}}
	if o := cfg.Receivers.OTLP; o != nil {
		if o.GRPC.Listen != otlpreceiver.Off {
			ls = append(ls, listener{"receivers.otlp.grpc.listen", o.GRPC.Listen})
		}
		if o.HTTP.Listen != otlpreceiver.Off {
			ls = append(ls, listener{"receivers.otlp.http.listen", o.HTTP.Listen})
		}
	}
	if s := cfg.Receivers.Sentry; s != nil {
		ls = append(ls, listener{"receivers.sentry.listen", s.Listen})
	}
	return ls
}

// checkListeners reports every pair of listeners that would take the same port: the
// same port on the same host, or on a host and the wildcard address. Port 0 picks a
// free port and never collides.
func checkListeners(cfg *config.Config, p *confval.Problems) {
	ls := listeners(cfg)
	for i, a := range ls {
		for _, b := range ls[:i] {
			if collide(a.addr, b.addr) {
				p.Addf(a.field, "%s takes the same port as %s (%s); give each listener its own port", a.addr, b.field, b.addr)
			}
		}
	}
}

func collide(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	norm := func(h string) string {
		switch h {
		case "", "0.0.0.0", "::", "[::]":
			return "*"
		case "localhost":
			return "127.0.0.1"
		}
		return h
	}
	ha, hb = norm(ha), norm(hb)
	return ha == hb || ha == "*" || hb == "*"
}

// checkFiles reports the files the configuration names that cannot be read here, as
// tls.ca_file is checked when the configuration is loaded.
func checkFiles(cfg *config.Config, p *confval.Problems) {
	for i, f := range cfg.Secrets.Files {
		if f.TemplateFile == "" {
			continue
		}
		fh, err := os.Open(f.TemplateFile)
		if err == nil {
			var st os.FileInfo
			if st, err = fh.Stat(); err == nil && st.IsDir() {
				err = errors.New("is a directory")
			}
			fh.Close()
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			p.Addf(fmt.Sprintf("secrets.files[%d].template_file", i), "cannot read %q: %v", f.TemplateFile, err)
		}
	}
}

// checkDataDir warns when data_dir (or, before it exists, the nearest directory above
// it, where the agent will create it) is not writable by this user.
func checkDataDir(dir string) []string {
	if dir == "" {
		return nil
	}
	d := filepath.Clean(dir)
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return []string{fmt.Sprintf("data_dir: %s is not a directory; the agent cannot keep positions, queues and lease state under it", d)}
			}
			if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
				what := "data_dir"
				if d != filepath.Clean(dir) {
					what = "data_dir: " + dir + " does not exist and its parent"
				}
				return []string{fmt.Sprintf("%s %s is not writable by this user (%v); the agent needs it for positions, queues and lease state", what, d, err)}
			}
			return nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil
		}
		d = parent
	}
}

// checkReceivers warns about signals a receiver accepts but can only refuse, since no
// exporter takes them.
func checkReceivers(cfg *config.Config) []string {
	var w []string
	if cfg.Receivers.OTLP != nil {
		if cfg.Exporters.OTLP == nil && cfg.Exporters.Loki != nil {
			w = append(w, "receivers.otlp: traces have nowhere to go and are refused; add exporters.otlp (e.g. Tempo) to keep them")
		}
		if cfg.Exporters.Loki == nil && cfg.Exporters.OTLP != nil {
			w = append(w, "receivers.otlp: logs have nowhere to go and are refused; add exporters.loki to keep them")
		}
	}
	return w
}
