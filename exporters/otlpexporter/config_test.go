package otlpexporter

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/exporters/exporterhelper"
	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/internal/tlsconfig"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Endpoint: "http://tempo:4317"}
	c.ApplyDefaults()
	if c.Protocol != ProtocolGRPC || c.Compression != CompressionGzip || c.Timeout != 10*time.Second ||
		c.MaxSpans != 8192 || c.Concurrency != 2 || c.Batch.MaxBytes != exporterhelper.DefaultMaxBytes ||
		c.Retry.InitialInterval != exporterhelper.DefaultInitialInterval {
		t.Fatalf("defaults %+v", c)
	}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(*Config)
		want   []string // problems, by substring; none means valid
		secret string   // must not appear in the problems
	}{
		{"grpc plaintext", func(c *Config) {}, nil, ""},
		{"grpc TLS", func(c *Config) { c.Endpoint = "https://tempo.example.com:443"; c.TLS.CAFile = caFile }, nil, ""},
		{"http without path", func(c *Config) { c.Protocol = ProtocolHTTP; c.Endpoint = "http://tempo:4318" }, nil, ""},
		{"http with path", func(c *Config) { c.Protocol = ProtocolHTTP; c.Endpoint = "https://otlp.example.com/otlp/v1/traces" }, nil, ""},
		{"missing endpoint", func(c *Config) { c.Endpoint = "" }, []string{"endpoint: is required, e.g. http://tempo:4317"}, ""},
		{"no scheme", func(c *Config) { c.Endpoint = "tempo:4317" }, []string{"endpoint: \"tempo:4317\" must start with http:// (plaintext) or https:// (TLS)"}, ""},
		{"grpc path", func(c *Config) { c.Endpoint = "http://tempo:4317/v1/traces" }, []string{"has a path", "protocol: http"}, ""},
		{"grpc no port", func(c *Config) { c.Endpoint = "http://tempo" }, []string{"has no port"}, ""},
		{"credentials in URL", func(c *Config) { c.Endpoint = "http://user:hunter2@tempo:4317" }, []string{"must not carry credentials"}, "hunter2"},
		{"no host", func(c *Config) { c.Endpoint = "http://:4317" }, []string{"has no host"}, ""},
		{"tls with plaintext", func(c *Config) { c.TLS = tlsconfig.Config{CAFile: caFile} }, []string{"tls: is set but endpoint http://tempo:4317 is plaintext"}, ""},
		{"bad protocol", func(c *Config) { c.Protocol = "http/protobuf" }, []string{`protocol: must be "grpc" or "http"`}, ""},
		{"bad compression", func(c *Config) { c.Compression = "zstd" }, []string{`compression: must be "gzip" or "none", got "zstd"`}, ""},
		{"header with newline", func(c *Config) { c.Headers = map[string]confval.Secret{"Authorization": "Bearer abc\r\nX-Evil: 1"} },
			[]string{`headers: the value of header "Authorization" holds a line break`}, "Bearer abc"},
		{"bad header name", func(c *Config) { c.Headers = map[string]confval.Secret{"X Tenant": "a"} }, []string{`invalid header name "X Tenant"`}, ""},
		{"reserved header", func(c *Config) { c.Headers = map[string]confval.Secret{"Content-Encoding": "br"} }, []string{`header "Content-Encoding" is set by the exporter`}, ""},
		{"grpc header", func(c *Config) { c.Headers = map[string]confval.Secret{"grpc-timeout": "1S"} }, []string{`header "grpc-timeout" is set by the exporter`}, ""},
		{"headers differing in case", func(c *Config) { c.Headers = map[string]confval.Secret{"X-Scope-OrgID": "a", "x-scope-orgid": "b"} }, []string{"differ only in case"}, ""},
		{"limits", func(c *Config) { c.MaxSpans = -1; c.Concurrency = 100; c.Timeout = -1 }, []string{"max_spans: must be positive", "concurrency: must be between", "timeout: must be positive"}, ""},
		{"batch and retry", func(c *Config) { c.Batch.MaxPendingBytes = 1; c.Retry.MaxElapsed = -1 }, []string{"batch.max_pending_bytes", "retry.max_elapsed"}, ""},
		{"tls file", func(c *Config) { c.Endpoint = "https://tempo:4317"; c.TLS.CAFile = "/nonexistent/ca.pem" }, []string{"tls.ca_file: cannot read"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Endpoint: "http://tempo:4317"}
			tt.edit(&c)
			c.ApplyDefaults()
			var p confval.Problems
			c.Validate(&p)
			err := p.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate passed, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems %q lack %q", err, w)
				}
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("problems %q reveal a secret", err)
			}
			if _, nerr := New(c, Settings{}); nerr == nil || !confval.IsConfigError(nerr) {
				t.Errorf("New = %v, want the configuration error", nerr)
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		raw, protocol string
		want          endpoint
	}{
		{"http://tempo:4317", ProtocolGRPC, endpoint{target: "tempo:4317"}},
		{"https://tempo:443/", ProtocolGRPC, endpoint{tls: true, target: "tempo:443"}},
		{"HTTPS://[::1]:4317", ProtocolGRPC, endpoint{tls: true, target: "[::1]:4317"}},
		{"http://tempo:4318", ProtocolHTTP, endpoint{url: "http://tempo:4318/v1/traces"}},
		{"https://tempo/", ProtocolHTTP, endpoint{tls: true, url: "https://tempo/v1/traces"}},
		{"http://gw:8080/tempo/otlp/v1/traces?x=1", ProtocolHTTP, endpoint{url: "http://gw:8080/tempo/otlp/v1/traces?x=1"}},
	}
	for _, tt := range tests {
		got, err := parseEndpoint(tt.raw, tt.protocol, tracesSignal)
		if err != nil || got != tt.want {
			t.Errorf("parseEndpoint(%q, %s) = %+v, %v; want %+v", tt.raw, tt.protocol, got, err, tt.want)
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"http://tempo:4317", "https://u:p@h:1/x", "http://[::1", "https://tempo/", "http://:0", "http://h:1/#f"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, grpc bool) {
		protocol := ProtocolHTTP
		if grpc {
			protocol = ProtocolGRPC
		}
		ep, err := parseEndpoint(raw, protocol, tracesSignal)
		if err != nil {
			return
		}
		if grpc && (ep.target == "" || ep.url != "") || !grpc && (ep.url == "" || ep.target != "") {
			t.Fatalf("parseEndpoint(%q, %s) = %+v", raw, protocol, ep)
		}
		if !grpc {
			u, err := url.Parse(ep.url)
			if err != nil || u.User != nil || u.Host == "" || u.Path == "" {
				t.Fatalf("parseEndpoint(%q) gave URL %q (%v): unparsable, with credentials, or without host or path", raw, ep.url, err)
			}
		}
	})
}

