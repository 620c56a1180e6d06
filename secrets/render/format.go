package render

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
)

// kvData returns the secret's own data: the inner "data" of a KV v2 response (a map
// with exactly "data" and "metadata", the metadata holding a "version"), data itself
// otherwise.
func kvData(data map[string]any) (map[string]any, error) {
	if len(data) != 2 {
		return data, nil
	}
	meta, ok := data["metadata"].(map[string]any)
	if !ok {
		return data, nil
	}
	if _, ok := meta["version"]; !ok {
		return data, nil
	}
	inner, present := data["data"]
	if !present {
		return data, nil
	}
	switch d := inner.(type) {
	case map[string]any:
		return d, nil
	case nil:
		return nil, fmt.Errorf("the KV v2 secret has no data: its latest version is deleted or destroyed; undelete it or write a new version")
	}
	return data, nil
}

// encode writes data in a short-form format.
func encode(format Format, data map[string]any, key string, missingKeyIsError bool) ([]byte, error) {
	switch format {
	case FormatEnv:
		return encodeEnv(data)
	case FormatProperties:
		return encodeProperties(data)
	case FormatJSON:
		if data == nil {
			data = map[string]any{}
		}
		b, err := marshalJSON(data, "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	case FormatYAML:
		if data == nil {
			data = map[string]any{}
		}
		return marshalYAML(data)
	case FormatRaw:
		v, ok := data[key]
		if !ok {
			if missingKeyIsError {
				return nil, &renderError{msg: fmt.Sprintf("the secret has no key %q; check the name or set error_on_missing_key: false", key), err: ErrMissingKey}
			}
			return []byte{}, nil
		}
		s, err := textOf(v)
		if err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("unknown format %q; use env, json, yaml, properties or raw", format)
}

// sortedKeys returns m's keys in byte order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// envName turns a secret's key into an environment variable name: every character
// outside [A-Za-z0-9_] becomes '_', and a leading digit gets a '_' before it. The empty
// key has no name.
func envName(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("an empty key cannot be an environment variable name")
	}
	var b strings.Builder
	b.Grow(len(key) + 1)
	if key[0] >= '0' && key[0] <= '9' {
		b.WriteByte('_')
	}
	for _, r := range key {
		if r < 0x80 && isNameByte(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String(), nil
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// envBare are the bytes a value may hold and still be written without quotes: no
// reader (sh, docker run --env-file, compose env_file, systemd) gives any of them a
// meaning in a value.
var envBare = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isNameByte(byte(c))
	}
	for _, c := range []byte("@%+,./:=-") {
		t[c] = true
	}
	return t
}()

// quoteEnvValue writes a value for an env file:
//   - made only of [A-Za-z0-9_@%+,./:=-], or empty: as it is;
//   - else, holding no single quote and not ending in a backslash: in single quotes,
//     as it is inside;
//   - else: in double quotes, with a backslash before each \, ", $ and `.
func quoteEnvValue(v string) string {
	bare := true
	for i := 0; i < len(v); i++ {
		if !envBare[v[i]] {
			bare = false
			break
		}
	}
	if bare {
		return v
	}
	if !strings.Contains(v, "'") && !strings.HasSuffix(v, `\`) {
		return "'" + v + "'"
	}
	var b strings.Builder
	b.Grow(len(v) + 8)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"', '$', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func encodeEnv(data map[string]any) ([]byte, error) {
	type line struct{ name, key, value string }
	lines := make([]line, 0, len(data))
	for _, k := range sortedKeys(data) {
		name, err := envName(k)
		if err != nil {
			return nil, err
		}
		v, err := textOf(data[k])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("the value of key %q holds a NUL byte, which no environment variable can hold; use format json or raw", k)
		}
		lines = append(lines, line{name, k, v})
	}
	slices.SortFunc(lines, func(a, b line) int { return strings.Compare(a.name, b.name) })
	size := 0
	for i, l := range lines {
		if i > 0 && lines[i-1].name == l.name {
			return nil, fmt.Errorf("keys %q and %q both become the environment variable %s; rename one in Vault, or use format json or a template", lines[i-1].key, l.key, l.name)
		}
		size += len(l.name) + len(l.value) + 4
	}
	out := make([]byte, 0, size)
	for _, l := range lines {
		out = append(out, l.name...)
		out = append(out, '=')
		out = append(out, quoteEnvValue(l.value)...)
		out = append(out, '\n')
	}
	return out, nil
}

func encodeProperties(data map[string]any) ([]byte, error) {
	var b strings.Builder
	for _, k := range sortedKeys(data) {
		v, err := textOf(data[k])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		escapeProperty(&b, k, true)
		b.WriteByte('=')
		escapeProperty(&b, v, false)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

const upperHex = "0123456789ABCDEF"

// escapeProperty writes s as java.util.Properties.store(OutputStream) does: \, =, :, #
// and ! escaped with a backslash; tab, newline, carriage return and form feed as \t \n
// \r \f; spaces escaped everywhere in a key and at the start of a value; every other
// character outside printable ASCII as \uXXXX UTF-16 units (so the file is ASCII and
// reads the same as ISO-8859-1 or UTF-8).
func escapeProperty(b *strings.Builder, s string, isKey bool) {
	first := true
	for _, r := range s {
		switch r {
		case ' ':
			if first || isKey {
				b.WriteByte('\\')
			}
			b.WriteByte(' ')
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case '=', ':', '#', '!', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			if r >= 0x20 && r <= 0x7e {
				b.WriteRune(r)
				break
			}
			units := []rune{r}
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				units = []rune{r1, r2}
			}
			for _, u := range units {
				b.WriteString(`\u`)
				b.WriteByte(upperHex[u>>12&0xf])
				b.WriteByte(upperHex[u>>8&0xf])
				b.WriteByte(upperHex[u>>4&0xf])
				b.WriteByte(upperHex[u&0xf])
			}
		}
		first = false
	}
}
