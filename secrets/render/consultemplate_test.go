package render

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	ctdep "github.com/hashicorp/consul-template/dependency"
	cttemplate "github.com/hashicorp/consul-template/template"
)

func consulEngine(c *FileConfig) { c.TemplateEngine = EngineConsulTemplate }

// vaultK8sDocSecrets are the secrets of the vault-k8s documentation's examples: a KV
// v2 secret with its metadata (as Vault answers, custom_metadata null) and database
// credentials with a lease.
func vaultK8sDocSecrets() map[string]*Secret {
	return map[string]*Secret{
		"internal/data/database/config": {Data: map[string]any{
			"data": map[string]any{"password": "db-secret-password", "username": "db-readonly-user"},
			"metadata": map[string]any{"created_time": "2019-12-20T18:17:50.930264759Z", "custom_metadata": nil,
				"deletion_time": "", "destroyed": false, "version": json.Number("2")},
		}},
		"database/creds/db-app": {
			Data:    map[string]any{"username": "v-kubernet-db-app-QDqHiXX6mhJi", "password": "A1a-SkLqt8aKdQGrz7Lr"},
			LeaseID: "database/creds/db-app/xyz", LeaseDuration: 3600, Renewable: true,
		},
		"secret/data/web": {Data: map[string]any{
			"data":     map[string]any{"payments_api_key": "1a2b3c4d5e6f", "config": `{"pool": 5, "hosts": ["a", "b"]}`},
			"metadata": map[string]any{"version": json.Number("1")},
		}},
		"pki/issue/web common_name=web.svc": {Data: map[string]any{
			"certificate": "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
			"private_key": "-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----",
			"issuing_ca":  "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----",
		}},
	}
}