// TestMetricsConfig: the metrics exporter defaults to OTLP/HTTP, keeps a URL with a
// path as it is (Prometheus' and Mimir's OTLP paths), appends /v1/metrics to one
// without, and reports its own field names and examples.
func TestMetricsConfig(t *testing.T) {
	c := MetricsConfig{Endpoint: "http://prometheus:9090/api/v1/otlp/v1/metrics"}
	c.ApplyDefaults()
	if c.Protocol != ProtocolHTTP || c.Compression != CompressionGzip || c.MaxDataPoints != DefaultMaxDataPoints ||
		c.Timeout != 10*time.Second || c.Concurrency != 2 || c.Batch.MaxBytes != exporterhelper.DefaultMaxBytes {
		t.Fatalf("defaults %+v", c)
	}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for raw, want := range map[string]string{
		"http://prometheus:9090/api/v1/otlp/v1/metrics": "http://prometheus:9090/api/v1/otlp/v1/metrics",
		"https://mimir.example.com/otlp/v1/metrics":     "https://mimir.example.com/otlp/v1/metrics",
		"http://otel-collector:4318":                    "http://otel-collector:4318/v1/metrics",
	} {
		ep, err := parseEndpoint(raw, ProtocolHTTP, metricsSignal)
		if err != nil || ep.url != want {
			t.Errorf("%s: %q, %v; want %s", raw, ep.url, err, want)
		}
	}
	bad := MetricsConfig{MaxDataPoints: -1}
	bad.ApplyDefaults()
	p = confval.Problems{}
	bad.Validate(&p)
	err := p.Err()
	for _, want := range []string{"max_data_points: must be positive", "endpoint: is required, e.g. http://prometheus:9090/api/v1/otlp/v1/metrics"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems %v lack %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "max_spans") {
		t.Errorf("problems %v name the trace exporter's max_spans", err)
	}
}

// fill sets every field reachable in v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(3)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(3)
	case reflect.Float64:
		v.SetFloat(3)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	}
}

// TestMetricsConfigCarriesEveryField: MetricsConfig has the trace Config's keys
// (max_data_points for max_spans), and its conversion to the shared Config and back
// keeps every one, so a key added to both is not silently dropped.
func TestMetricsConfigCarriesEveryField(t *testing.T) {
	keys := func(typ reflect.Type, rename map[string]string) []string {
		var out []string
		for i := range typ.NumField() {
			k := typ.Field(i).Tag.Get("yaml")
			if r, ok := rename[k]; ok {
				k = r
			}
			out = append(out, k)
		}
		return sorted(out)
	}
	if tk, mk := keys(reflect.TypeFor[Config](), nil), keys(reflect.TypeFor[MetricsConfig](), map[string]string{"max_data_points": "max_spans"}); !reflect.DeepEqual(tk, mk) {
		t.Fatalf("keys differ:\n traces  %v\n metrics %v", tk, mk)
	}
	var m MetricsConfig
	fill(reflect.ValueOf(&m).Elem())
	if back := metricsConfigOf(m.config()); !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip lost fields:\n %+v\n %+v", m, back)
	}
}
