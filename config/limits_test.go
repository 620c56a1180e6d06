package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

// aliasBomb is a "billion laughs" document: each level lists the previous one nine
// times, so the last alias stands for 9^levels scalars.
func aliasBomb(levels int) []byte {
	var b strings.Builder
	b.WriteString("data_dir: /var/lib/outrider\nexporters:\n  loki:\n    url: http://127.0.0.1:3100\n    labels:\n")
	b.WriteString("      l0: &l0 [\"" + strings.Repeat("lol", 20) + "\"]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "      l%d: &l%d [*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	return []byte(b.String())
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestAliasBombRefused(t *testing.T) {
	bomb := aliasBomb(9) // 9^9 = 387M scalars if expanded
	var err error
	alloc := allocated(func() { _, err = Parse("bomb.yaml", bomb) })
	t.Logf("%d-byte alias bomb: %d bytes allocated; %v", len(bomb), alloc, err)
	if err == nil {
		t.Fatal("accepted")
	}
	if !confval.IsConfigError(err) {
		t.Errorf("not a configuration error: %T", err)
	}
	for _, want := range []string{"line 6: the anchor &l0 is not supported", "line 7: the alias *l0 (used 9 times) is not supported; write the value out in full"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if alloc > 16<<20 {
		t.Errorf("refusing a %d-byte file allocated %d bytes; want it bounded by the file's size", len(bomb), alloc)
	}
}

func TestAnchorsAndAliasesRefused(t *testing.T) {
	for name, y := range map[string]string{
		"anchor only": "data_dir: &d /var/lib/outrider\n",
		"merge key":   "log: &l {level: info}\nserver:\n  <<: *l\n",
		"alias key":   "data_dir: /var/lib/outrider\nexporters:\n  loki:\n    url: http://x\n    labels: {&k a: b, *k : c}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), "not supported") {
				t.Fatalf("error %v, want anchors and aliases refused", err)
			}
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"top level", "data_dir: /a\nlog: {level: info}\ndata_dir: /b\n", "data_dir: the key is written twice in one mapping, on line 1 and line 3; keep one"},
		{"nested", "server:\n  listen: 127.0.0.1:1\n  pprof: true\n  listen: 127.0.0.1:2\n", "server.listen: the key is written twice in one mapping, on line 2 and line 4"},
		{"map", "exporters:\n  loki:\n    url: http://x\n    labels:\n      team: a\n      team: b\n", "exporters.loki.labels.team: the key is written twice in one mapping, on line 5 and line 6"},
		{"list element", "logs:\n  sources:\n    - name: a\n      path: /x/*.log\n      name: b\n", "logs.sources[0].name: the key is written twice in one mapping, on line 3 and line 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	big := []byte("data_dir: /var/lib/outrider\n# " + strings.Repeat("x", MaxBytes) + "\n")
	_, err := Parse("big.yaml", big)
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 256KiB") {
		t.Errorf("oversized data: %v", err)
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "more than the limit of 256KiB") || !confval.IsConfigError(err) {
		t.Errorf("oversized file: %v", err)
	}

	var b strings.Builder
	b.WriteString("data_dir: /var/lib/outrider\nexporters:\n  loki:\n    url: http://x\n    labels: {")
	for i := 0; i < MaxNodes/2+10; i++ {
		fmt.Fprintf(&b, "%x: v,", i)
	}
	b.WriteString("}\n")
	if b.Len() > MaxBytes {
		t.Fatalf("test data of %d bytes is past MaxBytes", b.Len())
	}
	var perr error
	alloc := allocated(func() { _, perr = Parse("nodes.yaml", []byte(b.String())) })
	if perr == nil || !strings.Contains(perr.Error(), fmt.Sprintf("more than %d YAML nodes", MaxNodes)) {
		t.Errorf("too many nodes: %v", perr)
	}
	t.Logf("%d bytes, %d nodes: %d bytes allocated", b.Len(), MaxNodes+20, alloc)

	// The costliest file within MaxBytes: tiny nodes only.
	tiny := []byte("a: [" + strings.Repeat("a,", (MaxBytes-8)/2) + "]\n")
	alloc = allocated(func() { _, perr = Parse("tiny.yaml", tiny) })
	t.Logf("%d bytes of tiny nodes: %d bytes allocated; %v", len(tiny), alloc, perr)
	if perr == nil || alloc > 48<<20 {
		t.Errorf("a file of %d bytes of tiny nodes: %v, %d bytes allocated", len(tiny), perr, alloc)
	}

	if _, err := Parse("two.yaml", []byte("data_dir: /var/lib/outrider\n---\ndata_dir: /x\n")); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("two documents: %v", err)
	}
}

// secretPaths lists the dotted paths of every secret-valued field under t ("[0]" for a
// list element, ".X-Name" for a map key).
func secretPaths(t reflect.Type, prefix string, seen map[reflect.Type]bool) []string {
	switch t.Kind() {
	case reflect.Pointer:
		return secretPaths(t.Elem(), prefix, seen)
	case reflect.Slice:
		if t.Elem() == secretType {
			return []string{prefix + "[0]"}
		}
		return secretPaths(t.Elem(), prefix+"[0]", seen)
	case reflect.Map:
		if holdsSecret(t.Elem()) {
			return []string{prefix + ".X-Test"}
		}
		return nil
	case reflect.Struct:
		if seen[t] {
			return nil
		}
		seen[t] = true
		defer delete(seen, t)
		var out []string
		for key, idx := range fieldsOf(t) {
			f := t.FieldByIndex(idx)
			if f.Type == secretType {
				out = append(out, join(prefix, key))
				continue
			}
			out = append(out, secretPaths(f.Type, join(prefix, key), seen)...)
		}
		return out
	}
	return nil
}

// setPath sets the value at a path made by secretPaths in a YAML tree of maps and
// lists.
func setPath(root map[string]any, path string, value any) {
	parts := strings.Split(strings.ReplaceAll(path, "[0]", ".[0]"), ".")
	var cur any = root
	for i, part := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[part] = value
				return
			}
			next, ok := c[part]
			if !ok || next == nil {
				if parts[i+1] == "[0]" {
					next = []any{map[string]any{}}
				} else {
					next = map[string]any{}
				}
				c[part] = next
			}
			cur = next
		case []any:
			if last {
				c[0] = value
				return
			}
			if _, ok := c[0].(map[string]any); !ok {
				c[0] = map[string]any{}
			}
			cur = c[0]
		}
	}
}

