package render

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const canary = "s3cr3t-Canary-9f2c"

// testSecrets covers the shapes Vault returns: KV v1, KV v2, a dynamic secret with a
// lease, a PKI issue response.
func testSecrets() map[string]*Secret {
	return map[string]*Secret{
		"kv/app": {Data: map[string]any{"password": canary, "user": "app", "port": json.Number("5432")}},
		"secret/data/app": {Data: map[string]any{
			"data":     map[string]any{"password": canary, "api_key": "k-123"},
			"metadata": map[string]any{"version": json.Number("3"), "created_time": "2025-01-01T00:00:00Z", "deletion_time": "", "destroyed": false},
		}},
		"database/creds/app": {
			Data:          map[string]any{"username": "v-app-x1", "password": canary},
			LeaseID:       "database/creds/app/abc",
			LeaseDuration: 3600,
			Renewable:     true,
		},
		"pki/issue/web common_name=web.svc": {Data: map[string]any{
			"certificate":   "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
			"private_key":   "-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----",
			"issuing_ca":    "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----",
			"ca_chain":      []any{"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----", "ROOT"},
			"serial_number": "1a:2b",
		}},
	}
}

func TestRenderSecretShapes(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"kv v1", `{{ with secret "kv/app" }}{{ .Data.user }}:{{ .Data.password }}@{{ .Data.port }}{{ end }}`, "app:" + canary + "@5432"},
		{"kv v2", `{{ with secret "secret/data/app" }}{{ .Data.data.password }} v{{ .Data.metadata.version }}{{ end }}`, canary + " v3"},
		{"dynamic", `{{ with secret "database/creds/app" }}{{ .Data.username }} {{ .LeaseID }} {{ .LeaseDuration }} {{ .Renewable }}{{ end }}`, "v-app-x1 database/creds/app/abc 3600 true"},
		{"as a value", `{{ (secret "kv/app").Data.user }}`, "app"},
		{"assigned", `{{ $s := secret "secret/data/app" }}{{ $s.Data.data.api_key }}`, "k-123"},
		{"write", `{{ with secret "pki/issue/web" "common_name=web.svc" }}{{ .Data.serial_number }}{{ end }}`, "1a:2b"},
		{"define and template", `{{ define "u" }}{{ .Data.user }}{{ end }}{{ template "u" (secret "kv/app") }}`, "app"},
		{"range over data", `{{ with secret "kv/app" }}{{ range $k, $v := .Data }}{{ $k }};{{ end }}{{ end }}`, "password;port;user;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &mapFetcher{secrets: testSecrets()}
			got, _, err := mustTemplate(t, tt.text).Render(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderDependencies(t *testing.T) {
	const text = `{{ with secret "kv/app" }}A={{ .Data.user }}{{ end }}
{{ with secret "database/creds/app" }}U={{ .Data.username }}{{ end }}
{{ with pkiCert "pki/issue/web" "common_name=web.svc" }}{{ .Cert }}{{ end }}
{{ with secret "kv/app" }}again={{ .Data.user }}{{ end }}
{{ with secret "pki/issue/web" "common_name=web.svc" }}{{ .Data.private_key }}{{ end }}
{{ (pkiCert "pki/issue/web" "common_name=web.svc").Key }}`
	f := &mapFetcher{secrets: testSecrets()}
	out, deps, err := mustTemplate(t, text).Render(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependency{
		{Path: "kv/app"},
		{Path: "database/creds/app"},
		{Path: "pki/issue/web", Args: []string{"common_name=web.svc"}},
	}
	if !reflect.DeepEqual(deps, want) {
		t.Errorf("deps = %+v, want %+v", deps, want)
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("fetcher calls = %+v, want one per dependency %+v", f.calls, want)
	}
	key := "-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----"
	if strings.Count(string(out), key) != 2 {
		t.Errorf("the certificate's key should appear twice, from one issue:\n%s", out)
	}

	// A second render asks again: caching across renders is the Fetcher's business.
	if _, deps2, err := mustTemplate(t, text).Render(context.Background(), f); err != nil || len(deps2) != 3 || len(f.calls) != 6 {
		t.Errorf("second render: deps=%v calls=%d err=%v", deps2, len(f.calls), err)
	}
}

func TestRenderMissingKey(t *testing.T) {
	tests := []struct {
		name, text string
		off        bool
		want       string // output when off, error substring when on
	}{
		{"v1 on", "line 1\n{{ with secret \"kv/app\" }}{{ .Data.passwd }}{{ end }}", false, `line 2, column 34 at <.Data.passwd>: the secret has no key "passwd"`},
		{"v2 on", `{{ with secret "secret/data/app" }}{{ .Data.data.nope }}{{ end }}`, false, `at <.Data.data.nope>: the secret has no key "nope"; check the name (KV v2 keys are under .Data.data)`},
		{"v2 path mistaken for v1", `{{ with secret "secret/data/app" }}{{ .Data.password }}{{ end }}`, false, `the secret has no key "password"`},
		{"v1 off", `{{ with secret "kv/app" }}[{{ .Data.passwd }}]{{ end }}`, true, "[<no value>]"},
		{"index never fails", `{{ with secret "kv/app" }}[{{ index .Data "passwd" | default "none" }}]{{ end }}`, false, "[none]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*FileConfig)
			if tt.off {
				opts = append(opts, missingKeyOff)
			}
			out, _, err := mustTemplate(t, tt.text, opts...).Render(context.Background(), &mapFetcher{secrets: testSecrets()})
			if strings.HasPrefix(tt.want, "[") {
				if err != nil || string(out) != tt.want {
					t.Fatalf("got %q, %v; want %q", out, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("rendered %q, want an error", out)
			}
			if !errors.Is(err, ErrMissingKey) {
				t.Errorf("%v does not wrap ErrMissingKey", err)
			}
			msg := err.Error()
			for _, w := range []string{"render /vault/secrets/out:", tt.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, canary) {
				t.Errorf("error reveals a secret value: %s", msg)
			}
		})
	}
}

// TestRenderErrorsNeverShowValues drives text/template into the errors whose own
// messages print the value being evaluated, and checks the rebuilt error keeps the
// location but not the value.
func TestRenderErrorsNeverShowValues(t *testing.T) {
	secrets := testSecrets()
	secrets["kv/odd"] = &Secret{Data: map[string]any{
		"password": canary,
		"nested":   map[string]any{"x": canary},
		"list":     []any{canary},
		"num":      json.Number("982451653"),
	}}
	t.Setenv("OUTRIDER_TEST_SECRET_ENV", canary)
	tests := []struct {
		name, text string
		want       []string
	}{
		{"range over a string", `{{ with secret "kv/odd" }}{{ range .Data.password }}x{{ end }}{{ end }}`,
			[]string{"line 1, column 40 at <.Data.password>:", "withheld"}},
		{"range over a number", `{{ with secret "kv/odd" }}{{ range $i, $c := .Data.num }}x{{ end }}{{ end }}`,
			[]string{"at <.Data.num>:", "withheld"}},
		{"non-comparable map", `{{ with secret "kv/odd" }}{{ eq .Data.nested .Data.nested }}{{ end }}`,
			[]string{"at <eq .Data.nested .Data.nested>:", "withheld"}},
		{"index out of range from a value", `{{ with secret "kv/odd" }}{{ index .Data.list (len .Data.password) }}{{ end }}`,
			[]string{"at <index .Data.list (len .Data.password)>", "withheld"}},
		{"call on a value", `{{ with secret "kv/odd" }}{{ call .Data.password }}{{ end }}`, []string{"withheld"}},
		{"secret path from a value", `{{ with secret "kv/odd" }}{{ secret .Data.password }}{{ end }}`,
			[]string{`at <secret .Data.password>: secret "[redacted]": no secret at this path`}},
		{"env value as path", `{{ secret (env "OUTRIDER_TEST_SECRET_ENV") }}`, []string{`secret "[redacted]"`}},
		{"base64 of a value", `{{ with secret "kv/odd" }}{{ base64Decode .Data.password }}{{ end }}`,
			[]string{"base64Decode: not valid base64 (standard alphabet) at byte"}},
		{"field of a string", `{{ with secret "kv/odd" }}{{ .Data.password.inner }}{{ end }}`,
			[]string{"can't evaluate field inner in type interface {}"}},
		{"wrong arg count", `{{ with secret "kv/odd" }}{{ toUpper .Data.password "x" }}{{ end }}`,
			[]string{"wrong number of args for toUpper: want 1 got 2"}},
		{"comparison of types", `{{ with secret "kv/odd" }}{{ lt .Data.password 3 }}{{ end }}`,
			[]string{"error calling lt: incompatible types for comparison: string and int"}},
		{"join of a string", `{{ with secret "kv/odd" }}{{ .Data.password | join "," }}{{ end }}`,
			[]string{"join: expected a list, got a string"}},
		{"not a template", `{{ template "nope" }}`, []string{`template "nope" not defined`}},
		{"top-level dot", `{{ .Data.password }}`, []string{"no data for \"Data\"; fields such as .Data exist only inside {{ with secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := mustTemplate(t, tt.text).Render(context.Background(), &mapFetcher{secrets: secrets})
			if err == nil {
				t.Fatalf("rendered %q, want an error", out)
			}
			msg := err.Error()
			for _, leak := range []string{canary, "982451653", "18" /* len(canary) */} {
				if strings.Contains(msg, leak) {
					t.Errorf("error reveals %q: %s", leak, msg)
				}
			}
			for _, w := range append([]string{"render /vault/secrets/out: "}, tt.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error spans lines: %q", msg)
			}
		})
	}
}

func TestRenderFetchErrors(t *testing.T) {
	denied := errors.New("vault: 403 permission denied on kv/locked; check the policy of role web")
	f := &mapFetcher{secrets: testSecrets(), errs: map[string]error{"kv/locked": denied}}
	ctx := context.Background()

	_, deps, err := mustTemplate(t, `{{ with secret "kv/app" }}{{ end }}{{ with secret "kv/locked" }}{{ end }}`).Render(ctx, f)
	if !errors.Is(err, denied) || !strings.Contains(err.Error(), `secret "kv/locked": vault: 403 permission denied`) {
		t.Errorf("fetch error: %v", err)
	}
	if len(deps) != 2 || deps[1].Path != "kv/locked" {
		t.Errorf("deps on failure = %+v, want both requests", deps)
	}

	_, _, err = mustTemplate(t, `{{ secret "kv/none" }}`).Render(ctx, f)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing path: %v does not wrap ErrNotFound", err)
	}

	nilFetcher := FetcherFunc(func(context.Context, string, []string) (*Secret, error) { return nil, nil })
	_, _, err = mustTemplate(t, `{{ secret "kv/app" }}`).Render(ctx, nilFetcher)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("nil secret: %v does not wrap ErrNotFound", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = mustTemplate(t, `{{ secret "kv/app" }}`).Render(cctx, f)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	_, _, err = mustTemplate(t, `{{ secret "pki/issue/web" "common_name" }}`).Render(ctx, f)
	if err == nil || !strings.Contains(err.Error(), `secret "pki/issue/web": argument 1 is not of the form key=value`) {
		t.Errorf("bad argument: %v", err)
	}
	_, _, err = mustTemplate(t, `{{ secret "" }}`).Render(ctx, f)
	if err == nil || !strings.Contains(err.Error(), "secret: empty path") {
		t.Errorf("empty path: %v", err)
	}
}

func TestRenderShortForms(t *testing.T) {
	secrets := testSecrets()
	secrets["secret/data/deleted"] = &Secret{Data: map[string]any{
		"data":     nil,
		"metadata": map[string]any{"version": json.Number("4"), "deletion_time": "2025-01-01T00:00:00Z"},
	}}
	secrets["kv/list"] = &Secret{Data: map[string]any{"hosts": []any{"a", "b<c>"}, "big": json.Number("123456789012345678901234567890"), "ratio": json.Number("0.25"), "version": "1.10"}}
	secrets["kv/lookalike"] = &Secret{Data: map[string]any{"data": map[string]any{"a": "b"}, "metadata": map[string]any{"owner": "me"}}}
	tests := []struct {
		name   string
		cfg    FileConfig
		want   string
		errHas string
	}{
		{"env v1", FileConfig{Source: "kv/app"}, "password=" + canary + "\nport=5432\nuser=app\n", ""},
		{"env v2 unwrapped", FileConfig{Source: "secret/data/app", Format: FormatEnv}, "api_key=k-123\npassword=" + canary + "\n", ""},
		{"json v2", FileConfig{Source: "secret/data/app", Format: FormatJSON}, "{\n  \"api_key\": \"k-123\",\n  \"password\": \"" + canary + "\"\n}\n", ""},
		{"yaml v1", FileConfig{Source: "kv/app", Format: FormatYAML}, "password: " + canary + "\nport: 5432\nuser: app\n", ""},
		{"properties v1", FileConfig{Source: "kv/app", Format: FormatProperties}, "password=" + canary + "\nport=5432\nuser=app\n", ""},
		{"raw string", FileConfig{Source: "secret/data/app", Key: "password"}, canary, ""},
		{"raw number", FileConfig{Source: "kv/app", Key: "port"}, "5432", ""},
		{"raw list", FileConfig{Source: "kv/list", Key: "hosts"}, `["a","b<c>"]`, ""},
		{"yaml list and big number", FileConfig{Source: "kv/list", Format: FormatYAML}, "big: 123456789012345678901234567890\nhosts:\n  - a\n  - b<c>\nratio: 0.25\nversion: \"1.10\"\n", ""},
		{"raw missing key", FileConfig{Source: "kv/app", Key: "nope"}, "", `render /vault/secrets/out: source "kv/app": the secret has no key "nope"`},
		{"raw missing key off", FileConfig{Source: "kv/app", Key: "nope", ErrorOnMissingKey: new(bool)}, "", ""},
		{"deleted v2", FileConfig{Source: "secret/data/deleted"}, "", "its latest version is deleted or destroyed"},
		{"v1 that looks like v2 is not unwrapped", FileConfig{Source: "kv/lookalike", Format: FormatJSON}, "{\n  \"data\": {\n    \"a\": \"b\"\n  },\n  \"metadata\": {\n    \"owner\": \"me\"\n  }\n}\n", ""},
		{"not found", FileConfig{Source: "kv/none"}, "", `render /vault/secrets/out: source "kv/none": no secret at this path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Path = "/vault/secrets/out"
			tm, err := NewTemplate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			f := &mapFetcher{secrets: secrets}
			out, deps, err := tm.Render(context.Background(), f)
			if !reflect.DeepEqual(deps, []Dependency{{Path: cfg.Source}}) {
				t.Errorf("deps = %+v", deps)
			}
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("error reveals a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out, tt.want)
			}
		})
	}
	_, _, err := mustShort(t, FileConfig{Source: "kv/app", Key: "nope"}).Render(context.Background(), &mapFetcher{secrets: secrets})
	if !errors.Is(err, ErrMissingKey) {
		t.Errorf("raw missing key: %v does not wrap ErrMissingKey", err)
	}
}

func mustShort(t *testing.T, cfg FileConfig) *Template {
	t.Helper()
	cfg.Path = "/vault/secrets/out"
	tm, err := NewTemplate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestRenderTemplateFile(t *testing.T) {
	p := t.TempDir() + "/db.tmpl"
	if err := os.WriteFile(p, []byte(`{{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}{{ end }}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tm, err := NewTemplate(FileConfig{Path: "/vault/secrets/db.env", TemplateFile: p})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := tm.Render(context.Background(), &mapFetcher{secrets: testSecrets()})
	if err != nil || string(out) != "DB_USER=v-app-x1\n" {
		t.Errorf("got %q, %v", out, err)
	}
	if tm.Config().TemplateFile != p || tm.Config().Mode != DefaultMode {
		t.Errorf("Config() = %+v", tm.Config())
	}
}

func TestRenderConcurrent(t *testing.T) {
	tm := mustTemplate(t, `{{ with secret "kv/app" }}{{ .Data.user | toUpper }}{{ end }}{{ env "HOME" | len }}`)
	f := &mapFetcher{secrets: testSecrets()}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				out, deps, err := tm.Render(context.Background(), f)
				if err != nil || !strings.HasPrefix(string(out), "APP") || len(deps) != 1 {
					errs <- errors.New("concurrent render went wrong: " + string(out))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
