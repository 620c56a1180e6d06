package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const overlayBase = `
identity: {service: checkout}
logs:
  sources:
    - name: app
      path: /var/log/app/*.log
      parser: {format: json}
      labels: {team: shop, tier: web}
exporters:
  loki:
    url: http://127.0.0.1:3100
    labels: {cluster: eu1}
  otlp:
    endpoint: http://127.0.0.1:4317
`

func TestParseLayersMerge(t *testing.T) {
	cases := []struct {
		name     string
		overlays []string
		check    func(t *testing.T, c *Config)
	}{
		{"empty overlay changes nothing", []string{""}, func(t *testing.T, c *Config) {
			if len(c.Logs.Sources) != 1 || c.Exporters.Loki.Labels["cluster"] != "eu1" {
				t.Errorf("config changed: %+v", c.Logs.Sources)
			}
		}},
		{"maps merge deeply", []string{"exporters:\n  loki:\n    labels: {env: prod}\n    tenant_id: team-a\n"}, func(t *testing.T, c *Config) {
			l := c.Exporters.Loki
			if l.URL != "http://127.0.0.1:3100" || l.TenantID != "team-a" || l.Labels["cluster"] != "eu1" || l.Labels["env"] != "prod" {
				t.Errorf("loki = url %q tenant %q labels %v", l.URL, l.TenantID, l.Labels)
			}
		}},
		{"scalar replaces", []string{"identity: {service: payments}\n"}, func(t *testing.T, c *Config) {
			if c.Identity.Service != "payments" {
				t.Errorf("service = %q", c.Identity.Service)
			}
		}},
		{"source merged by name", []string{"logs:\n  sources:\n    - name: app\n      parser: {format: logfmt}\n      labels: {tier: api}\n"}, func(t *testing.T, c *Config) {
			s := c.Logs.Sources
			if len(s) != 1 || s[0].Path != "/var/log/app/*.log" || s[0].Parser.Format != "logfmt" || s[0].Labels["tier"] != "api" || s[0].Labels["team"] != "shop" {
				t.Errorf("sources = %+v", s)
			}
		}},
		{"new source appended", []string{"logs:\n  sources:\n    - name: nginx\n      path: /var/log/nginx/access.log\n"}, func(t *testing.T, c *Config) {
			s := c.Logs.Sources
			if len(s) != 2 || s[0].Name != "app" || s[1].Name != "nginx" || s[1].Type != "file" {
				t.Errorf("sources = %+v", s)
			}
		}},
		{"other lists replace", []string{"logs:\n  sources:\n    - name: app\n      exclude: ['*.gz']\n", "logs:\n  sources:\n    - name: app\n      exclude: ['*.1']\n"}, func(t *testing.T, c *Config) {
			if got := c.Logs.Sources[0].Exclude; len(got) != 1 || got[0] != "*.1" {
				t.Errorf("exclude = %q, want the last overlay's list", got)
			}
		}},
		{"null removes", []string{"exporters:\n  otlp: null\n"}, func(t *testing.T, c *Config) {
			if c.Exporters.OTLP != nil {
				t.Errorf("exporters.otlp still set")
			}
		}},
		{"later overlay wins", []string{"identity: {service: a}\n", "identity: {service: b}\n"}, func(t *testing.T, c *Config) {
			if c.Identity.Service != "b" {
				t.Errorf("service = %q, want b", c.Identity.Service)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			layers := []Layer{{Name: "base.yaml", Data: []byte(overlayBase)}}
			for i, o := range tc.overlays {
				layers = append(layers, Layer{Name: "overlay" + string(rune('1'+i)) + ".yaml", Data: []byte(o)})
			}
			cfg, err := ParseLayers(layers)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestParseLayersProblems(t *testing.T) {
	cases := []struct {
		name    string
		overlay string
		want    []string
	}{
		{"yaml error", "exporters:\n  loki: [\n", []string{"overlay.yaml: invalid YAML", "line"}},
		{"unknown key", "exporters:\n  loki:\n    tenant: a\n", []string{"overlay.yaml: exporters.loki.tenant: unknown key (line 3)"}},
		{"wrong type", "logs:\n  sources:\n    - name: app\n      max_line_bytes: lots\n", []string{"overlay.yaml: logs.sources[0].max_line_bytes:"}},
		{"invalid value", "exporters:\n  loki:\n    timeout: -1s\n", []string{"exporters.loki.timeout:", "(set by overlay overlay.yaml, line 3)"}},
		{"invalid value in appended source", "logs:\n  sources:\n    - name: more\n      path: relative.log\n", []string{"logs.sources[1].path:", "(set by overlay overlay.yaml, line 4)"}},
		{"item without key", "logs:\n  sources:\n    - path: /var/log/x.log\n", []string{"overlay.yaml: logs.sources[0] (line 3): an overlay's item of logs.sources needs its name"}},
		{"not a mapping", "- a\n", []string{"overlay.yaml: line 1: an overlay is a mapping"}},
		{"alias", "a: &x 1\nb: *x\n", []string{"overlay.yaml", "anchor &x is not supported"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLayers([]Layer{{"base.yaml", []byte(overlayBase)}, {"overlay.yaml", []byte(tc.overlay)}})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseLayersSecretNotShown(t *testing.T) {
	_, err := ParseLayers([]Layer{{"base.yaml", []byte(overlayBase)}, {"o.yaml", []byte("exporters:\n  otlp:\n    headers: {Authorization: [hunter2-secret]}\n")}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error = %v; want one that does not show the value", err)
	}
}

func TestReadLayers(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	over := filepath.Join(dir, "over.yaml")
	if err := os.WriteFile(base, []byte(overlayBase), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := ReadLayers(base, []OverlayFile{{Path: missing}}); err == nil || !strings.Contains(err.Error(), "overlay "+missing+" does not exist") {
		t.Errorf("missing overlay: %v", err)
	}
	layers, err := ReadLayers(base, []OverlayFile{{Path: missing, Optional: true}})
	if err != nil || len(layers) != 1 {
		t.Errorf("missing optional overlay: %d layers, %v", len(layers), err)
	}
	if err := os.WriteFile(over, []byte("identity: {service: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadLayers(base, []OverlayFile{{Path: over, Optional: true}})
	if err != nil || cfg.Identity.Service != "x" {
		t.Fatalf("LoadLayers: %v", err)
	}
	a, _ := ReadLayers(base, []OverlayFile{{Path: over}})
	b, _ := ReadLayers(base, []OverlayFile{{Path: over}})
	if !LayersEqual(a, b) || LayersEqual(a, a[:1]) {
		t.Error("LayersEqual wrong")
	}
	many := make([]OverlayFile, MaxOverlays+1)
	if _, err := ReadLayers(base, many); err == nil || !strings.Contains(err.Error(), "at most 8") {
		t.Errorf("too many overlays: %v", err)
	}
}

func FuzzParseLayers(f *testing.F) {
	f.Add("exporters:\n  loki:\n    labels: {a: b}\n")
	f.Add("logs:\n  sources:\n    - name: app\n      path: /x\n")
	f.Add("exporters: ~\n")
	f.Add("[1, 2]")
	f.Fuzz(func(t *testing.T, overlay string) {
		cfg, err := ParseLayers([]Layer{{"base.yaml", []byte(overlayBase)}, {"o.yaml", []byte(overlay)}})
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

// TestOverlayDocExamples merges each example of docs/configuration.md's "Overlays"
// section over a base, so the examples stay valid.
func TestOverlayDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "\n## Overlays\n")
	if start < 0 {
		t.Fatal("docs/configuration.md has no Overlays section")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	examples := strings.Split(section, "```yaml\n")[1:]
	if len(examples) < 3 {
		t.Fatalf("%d examples in the Overlays section, want at least 3", len(examples))
	}
	for i, ex := range examples {
		body, _, _ := strings.Cut(ex, "```")
		cfg, err := ParseLayers([]Layer{{"base.yaml", []byte(overlayBase)}, {"example.yaml", []byte(body)}})
		if err != nil {
			t.Errorf("example %d does not merge: %v\n%s", i+1, err, body)
			continue
		}
		if i == 2 && cfg.Exporters.OTLP != nil {
			t.Errorf("example 3 should turn exporters.otlp off")
		}
	}
}
