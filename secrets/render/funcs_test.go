package render

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func funcSecrets() map[string]*Secret {
	s := testSecrets()
	s["kv/f"] = &Secret{Data: map[string]any{
		"s":       "  Hello, World  ",
		"html":    "a<b>&c",
		"b64":     "aGk/Pz4+",
		"b64raw":  "aGk",
		"b64url":  "aGk_Pz4-",
		"hosts":   []any{"a", "b", json.Number("3")},
		"csv":     "x,y,z",
		"empty":   "",
		"zero":    json.Number("0"),
		"no":      false,
		"nil":     nil,
		"map":     map[string]any{"k": "v", "n": json.Number("1.5")},
		"unicode": "日本語 ✓",
	}}
	s["pki/sign/web common_name=a"] = &Secret{Data: map[string]any{"certificate": "LEAF", "issuing_ca": "CA"}}
	s["pki/bad"] = &Secret{Data: map[string]any{"serial_number": "1"}}
	s["pki/badchain"] = &Secret{Data: map[string]any{"certificate": "LEAF", "ca_chain": "CA"}}
	return s
}

func TestFuncs(t *testing.T) {
	t.Setenv("OUTRIDER_RENDER_TEST", "from-env")
	tests := []struct {
		name, text, want string
	}{
		{"base64Encode", `{{ "hi??>>" | base64Encode }}`, "aGk/Pz4+"},
		{"base64Encode number", `{{ .Data.zero | base64Encode }}`, "MA=="},
		{"base64URLEncode", `{{ "hi??>>" | base64URLEncode }}`, "aGk_Pz4-"},
		{"base64Decode padded", `{{ .Data.b64 | base64Decode }}`, "hi??>>"},
		{"base64Decode unpadded", `{{ .Data.b64raw | base64Decode }}`, "hi"},
		{"base64URLDecode", `{{ .Data.b64url | base64URLDecode }}`, "hi??>>"},
		{"base64 round trip unicode", `{{ .Data.unicode | base64Encode | base64Decode }}`, "日本語 ✓"},
		{"toJSON map sorted, no HTML escaping", `{{ .Data.map | toJSON }}|{{ .Data.html | toJSON }}`, `{"k":"v","n":1.5}|"a<b>&c"`},
		{"toJSON list and numbers", `{{ .Data.hosts | toJSON }}`, `["a","b",3]`},
		{"toJSONPretty", `{{ .Data.map | toJSONPretty }}`, "{\n  \"k\": \"v\",\n  \"n\": 1.5\n}"},
		{"toJSON secret", `{{ secret "database/creds/app" | toJSON }}`, `{"data":{"password":"` + canary + `","username":"v-app-x1"},"lease_id":"database/creds/app/abc","lease_duration":3600,"renewable":true}`},
		{"toYAML quotes YAML 1.1 booleans", `{{ .Data.map | toYAML }}`, "k: v\n\"n\": 1.5"},
		{"toYAML list", `{{ .Data.hosts | toYAML }}`, "- a\n- b\n- 3"},
		{"toYAML string needing quotes", `{{ "yes" | toYAML }}`, `"yes"`},
		{"env", `{{ env "OUTRIDER_RENDER_TEST" }}[{{ env "OUTRIDER_RENDER_TEST_UNSET" }}]`, "from-env[]"},
		{"join", `{{ .Data.hosts | join ", " }}`, "a, b, 3"},
		{"split", `{{ range .Data.csv | split "," }}[{{ . }}]{{ end }}`, "[x][y][z]"},
		{"split empty", `{{ .Data.empty | split "," | len }}`, "0"},
		{"split then join", `{{ .Data.csv | split "," | join ";" }}`, "x;y;z"},
		{"trimSpace", `[{{ .Data.s | trimSpace }}]`, "[Hello, World]"},
		{"toUpper", `{{ .Data.unicode | toUpper }}{{ "abc" | toUpper }}`, "日本語 ✓ABC"},
		{"toLower", `{{ .Data.s | trimSpace | toLower }}`, "hello, world"},
		{"replaceAll", `{{ .Data.csv | replaceAll "," " | " }}`, "x | y | z"},
		{"contains substring", `{{ .Data.s | contains "World" }} {{ .Data.s | contains "world" }}`, "true false"},
		{"contains list element", `{{ .Data.hosts | contains "b" }} {{ .Data.hosts | contains "3" }} {{ .Data.hosts | contains "c" }}`, "true true false"},
		{"contains map key", `{{ .Data.map | contains "k" }} {{ .Data.map | contains "v" }}`, "true false"},
		{"contains nil", `{{ .Data.nil | contains "x" }}`, "false"},
		{"default on empty and nil", `{{ .Data.empty | default "d1" }} {{ .Data.nil | default "d2" }} {{ index .Data "missing" | default "d3" }}`, "d1 d2 d3"},
		{"default keeps values", `{{ .Data.zero | default "d" }} {{ .Data.no | default "d" }} {{ .Data.csv | default "d" }}`, "0 false x,y,z"},
		{"default empty list", `{{ .Data.empty | split "," | default "none" }}`, "none"},
		{"pkiCert", `{{ with pkiCert "pki/issue/web" "common_name=web.svc" }}{{ .Cert }}|{{ .Key }}|{{ .CA }}|{{ len .CAChain }}|{{ index .CAChain 1 }}{{ end }}`,
			"-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----|-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----|-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----|2|ROOT"},
		{"pkiCert sign has no key", `{{ with pkiCert "pki/sign/web" "common_name=a" }}{{ .Cert }}[{{ .Key }}]{{ .CA }}{{ len .CAChain }}{{ end }}`, "LEAF[]CA0"},
		{"printf builtin", `{{ with secret "kv/app" }}{{ printf "%s:%s" .Data.user .Data.port }}{{ end }}`, "app:5432"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := `{{ with secret "kv/f" }}` + tt.text + `{{ end }}`
			if strings.Contains(tt.text, "secret ") || strings.Contains(tt.text, "pkiCert") {
				text = tt.text
			}
			out, _, err := mustTemplate(t, text).Render(context.Background(), &mapFetcher{secrets: funcSecrets()})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
		})
	}
}

func TestFuncErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"base64Decode invalid", `{{ with secret "kv/f" }}{{ .Data.csv | base64Decode }}{{ end }}`, "base64Decode: not valid base64 (standard alphabet) at byte 1"},
		{"base64URLDecode invalid", `{{ "a+b/" | base64URLDecode }}`, "base64URLDecode: not valid base64 (URL-safe alphabet)"},
		{"join not a list", `{{ "abc" | join "," }}`, "join: expected a list, got a string"},
		{"pkiCert without certificate", `{{ pkiCert "pki/bad" }}`, `pkiCert "pki/bad": the response has no certificate; use a PKI issue or sign endpoint`},
		{"pkiCert chain not a list", `{{ pkiCert "pki/badchain" }}`, `pkiCert "pki/badchain": ca_chain is a string, not a list`},
		{"pkiCert bad argument", `{{ pkiCert "pki/issue/web" "=x" }}`, `pkiCert "pki/issue/web": argument 1 is not of the form key=value`},
		{"wrong type", `{{ split 1 "a" }}`, "at <1>: expected string; found 1"},
		{"wrong type of value", `{{ with secret "kv/f" }}{{ split .Data.zero "a" }}{{ end }}`, "wrong type for value; expected string; got json.Number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := mustTemplate(t, tt.text).Render(context.Background(), &mapFetcher{secrets: funcSecrets()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUnknownFunctionIsAParseError(t *testing.T) {
	_, err := NewTemplate(FileConfig{Path: "/s/x", Template: "a\nb\n{{ secret \"x\" | toXML }}"})
	if err == nil || !strings.Contains(err.Error(), `template: line 3: function "toXML" not defined`) {
		t.Errorf("err = %v", err)
	}
}

func TestTextOf(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"as is \n", "as is \n"},
		{json.Number("1e3"), "1e3"},
		{true, "true"},
		{3, "3"},
		{2.5, "2.5"},
		{[]any{"a", json.Number("1")}, `["a",1]`},
		{map[string]any{"b": "<&>", "a": nil}, `{"a":null,"b":"<&>"}`},
	}
	for _, tt := range tests {
		got, err := textOf(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("textOf(%#v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := textOf(map[string]any{"f": func() {}}); err == nil || strings.Contains(err.Error(), "0x") {
		t.Errorf("textOf(func) err = %v", err)
	}
}

func TestEnvRefusesVaultVariables(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "s.agent-token-canary")
	for _, name := range []string{"VAULT_TOKEN", "vault_addr"} {
		_, _, err := mustTemplate(t, `{{ env "`+name+`" }}`).Render(context.Background(), &mapFetcher{secrets: funcSecrets()})
		if err == nil || !strings.Contains(err.Error(), "not available to templates") {
			t.Errorf("env %q: err = %v, want a refusal", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "agent-token-canary") {
			t.Errorf("error reveals the token: %v", err)
		}
	}
}
