package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// trickyValues are values an env file must carry exactly.
var trickyValues = map[string]string{
	"PLAIN":          "abc-DEF_123@x%y+z,w./:=v",
	"EMPTY":          "",
	"SPACES":         "two  spaces and trailing ",
	"LEADING_SPACE":  "  leading",
	"SINGLE":         "it's",
	"DOUBLE":         `say "hi"`,
	"BOTH_QUOTES":    `it's "both"`,
	"DOLLAR":         "$HOME ${HOME} $(id) $$ $",
	"BACKTICK":       "`id` and `uname`",
	"QUOTE_BACKTICK": "it's `id` $HOME",
	"NEWLINES":       "line1\nline2\n\nline4",
	"TRAILING_NL":    "ends with newline\n",
	"CR_TAB":         "a\r\nb\tc",
	"UNICODE":        "pässwörd 日本語 🔑 ✓",
	"BACKSLASH":      `C:\path\n\t`,
	"TRAILING_BS":    `ends with \`,
	"BS_QUOTE":       `\'\"`,
	"BS_NEWLINE":     "a\\\nb",
	"HASH":           "#not-a-comment # x",
	"TILDE":          "~/x",
	"GLOB":           "*.txt ?",
	"OPERATORS":      "a;b&&c|d>e<f(g)",
	"EQUALS":         "=a=b=",
	"EXCLAIM":        "!history !! !$",
	"BRACES":         "{a,b} [x]",
}

// TestEnvReadBySh writes the tricky values in the env format and reads them back with
// the system's sh (and bash when present): `. FILE; printf %s "$KEY"`.
func TestEnvReadBySh(t *testing.T) {
	data := map[string]any{}
	for k, v := range trickyValues {
		data[k] = v
	}
	out, err := encode(FormatEnv, data, "", true)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	keys := sortedKeys(data)
	var script strings.Builder
	script.WriteString(`set -eu; . "$1"; printf '%s\0'`)
	for _, k := range keys {
		script.WriteString(` "$` + k + `"`)
	}
	shells := []string{"sh"}
	if _, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, "bash")
	}
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			cmd := exec.Command(sh, "-c", script.String(), "sh", file)
			cmd.Env = []string{"HOME=/home/should-not-expand", "PATH=/usr/bin:/bin"}
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s failed to source the file: %v\n%s", sh, err, out)
			}
			vals := strings.Split(string(got), "\x00")
			if len(vals) != len(keys)+1 {
				t.Fatalf("%s printed %d values, want %d:\n%q", sh, len(vals)-1, len(keys), got)
			}
			for i, k := range keys {
				if vals[i] != trickyValues[k] {
					t.Errorf("%s read %s = %q, want %q (line: %s)", sh, k, vals[i], trickyValues[k], lineOf(out, k))
				}
			}
		})
	}

	// The test's own parser agrees with sh.
	parsed, err := parseEnvFile(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parsed, trickyValues) {
		t.Errorf("parseEnvFile disagrees:\n%v\nwant\n%v", parsed, trickyValues)
	}
}

func lineOf(file []byte, key string) string {
	i := bytes.Index(file, []byte(key+"="))
	if i < 0 {
		return "?"
	}
	return fmt.Sprintf("%q", file[i:min(len(file), i+len(key)+60)])
}