// fullConfig enables every section, so that every validator runs.
const fullConfig = `
data_dir: /var/lib/outrider
logs: {sources: [{name: app, path: /var/log/app/*.log}]}
receivers: {otlp: {}, sentry: {}}
exporters:
  loki: {url: "http://127.0.0.1:3100", basic_auth: {username: u}}
  otlp: {endpoint: "http://127.0.0.1:4317"}
  sentry: {dsn: "https://abc@o1.ingest.sentry.io/1"}
secrets:
  vault: {address: "https://vault:8200", auth: {method: token}}
  reload: {method: http, url: "http://127.0.0.1:8080/-/reload"}
  files:
    - path: /vault/secrets/db.env
      source: secret/db
      reload: {method: http, url: "http://127.0.0.1:8080/-/reload"}
`

// TestSecretValuesNeverPrinted sets every secret-valued field of the configuration,
// one at a time, to values that break ${} expansion, YAML quoting and the field's own
// validation, and checks that no error shows any part of them.
func TestSecretValuesNeverPrinted(t *testing.T) {
	const mark = "SeCrEtMaRk"
	values := map[string]any{
		"unset variable":      "x" + mark + "${OUTRIDER_TEST_UNSET_" + mark + "}",
		"unset whole":         "${" + mark + "_UNSET}",
		"unterminated":        mark + "${abc",
		"bad name":            mark + "${1" + mark + "}",
		"escaped":             "$${" + mark + "}",
		"newline and quotes":  mark + "\n\"'` \t\x01",
		"url with key":        "https://" + mark + ":" + mark + "@host:99999/" + mark + "?q=" + mark + "#f",
		"url with bad escape": "https://" + mark + "%zz@host/1",
		"list":                []any{mark},
		"mapping":             map[string]any{mark: mark},
		"number":              12345,
	}
	paths := secretPaths(reflect.TypeOf(Config{}), "", map[reflect.Type]bool{})
	t.Logf("secret fields: %v", paths)
	for _, want := range []string{"exporters.loki.basic_auth.password", "exporters.sentry.dsn", "secrets.vault.auth.token", "exporters.otlp.headers.X-Test", "receivers.sentry.public_key"} {
		found := false
		for _, p := range paths {
			found = found || p == want
		}
		if !found {
			t.Errorf("secretPaths misses %s", want)
		}
	}
	for _, path := range paths {
		for name, value := range values {
			t.Run(path+"/"+name, func(t *testing.T) {
				var root map[string]any
				if err := yaml.Unmarshal([]byte(fullConfig), &root); err != nil {
					t.Fatal(err)
				}
				if name == "number" {
					value = fmt.Sprint(mark, value)
				}
				setPath(root, path, value)
				data, err := yaml.Marshal(root)
				if err != nil {
					t.Fatal(err)
				}
				// Parse (the agent, a reload) and Check (`outrider validate`, which
				// validates past decoding problems).
				_, perr := Parse("s.yaml", data)
				_, cerr := Check("s.yaml", data)
				for _, err := range []error{perr, cerr} {
					if err == nil {
						continue
					}
					if msg := err.Error(); strings.Contains(strings.ToLower(msg), strings.ToLower(mark)) {
						t.Errorf("the error shows the secret value:\n%s", msg)
					}
				}
			})
		}
	}
}