func TestConsulTemplateVaultAgentTemplates(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{
			// vault-k8s's default ("map") template on a KV v2 secret: the file the
			// vault-k8s tutorial shows.
			"vault-k8s default map template",
			"{{ with secret \"internal/data/database/config\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}",
			"data: map[password:db-secret-password username:db-readonly-user]\n" +
				"metadata: map[created_time:2019-12-20T18:17:50.930264759Z custom_metadata:<nil> deletion_time: destroyed:false version:2]\n",
		},
		{
			"vault-k8s default json template",
			"{{ with secret \"internal/data/database/config\" }}{{ .Data | toJSON }}\n{{ end }}",
			`{"data":{"password":"db-secret-password","username":"db-readonly-user"},"metadata":{"created_time":"2019-12-20T18:17:50.930264759Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":2}}` + "\n",
		},
		{
			"database connection string",
			"{{- with secret \"database/creds/db-app\" -}}\npostgresql://{{ .Data.username }}:{{ .Data.password }}@postgres:5432/wizard\n{{- end }}\n",
			"postgresql://v-kubernet-db-app-QDqHiXX6mhJi:A1a-SkLqt8aKdQGrz7Lr@postgres:5432/wizard\n",
		},
		{
			"export for a shell",
			"{{ with secret \"secret/data/web\" -}}\n  export api_key=\"{{ .Data.data.payments_api_key }}\"\n{{- end }}",
			"export api_key=\"1a2b3c4d5e6f\"",
		},
		{
			"parseJSON, index and indent",
			"{{ with secret \"secret/data/web\" }}{{ $c := .Data.data.config | parseJSON }}pool: {{ $c.pool }}\nhosts:\n{{ $c.hosts | toYAML | indent 2 }}{{ end }}",
			"pool: 5\nhosts:\n  - a\n  - b",
		},
		{
			"sprig functions",
			`{{ with secret "secret/data/web" }}{{ .Data.data.payments_api_key | sprig_upper | sprig_trunc 4 }}{{ end }}`,
			"1A2B",
		},
		{
			"pkiCert",
			`{{ with pkiCert "pki/issue/web" "common_name=web.svc" }}{{ .Cert }}{{ .Key }}{{ end }}`,
			"-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE----------BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----",
		},
		{
			"lease fields",
			`{{ with secret "database/creds/db-app" }}{{ .LeaseID }} {{ .LeaseDuration }} {{ .Renewable }}{{ end }}`,
			"database/creds/db-app/xyz 3600 true",
		},
		{
			"missing key renders as Vault Agent does",
			`{{ with secret "secret/data/web" }}[{{ .Data.data.nope }}]{{ end }}`,
			"[<no value>]",
		},
		{
			"env functions",
			`{{ env "OUTRIDER_CT_TEST_SET" }}|{{ envOrDefault "OUTRIDER_CT_TEST_EMPTY" "d" }}|{{ envOrDefault "OUTRIDER_CT_TEST_UNSET" "d" }}|{{ mustEnv "OUTRIDER_CT_TEST_SET" }}`,
			"value||d|value",
		},
		{
			"timestamp with a fixed layout",
			`{{ timestamp "2006" | len }}`,
			"4",
		},
	}
	t.Setenv("OUTRIDER_CT_TEST_SET", "value")
	t.Setenv("OUTRIDER_CT_TEST_EMPTY", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &mapFetcher{secrets: vaultK8sDocSecrets()}
			tm := mustTemplate(t, tt.text, consulEngine, missingKeyOff)
			got, _, err := tm.Render(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestConsulTemplateSameAsVaultAgent renders each template twice: with outrider's
// bindings, and with consul-template's own functions fed from a Brain, as Vault Agent
// runs them. The bytes must match.
func TestConsulTemplateSameAsVaultAgent(t *testing.T) {
	for _, text := range []string{
		"{{ with secret \"internal/data/database/config\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}",
		"{{ with secret \"internal/data/database/config\" }}{{ .Data | toJSON }}\n{{ end }}",
		"{{ with secret \"internal/data/database/config\" }}{{ .Data.data | toJSONPretty }}{{ .Data.metadata | toYAML }}{{ end }}",
		"{{- with secret \"database/creds/db-app\" -}}{{ .Data.username }}:{{ .Data.password }}{{ end }}",
	} {
		secrets := vaultK8sDocSecrets()
		f := &mapFetcher{secrets: secrets}
		ours, _, err := mustTemplate(t, text, consulEngine, missingKeyOff).Render(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		theirs := renderWithBrain(t, text, secrets)
		if string(ours) != string(theirs) {
			t.Errorf("template %q:\noutrider:      %q\nconsul-template: %q", text, ours, theirs)
		}
	}
}

// renderWithBrain runs text the way a consul-template runner does: execute, answer
// the missing dependencies in the Brain, execute again.
func renderWithBrain(t *testing.T, text string, secrets map[string]*Secret) []byte {
	t.Helper()
	ct, err := cttemplate.NewTemplate(&cttemplate.NewTemplateInput{Contents: text})
	if err != nil {
		t.Fatal(err)
	}
	brain := cttemplate.NewBrain()
	for range 3 {
		res, err := ct.Execute(&cttemplate.ExecuteInput{Brain: brain})
		if err != nil {
			t.Fatal(err)
		}
		if res.Missing.Len() == 0 {
			return res.Output
		}
		for _, d := range res.Missing.List() {
			// "vault.read(PATH)"
			p := strings.TrimSuffix(strings.TrimPrefix(d.String(), "vault.read("), ")")
			s, ok := secrets[p]
			if !ok {
				t.Fatalf("no test secret for %s", d)
			}
			brain.Remember(d, toDepSecret(s))
		}
	}
	t.Fatal("dependencies never satisfied")
	return nil
}

func TestConsulTemplateRefusedFunctions(t *testing.T) {
	tests := []struct{ text, want string }{
		{`{{ key "app/config" }}`, "line 1, column 3: function key reads Consul"},
		{"x\n{{ range services }}{{ . }}{{ end }}", "line 2, column 9: function services reads Consul"},
		{`{{ file "/var/run/secrets/kubernetes.io/serviceaccount/token" }}`, "function file reads the sidecar's own disk"},
		{`{{ plugin "sh" "-c" "id" }}`, "function plugin runs a program"},
		{`{{ with secret "a" }}{{ .Data.x | writeToFile "/tmp/x" "" "" "0644" }}{{ end }}`, "function writeToFile writes files"},
		{`{{ range secrets "secret/" }}{{ . }}{{ end }}`, "function secrets lists Vault paths"},
		{`{{ if true }}{{ else }}{{ nomadVar "x" }}{{ end }}`, "function nomadVar reads Nomad"},
		{`{{ nosuch "x" }}`, `function "nosuch" not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := NewTemplate(FileConfig{Path: "/vault/secrets/x", Template: tt.text, TemplateEngine: EngineConsulTemplate})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "template: ") {
				t.Errorf("error %q does not name the field", err)
			}
		})
	}
}

func TestConsulTemplateConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  FileConfig
		want string
	}{
		{FileConfig{Path: "/s/x", Source: "kv/app", TemplateEngine: EngineConsulTemplate}, "template_engine: applies only to template"},
		{FileConfig{Path: "/s/x", Template: "x", TemplateEngine: "gomplate"}, `template_engine: must be "outrider" (the default) or "consul-template", got "gomplate"`},
		{FileConfig{Path: "/s/x", Template: "{{ with }}{{ end }}", TemplateEngine: EngineConsulTemplate}, "template: line 1: missing value for with"},
		{FileConfig{Path: "/s/x", TemplateFile: "/nonexistent/t.ctmpl", TemplateEngine: EngineConsulTemplate}, "template_file: cannot read the template"},
	}
	for _, tt := range tests {
		_, err := NewTemplate(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestConsulTemplateErrorsHideValues(t *testing.T) {
	secrets := map[string]*Secret{"kv/app": {Data: map[string]any{"password": canary, "n": json.Number("3")}}}
	tests := []struct {
		name, text string
		want       string
		is         error
	}{
		{"not found", `{{ with secret "kv/none" }}{{ end }}`, `secret "kv/none": no secret at this path`, ErrNotFound},
		{"missing key", `{{ with secret "kv/app" }}{{ .Data.nope }}{{ end }}`, `the secret has no key "nope"`, ErrMissingKey},
		{"bad json", `{{ with secret "kv/app" }}{{ .Data.password | parseJSON }}{{ end }}`, withheldNote, nil},
		{"vault env", `{{ env "VAULT_TOKEN" }}`, "VAULT_* variables hold the agent's own Vault settings", nil},
		{"range over a string", `{{ with secret "kv/app" }}{{ range .Data.password }}{{ end }}{{ end }}`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &mapFetcher{secrets: secrets}
			_, _, err := mustTemplate(t, tt.text, consulEngine).Render(context.Background(), f)
			if err == nil {
				t.Fatal("rendered")
			}
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("error shows the secret: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "render /vault/secrets/out: template") {
				t.Errorf("got %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
		})
	}
}

// TestConsulTemplateDoesNotChangeTheCache checks that a template that changes a
// secret's map (sprig_set) changes its own copy only.
func TestConsulTemplateDoesNotChangeTheCache(t *testing.T) {
	secrets := vaultK8sDocSecrets()
	f := &mapFetcher{secrets: secrets}
	text := `{{ with secret "secret/data/web" }}{{ $_ := sprig_set .Data.data "payments_api_key" "changed" }}{{ .Data.data.payments_api_key }}{{ end }}`
	got, _, err := mustTemplate(t, text, consulEngine).Render(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "changed" {
		t.Fatalf("got %q", got)
	}
	if v := secrets["secret/data/web"].Data["data"].(map[string]any)["payments_api_key"]; v != "1a2b3c4d5e6f" {
		t.Fatalf("the fetched secret was changed to %v", v)
	}
}

// TestConsulTemplateFuncNames checks that ctFuncs and ctDenied name functions
// consul-template has: a template calling an unknown one does not parse.
func TestConsulTemplateFuncNames(t *testing.T) {
	names := append([]string(nil), ctFuncs...)
	for n := range ctDenied {
		names = append(names, n)
	}
	for _, n := range names {
		ct, err := cttemplate.NewTemplate(&cttemplate.NewTemplateInput{Contents: "{{ if false }}{{ " + n + " }}{{ end }}"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ct.Execute(&cttemplate.ExecuteInput{Brain: cttemplate.NewBrain()}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func toDepSecret(s *Secret) *ctdep.Secret {
	return &ctdep.Secret{LeaseID: s.LeaseID, LeaseDuration: s.LeaseDuration, Renewable: s.Renewable, Data: s.Data}
}

// FuzzConsulTemplateParse feeds arbitrary templates (they come from pod annotations)
// to the configuration check: it must answer, never panic, and accept nothing that
// uses a refused function.
func FuzzConsulTemplateParse(f *testing.F) {
	for _, s := range []string{
		"{{ with secret \"a/b\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}",
		"{{ define \"x\" }}{{ key \"a\" }}{{ end }}{{ template \"x\" }}",
		"{{ if (file \"/etc/passwd\") }}{{ end }}",
		"{{ .Data | toJSON | sprig_b64enc }}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		err := parseConsulTemplate("/vault/secrets/x", text)
		if err != nil {
			return
		}
		for name := range ctDenied {
			if strings.Contains(text, name+" ") && strings.Contains(text, "{{"+" "+name+" ") {
				t.Fatalf("accepted %q, which calls %s", text, name)
			}
		}
	})
}

// BenchmarkRenderConsulTemplate is BenchmarkRender's template executed by the
// consul-template engine (which parses it at every render, as consul-template does).
func BenchmarkRenderConsulTemplate(b *testing.B) {
	tm := mustTemplate(b, typicalTemplate, consulEngine)
	f := &cachedFetcher{secrets: testSecrets()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, deps, err := tm.Render(ctx, f)
		if err != nil || len(out) == 0 || len(deps) != 3 {
			b.Fatal(err)
		}
	}
}
