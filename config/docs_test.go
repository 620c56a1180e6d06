package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docKey is a key docs/configuration.md documents: its full path, and whether it
// stands for a whole section ("tls.*", or a struct key such as "files[].reload").
type docKey struct {
	path  string
	whole bool
	line  int
}

// configFields walks Config by its yaml tags, the way the loader decodes it: leaves
// (values, lists of values, maps) by full path ("logs.sources[].parser.format"), and
// every struct-valued path with its Go type.
func configFields() (leaves map[string]bool, structs map[string]reflect.Type) {
	leaves, structs = map[string]bool{}, map[string]reflect.Type{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
				walk(ft, prefix)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p := prefix + name
			switch {
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				structs[p+"[]"] = ft.Elem()
				walk(ft.Elem(), p+"[].")
			case ft.Kind() == reflect.Struct && ft.NumField() > 0 && !decodesItself(ft):
				structs[p] = ft
				walk(ft, p+".")
			default:
				leaves[p] = true
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return leaves, structs
}

// decodesItself reports types the YAML decoder does not walk field by field.
func decodesItself(t reflect.Type) bool {
	if t.PkgPath() == "time" {
		return true
	}
	_, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return ok
}

var (
	headingRE  = regexp.MustCompile("^(#{2,3}) (.*)$")
	backtickRE = regexp.MustCompile("`([^`]+)`")
	pathRE     = regexp.MustCompile(`^[a-z0-9_]+(\[\])?(\.[a-z0-9_]+(\[\])?)*(\.\*)?$`)
)

// documentedKeys reads the key column of every "| key | default | meaning |" table
// in docs/configuration.md. A section heading naming one configuration path
// ("## `exporters.loki`", "### Reload: `secrets.reload`") makes the keys of its
// tables relative to it; a heading naming none or several leaves them full paths. In
// a cell, a key after another that has no dot is its sibling:
// "`basic_auth.username` / `password`" is basic_auth.username and basic_auth.password.
func documentedKeys(t *testing.T, doc string) []docKey {
	t.Helper()
	var keys []docKey
	prefix, sectionPrefix := "", ""
	inKeyTable, inFence := false, false
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			var paths []string
			for _, b := range backtickRE.FindAllStringSubmatch(m[2], -1) {
				if pathRE.MatchString(b[1]) {
					paths = append(paths, b[1])
				}
			}
			p := ""
			if len(paths) == 1 {
				p = paths[0] + "."
			}
			if m[1] == "##" {
				sectionPrefix, prefix = p, p
			} else if p != "" {
				prefix = p
			} else {
				prefix = sectionPrefix
			}
			inKeyTable = false
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inKeyTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		first := strings.TrimSpace(cells[0])
		if first == "key" {
			inKeyTable = true
			continue
		}
		if !inKeyTable || strings.HasPrefix(first, "---") {
			continue
		}
		parent := ""
		for _, b := range backtickRE.FindAllStringSubmatch(first, -1) {
			k := b[1]
			if !pathRE.MatchString(k) {
				t.Errorf("docs/configuration.md:%d: %q in the key column is not a configuration key", i+1, k)
				continue
			}
			full := prefix + k
			if !strings.Contains(strings.TrimSuffix(k, ".*"), ".") && parent != "" {
				full = parent + k
			}
			if j := strings.LastIndex(strings.TrimSuffix(full, ".*"), "."); j >= 0 {
				parent = full[:j+1]
			}
			whole := strings.HasSuffix(full, ".*")
			keys = append(keys, docKey{path: strings.TrimSuffix(full, ".*"), whole: whole, line: i + 1})
		}
	}
	return keys
}

// TestConfigurationReference holds docs/configuration.md against the configuration
// structs: every field the loader accepts is documented in a key table, and every key
// a table documents exists. A key that stands for a whole block ("tls.*", or
// "files[].reload", "the section's reload") is accepted only when the block's type is
// documented field by field somewhere, so "as for Loki" always points at a real list.
func TestConfigurationReference(t *testing.T) {
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	leaves, structs := configFields()
	keys := documentedKeys(t, string(data))
	if len(keys) < 100 {
		t.Fatalf("found %d documented keys; the tables were not read", len(keys))
	}
	explicit := map[string]bool{}
	var wholes []docKey
	for _, k := range keys {
		_, isStruct := structs[k.path]
		switch {
		case leaves[k.path] && !k.whole:
			explicit[k.path] = true
		case isStruct:
			wholes = append(wholes, k)
		default:
			t.Errorf("docs/configuration.md:%d documents %q, which is not a configuration key (a typo, or a field that was renamed or removed)", k.line, k.path)
		}
	}
	// Types documented field by field at some path.
	documentedTypes := map[reflect.Type]bool{}
	for p, typ := range structs {
		all := true
		for l := range leaves {
			if strings.HasPrefix(l, p+".") && !explicit[l] {
				all = false
				break
			}
		}
		if all {
			documentedTypes[typ] = true
		}
	}
	covered := map[string]bool{}
	for l := range explicit {
		covered[l] = true
	}
	for _, k := range wholes {
		if !documentedTypes[structs[k.path]] {
			t.Errorf("docs/configuration.md:%d documents %q as a whole, but its type %v is documented field by field nowhere; list its fields", k.line, k.path, structs[k.path])
			continue
		}
		for l := range leaves {
			if strings.HasPrefix(l, k.path+".") {
				covered[l] = true
			}
		}
	}
	var missing []string
	for l := range leaves {
		if !covered[l] {
			missing = append(missing, l)
		}
	}
	sort.Strings(missing)
	for _, l := range missing {
		t.Errorf("%s is a configuration key that docs/configuration.md does not document: add it to its section's key table", l)
	}
}

// TestDocumentedKeysParse checks the reading of key cells on the forms the page uses.
func TestDocumentedKeysParse(t *testing.T) {
	doc := "## `exporters.loki`\n\n| key | default | meaning |\n|---|---|---|\n" +
		"| `basic_auth.username` / `password` / `password_file` | — | x |\n" +
		"| `tls.*`, `timeout` | — | x |\n\n" +
		"## Errors: `receivers.sentry`, `errors`\n\n| key | default | meaning |\n|---|---|---|\n" +
		"| `receivers.sentry.max_connections`, `read_timeout` | — | x |\n" +
		"| `errors.window` | — | x |\n\n" +
		"| answer | when |\n|---|---|\n| 429 + `Retry-After` | y |\n\n" +
		"### Reload: `secrets.reload`\n\n| key | default | meaning |\n|---|---|---|\n| `method` | x | y |\n"
	var got []string
	for _, k := range documentedKeys(t, doc) {
		s := k.path
		if k.whole {
			s += ".*"
		}
		got = append(got, s)
	}
	want := []string{"exporters.loki.basic_auth.username", "exporters.loki.basic_auth.password", "exporters.loki.basic_auth.password_file",
		"exporters.loki.tls.*", "exporters.loki.timeout", "receivers.sentry.max_connections", "receivers.sentry.read_timeout", "errors.window",
		"secrets.reload.method"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys\n got %q\nwant %q", got, want)
	}
}
