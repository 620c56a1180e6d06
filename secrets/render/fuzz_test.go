package render

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// cleanError reports why msg is not a clean error message: one printable line.
func cleanError(msg string) string {
	if msg == "" {
		return "empty"
	}
	if !utf8.ValidString(msg) {
		return "invalid UTF-8"
	}
	for _, r := range msg {
		if !unicode.IsPrint(r) {
			return "non-printing character " + strconv.QuoteRune(r)
		}
	}
	return ""
}

// FuzzTemplateParse builds templates from arbitrary text: NewTemplate must not panic,
// its errors must be one clean line naming the field and the line; templates that
// parse are rendered against secrets holding a canary, and no render error may show it.
func FuzzTemplateParse(f *testing.F) {
	for _, s := range []string{
		`{{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}{{ end }}`,
		`{{ with secret "secret/data/app" }}{{ .Data.data.password | base64Encode }}{{ end }}`,
		`{{ with pkiCert "pki/issue/web" "common_name=a" }}{{ .Cert }}{{ .Key }}{{ end }}`,
		`{{ (secret "kv/x").Data.password | secret }}`,
		`{{ (secret "kv/x").Data.list | join "," | toUpper }}`,
		`{{ eq (secret "kv/x").Data (secret "kv/x").Data }}`,
		`{{ index (secret "kv/x").Data.list 7 }}`,
		`{{ env "HOME" | default "x" | trimSpace }}`,
		`{{ toJSON (secret "a") }}{{ toYAML (secret "b").Data }}`,
		`{{ secrt "x" }}`,
		`{{ with secret "a" }}`,
		"{{ \"\x00\" }}",
		"{{ `\n` | bogus }}",
		`{{ define "x" }}{{ .Data.y }}{{ end }}{{ template "x" (secret "z") }}`,
		`{{/* comment */}}{{- "trim" -}}`,
		`{{ $x := 1 }}{{ $y }}`,
		"\xff{{",
	} {
		f.Add(s)
	}
	data := map[string]any{
		"password":    canary,
		"certificate": canary + "-cert",
		"list":        []any{canary, "b"},
		"map":         map[string]any{"k": canary},
		"n":           json.Number("982451653"),
	}
	fetch := FetcherFunc(func(context.Context, string, []string) (*Secret, error) {
		return &Secret{Data: data, LeaseID: "lease/" + canary}, nil
	})
	f.Fuzz(func(t *testing.T, text string) {
		tm, err := NewTemplate(FileConfig{Path: "/vault/secrets/f", Template: text})
		if err != nil {
			msg := err.Error()
			if text != "" && !strings.HasPrefix(msg, "template: ") {
				t.Fatalf("error does not name the field: %q", msg)
			}
			if why := cleanError(msg); why != "" {
				t.Fatalf("unclean error (%s): %q", why, msg)
			}
			return
		}
		// Execution is linear in the text except for loops and recursion; leave those out.
		if len(text) > 512 || strings.Contains(text, "range") || strings.Contains(text, "template") ||
			strings.Contains(text, "block") || strings.Contains(text, canary[:6]) {
			return
		}
		_, _, err = tm.Render(context.Background(), fetch)
		if err == nil {
			return
		}
		msg := err.Error()
		if why := cleanError(msg); why != "" {
			t.Fatalf("unclean render error (%s): %q", why, msg)
		}
		if !strings.HasPrefix(msg, "render /vault/secrets/f: ") {
			t.Fatalf("render error does not name the file: %q", msg)
		}
		if strings.Contains(msg, canary) || strings.Contains(msg, "982451653") {
			t.Fatalf("render error reveals a secret value: %q", msg)
		}
	})
}

// FuzzShortForm writes random maps in every short-form format and reads them back: env
// with the test's sh-grammar reader, properties with the test's Properties.load
// reader, json and yaml with their decoders.
func FuzzShortForm(f *testing.F) {
	f.Add("password", "p@ss w0rd's \"$x\"", "DB-USER", "app\n", int64(5432))
	f.Add("a=b:c", " lead\\", "clé", "🔑\t\r\f", int64(-1))
	f.Add("9x", "", "x.y", "`id`", int64(0))
	f.Add("db-user", "1", "db_user", "2", int64(1))
	f.Add("", "v", "k", "\x00", int64(7))
	f.Add("yes", "no", "null", "~", int64(1e18))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, n int64) {
		for _, s := range []string{k1, v1, k2, v2} {
			if !utf8.ValidString(s) { // Vault data is JSON: always valid UTF-8
				return
			}
		}
		data := map[string]any{
			k1:     v1,
			k2:     v2,
			"num":  json.Number(strconv.FormatInt(n, 10)),
			"list": []any{v1, json.Number("1.5"), true, nil},
		}
		want := map[string]string{}
		for k, v := range data {
			want[k], _ = textOf(v)
		}

		// env
		out, err := encode(FormatEnv, data, "", true)
		if err != nil {
			msg := err.Error()
			for _, v := range []string{v1, v2} {
				if len(v) >= 4 && !strings.Contains(k1+k2, v) && strings.Contains(msg, v) {
					t.Fatalf("env error reveals a value: %q", msg)
				}
			}
		} else {
			got, err := parseEnvFile(string(out))
			if err != nil {
				t.Fatalf("env output unreadable: %v\n%q", err, out)
			}
			wantEnv := map[string]string{}
			for k, v := range want {
				name, _ := envName(k)
				wantEnv[name] = v
			}
			if !reflect.DeepEqual(got, wantEnv) {
				t.Fatalf("env round trip:\n got %q\nwant %q\nfile %q", got, wantEnv, out)
			}
		}

		// properties
		out, err = encode(FormatProperties, data, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsFunc(out, func(r rune) bool { return r >= 0x80 }) {
			t.Fatalf("properties output is not ASCII: %q", out)
		}
		got, err := parseProperties(string(out))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("properties round trip: %v\n got %q\nwant %q\nfile %q", err, got, want, out)
		}

		// json
		out, err = encode(FormatJSON, data, "", true)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var back map[string]any
		if err := dec.Decode(&back); err != nil || !reflect.DeepEqual(back, data) {
			t.Fatalf("json round trip: %v\n got %#v\nwant %#v", err, back, data)
		}

		// yaml
		out, err = encode(FormatYAML, data, "", true)
		if err != nil {
			t.Fatal(err)
		}
		var y map[string]any
		if err := yaml.Unmarshal(out, &y); err != nil {
			t.Fatalf("yaml unreadable: %v\n%q", err, out)
		}
		wantY := map[string]any{k1: v1, k2: v2, "num": int(n), "list": []any{v1, 1.5, true, nil}}
		if !reflect.DeepEqual(y, wantY) {
			t.Fatalf("yaml round trip:\n got %#v\nwant %#v\nfile %q", y, wantY, out)
		}

		// raw
		out, err = encode(FormatRaw, data, k1, true)
		if err != nil || string(out) != want[k1] {
			t.Fatalf("raw %q = %q, %v; want %q", k1, out, err, want[k1])
		}
	})
}