func TestSecretExpansionErrorsSayWhatToDo(t *testing.T) {
	y := strings.Replace(fullConfig, "basic_auth: {username: u}", "basic_auth: {username: u, password: 'p${OUTRIDER_TEST_UNSET}'}", 1)
	_, err := Parse("s.yaml", []byte(y))
	want := "exporters.loki.basic_auth.password: line 6: the value refers to an environment variable that is not set (the value is secret, so no part of it is shown); set the variable, or if the ${ is part of the secret itself, write it as $${"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %q", err, want)
	}
	// A field that is not secret still names the variable.
	y = strings.Replace(fullConfig, "basic_auth: {username: u}", "basic_auth: {username: '${OUTRIDER_TEST_UNSET}'}", 1)
	if _, err := Parse("s.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), "environment variable OUTRIDER_TEST_UNSET is not set") {
		t.Errorf("error %v", err)
	}
}

// FuzzDecodeBounded checks that any input is parsed and decoded without a panic,
// within the node budget, and that a refused or failed file is a configuration error.
func FuzzDecodeBounded(f *testing.F) {
	f.Add([]byte(fullConfig))
	f.Add(aliasBomb(3))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("data_dir: /a\ndata_dir: /b\n"))
	f.Add([]byte("labels: {a: b, a: c}\n---\nx: 1\n"))
	f.Add([]byte("exporters: {loki: {labels: {? [a]: b}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := parseYAML("fuzz.yaml", data)
		if err != nil {
			if !confval.IsConfigError(err) {
				t.Fatalf("not a configuration error: %v", err)
			}
			return
		}
		cfg := Default()
		d := newDecoder(&confval.Problems{})
		d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
		if visited := MaxNodes - d.budget; visited > MaxNodes+1 {
			t.Fatalf("visited %d nodes, past the budget of %d", visited, MaxNodes)
		}
	})
}

// FuzzSecretValueNeverPrinted puts any value in a secret field and checks that no
// error shows it.
func FuzzSecretValueNeverPrinted(f *testing.F) {
	for _, v := range []string{"p", "${X", "${1}", "$${A}", "a\nb'\"", "${OUTRIDER_UNSET}", "https://k@h/1"} {
		f.Add(v, uint8(0))
	}
	f.Fuzz(func(t *testing.T, value string, field uint8) {
		const mark = "Zq9xW"
		paths := []string{"exporters.loki.basic_auth.password", "exporters.sentry.dsn", "secrets.vault.auth.token", "exporters.otlp.headers.X-Test", "receivers.sentry.public_key"}
		var root map[string]any
		if err := yaml.Unmarshal([]byte(fullConfig), &root); err != nil {
			t.Fatal(err)
		}
		setPath(root, paths[int(field)%len(paths)], mark+value)
		data, err := yaml.Marshal(root)
		if err != nil {
			return
		}
		if _, err := Parse("s.yaml", data); err != nil && strings.Contains(err.Error(), mark) {
			t.Fatalf("the error shows the secret value:\n%v", err)
		}
	})
}
