package errorevents

import (
	"net/url"
	"time"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Config configures error events.
type Config struct {
	// FromLogs derives events from error-level log records with a stack trace;
	// default true.
	FromLogs *bool `yaml:"from_logs"`
	// FromSpans derives events from spans with status ERROR or exception events;
	// default true.
	FromSpans *bool `yaml:"from_spans"`
	// Window is the period of the per-fingerprint limit; default 1m.
	Window time.Duration `yaml:"window"`
	// PerWindow is how many events of one fingerprint are sent per window; default
	// 5. The rest are counted, and the next event sent carries the count.
	PerWindow int `yaml:"per_window"`
	// MaxPerWindow bounds the events of all fingerprints together per window; default
	// 100.
	MaxPerWindow int `yaml:"max_per_window"`
	// SampleRate keeps this fraction of the events the limiter admits; default 1.
	SampleRate *float64 `yaml:"sample_rate"`
	// Environment and Release are set on events that do not have them.
	Environment string `yaml:"environment"`
	Release     string `yaml:"release"`
	// ToLoki also writes every event sent (after the limit and sampling) to Loki, one
	// line per event in the stream {source="outrider-errors"}, with or without a
	// Sentry exporter; it needs exporters.loki. Default false.
	ToLoki bool `yaml:"to_loki"`
}

// Grafana configures links from events to Grafana's Explore.
type Grafana struct {
	// URL is Grafana's base URL, e.g. https://grafana.example.com; empty: no links.
	URL string `yaml:"url"`
	// TempoDatasourceUID and LokiDatasourceUID name the data sources to open.
	TempoDatasourceUID string `yaml:"tempo_datasource_uid"`
	LokiDatasourceUID  string `yaml:"loki_datasource_uid"`
}

// Defaults.
const (
	DefaultWindow       = time.Minute
	DefaultPerWindow    = 5
	DefaultMaxPerWindow = 100
)

// ApplyDefaults fills zero-valued fields.
func (c *Config) ApplyDefaults() {
	t := true
	if c.FromLogs == nil {
		c.FromLogs = &t
	}
	if c.FromSpans == nil {
		c.FromSpans = &t
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.PerWindow == 0 {
		c.PerWindow = DefaultPerWindow
	}
	if c.MaxPerWindow == 0 {
		c.MaxPerWindow = DefaultMaxPerWindow
	}
	if c.SampleRate == nil {
		one := 1.0
		c.SampleRate = &one
	}
}

// Validate reports problems with field paths relative to the errors block.
func (c *Config) Validate(p *confval.Problems) {
	if c.Window < time.Second {
		p.Addf("window", "must be at least 1s, got %s", c.Window)
	}
	if c.PerWindow < 1 {
		p.Addf("per_window", "must be at least 1, got %d", c.PerWindow)
	}
	if c.MaxPerWindow < c.PerWindow {
		p.Addf("max_per_window", "must be at least per_window (%d), got %d", c.PerWindow, c.MaxPerWindow)
	}
	if r := *c.SampleRate; r <= 0 || r > 1 {
		p.Addf("sample_rate", "must be in (0, 1], got %g", r)
	}
}

// Validate reports problems with field paths relative to the grafana block.
func (g *Grafana) Validate(p *confval.Problems) {
	if g.URL == "" {
		return
	}
	u, err := url.Parse(g.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Addf("url", "must be an http(s) URL like https://grafana.example.com, got %q", g.URL)
	}
	if g.TempoDatasourceUID == "" && g.LokiDatasourceUID == "" {
		p.Addf("", "url is set but neither tempo_datasource_uid nor loki_datasource_uid: links need a data source (Grafana → Connections → Data sources → the UID in the URL)")
	}
}