func TestEnvQuoting(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain-1.2_3@x%y+z,w/:=", "plain-1.2_3@x%y+z,w/:="},
		{"a b", "'a b'"},
		{"$HOME", "'$HOME'"},
		{"a\nb", "'a\nb'"},
		{"日本", "'日本'"},
		{"it's", `"it's"`},
		{"it's $x `y` \\ \"z\"", "\"it's \\$x \\`y\\` \\\\ \\\"z\\\"\""},
		{`end\`, `"end\\"`},
		{`mid\dle`, `'mid\dle'`},
	}
	for _, tt := range tests {
		if got := quoteEnvValue(tt.in); got != tt.want {
			t.Errorf("quoteEnvValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestEnvNames(t *testing.T) {
	tests := []struct {
		data map[string]any
		want string
		err  string
	}{
		{map[string]any{"DB_PASS": "x", "db-user": "u", "api.key": "k", "9lives": "c", "ключ": "r", "a b": "s"},
			"DB_PASS=x\n_9lives=c\n____=r\na_b=s\napi_key=k\ndb_user=u\n", ""},
		{map[string]any{"db-user": "1", "db.user": "2"}, "", `keys "db-user" and "db.user" both become the environment variable db_user`},
		{map[string]any{"": "x"}, "", "an empty key cannot be an environment variable name"},
		{map[string]any{"K": "has\x00nul " + canary}, "", `the value of key "K" holds a NUL byte`},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			out, err := encode(FormatEnv, tt.data, "", true)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("error reveals the value: %v", err)
				}
				return
			}
			if err != nil || string(out) != tt.want {
				t.Errorf("got %q, %v; want %q", out, err, tt.want)
			}
		})
	}
}

func TestEnvNonStringValues(t *testing.T) {
	out, err := encode(FormatEnv, map[string]any{
		"n": json.Number("5432"), "b": true, "null": nil, "l": []any{"a", "b"}, "m": map[string]any{"x": "y"},
	}, "", true)
	want := "b=true\nl='[\"a\",\"b\"]'\nm='{\"x\":\"y\"}'\nn=5432\nnull=\n"
	if err != nil || string(out) != want {
		t.Errorf("got %q, %v; want %q", out, err, want)
	}
}

// TestPropertiesEncoding checks the escaping against what
// java.util.Properties.store(OutputStream) writes for the same key and value.
func TestPropertiesEncoding(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"plain", "db.user", "app", `db.user=app`},
		{"separators in key", "a=b:c", "v", `a\=b\:c=v`},
		{"separators in value", "k", "x=y:z", `k=x\=y\:z`},
		{"spaces in key", "my key", "v", `my\ key=v`},
		{"leading space in value only", "k", "  a b ", `k=\  a b `},
		{"comment characters", "#k!", "#v!", `\#k\!=\#v\!`},
		{"backslash", `C:\dir`, `\\srv\share`, `C\:\\dir=\\\\srv\\share`},
		{"control characters", "k", "a\tb\nc\rd\fe", `k=a\tb\nc\rd\fe`},
		{"other control", "k", "\x00\x1b\x7f", `k=\u0000\u001B\u007F`},
		{"latin-1", "clé", "pässwörd", `cl\u00E9=p\u00E4ssw\u00F6rd`},
		{"beyond the BMP", "k", "🔑", `k=\uD83D\uDD11`},
		{"empty value", "k", "", `k=`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := encode(FormatProperties, map[string]any{tt.key: tt.value}, "", true)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want+"\n" {
				t.Errorf("got %s, want %s", out, tt.want)
			}
			back, err := parseProperties(string(out))
			if err != nil || len(back) != 1 || back[tt.key] != tt.value {
				t.Errorf("read back %q, %v; want %q=%q", back, err, tt.key, tt.value)
			}
		})
	}
}

// TestParseProperties checks the test's reader against the examples of the
// Properties.load javadoc, so the round trips above mean something.
func TestParseProperties(t *testing.T) {
	const doc = "# comment\n" +
		"! another\n" +
		"Truth = Beauty\n" +
		"  Truth2:Beauty\n" +
		"Truth3                    :Beauty\n" +
		"fruits                           apple, banana, pear, \\\n" +
		"                                  cantaloupe, watermelon, \\\n" +
		"                                  kiwi, mango\n" +
		"cheeses\n" +
		"key\\ with\\ spaces = v\\u00e9\n" +
		"odd\\\\\n" +
		"even=a\\\\\n"
	want := map[string]string{
		"Truth":           "Beauty",
		"Truth2":          "Beauty",
		"Truth3":          "Beauty",
		"fruits":          "apple, banana, pear, cantaloupe, watermelon, kiwi, mango",
		"cheeses":         "",
		"key with spaces": "vé",
		"odd\\":           "",
		"even":            "a\\",
	}
	got, err := parseProperties(doc)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
}

func TestJSONAndYAMLFormats(t *testing.T) {
	data := map[string]any{"b": "x<y>&z", "a": json.Number("1"), "c": []any{"p", true}, "d": map[string]any{"z": nil, "y": "yes"}}
	j, err := encode(FormatJSON, data, "", true)
	wantJSON := "{\n  \"a\": 1,\n  \"b\": \"x<y>&z\",\n  \"c\": [\n    \"p\",\n    true\n  ],\n  \"d\": {\n    \"y\": \"yes\",\n    \"z\": null\n  }\n}\n"
	if err != nil || string(j) != wantJSON {
		t.Errorf("json: got %q, %v\nwant %q", j, err, wantJSON)
	}
	y, err := encode(FormatYAML, data, "", true)
	wantYAML := "a: 1\nb: x<y>&z\nc:\n  - p\n  - true\nd:\n  \"y\": \"yes\"\n  z: null\n"
	if err != nil || string(y) != wantYAML {
		t.Errorf("yaml: got %q, %v\nwant %q", y, err, wantYAML)
	}
	var back map[string]any
	if err := yaml.Unmarshal(y, &back); err != nil || back["a"] != 1 || back["b"] != "x<y>&z" {
		t.Errorf("yaml read back %v, %v", back, err)
	}
	for _, f := range []Format{FormatJSON, FormatYAML, FormatEnv, FormatProperties} {
		if out, err := encode(f, nil, "", true); err != nil || (f == FormatJSON && string(out) != "{}\n") || (f == FormatYAML && string(out) != "{}\n") {
			t.Errorf("%s of no data: %q, %v", f, out, err)
		}
	}
}
