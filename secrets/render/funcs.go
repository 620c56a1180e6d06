package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

// PKICert is what {{ pkiCert }} returns: the fields of a PKI issue (or sign) response.
type PKICert struct {
	// Cert is the PEM certificate (the response's "certificate").
	Cert string
	// Key is the PEM private key ("private_key"); empty for a sign endpoint.
	Key string
	// CA is the PEM certificate of the issuing CA ("issuing_ca").
	CA string
	// CAChain is the PEM chain up to the root ("ca_chain"), when the mount has one.
	CAChain []string
}

// unbound stands in for the functions bound to a render (secret, pkiCert, env) at parse
// time, when only their names matter.
func unbound(string, ...string) (any, error) {
	return nil, &funcError{msg: "function used outside a render"}
}

// parseFuncs has every function's name, for parsing: an unknown name is a parse error.
var parseFuncs = template.FuncMap{
	"secret":          unbound,
	"pkiCert":         unbound,
	"env":             unbound,
	"base64Encode":    base64Encode,
	"base64Decode":    base64Decode,
	"base64URLEncode": base64URLEncode,
	"base64URLDecode": base64URLDecode,
	"toJSON":          toJSON,
	"toJSONPretty":    toJSONPretty,
	"toYAML":          toYAML,
	"join":            join,
	"split":           split,
	"trimSpace":       stringFunc("trimSpace", strings.TrimSpace),
	"toUpper":         stringFunc("toUpper", strings.ToUpper),
	"toLower":         stringFunc("toLower", strings.ToLower),
	"replaceAll":      replaceAll,
	"contains":        contains,
	"default":         defaultFunc,
}

// funcs returns the functions bound to this render.
func (r *run) funcs() template.FuncMap {
	return template.FuncMap{
		"secret":  r.secret,
		"pkiCert": r.pkiCert,
		"env":     r.env,
	}
}

// secret is {{ secret PATH [k=v ...] }}: a read, or a write when arguments are given.
func (r *run) secret(path string, args ...string) (*Secret, error) {
	return r.fetch("secret", path, args)
}

// pkiCert is {{ pkiCert PATH [k=v ...] }}: it writes to PATH (such as pki/issue/web)
// and picks the certificate fields out of the response.
func (r *run) pkiCert(path string, args ...string) (*PKICert, error) {
	s, err := r.fetch("pkiCert", path, args)
	if err != nil {
		return nil, err
	}
	str := func(field string) (string, error) {
		v, ok := s.Data[field]
		if !ok || v == nil {
			return "", nil
		}
		t, ok := v.(string)
		if !ok {
			return "", &funcError{msg: fmt.Sprintf("pkiCert %q: %s is a %s, not a PEM string", path, field, kindOf(v))}
		}
		return t, nil
	}
	var c PKICert
	if c.Cert, err = str("certificate"); err != nil {
		return nil, err
	}
	if c.Cert == "" {
		return nil, &funcError{msg: fmt.Sprintf("pkiCert %q: the response has no certificate; use a PKI issue or sign endpoint such as pki/issue/ROLE with common_name=…", path)}
	}
	if c.Key, err = str("private_key"); err != nil {
		return nil, err
	}
	if c.CA, err = str("issuing_ca"); err != nil {
		return nil, err
	}
	switch chain := s.Data["ca_chain"].(type) {
	case nil:
	case []string:
		c.CAChain = append([]string(nil), chain...)
	case []any:
		c.CAChain = make([]string, 0, len(chain))
		for _, e := range chain {
			pem, ok := e.(string)
			if !ok {
				return nil, &funcError{msg: fmt.Sprintf("pkiCert %q: ca_chain holds a %s, not a PEM string", path, kindOf(e))}
			}
			c.CAChain = append(c.CAChain, pem)
		}
	default:
		return nil, &funcError{msg: fmt.Sprintf("pkiCert %q: ca_chain is a %s, not a list", path, kindOf(chain))}
	}
	return &c, nil
}

// env is {{ env NAME }}: the agent's environment variable NAME, "" when unset.
func (r *run) env(name string) (string, error) {
	if strings.HasPrefix(strings.ToUpper(name), "VAULT_") {
		return "", &funcError{msg: fmt.Sprintf("env %q: VAULT_* variables hold the agent's own Vault settings and token and are not available to templates", name)}
	}
	v := os.Getenv(name)
	if len(v) >= minScrubLen {
		r.envSeen = append(r.envSeen, v)
	}
	return v, nil
}

// textOf is how a value becomes text everywhere in this package: strings as they are,
// nil as "", anything else as compact JSON (numbers as written by Vault, true/false,
// lists and maps).
func textOf(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case json.Number:
		return string(t), nil
	case []byte:
		return string(t), nil
	case bool:
		return strconv.FormatBool(t), nil
	}
	b, err := marshalJSON(v, "")
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// marshalJSON encodes v without HTML escaping (secret bytes stay as they are) and
// without a trailing newline. Its error never includes the value.
func marshalJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("a %s cannot be written as JSON", kindOf(v))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// kindOf names v's type for error messages without showing v.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string, json.Number:
		return "string"
	case map[string]any:
		return "map"
	case []any:
		return "list"
	}
	return reflect.TypeOf(v).String()
}

func fnError(fn string, err error) error {
	return &funcError{msg: fn + ": " + err.Error()}
}

func base64Encode(v any) (string, error) {
	s, err := textOf(v)
	if err != nil {
		return "", fnError("base64Encode", err)
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func base64URLEncode(v any) (string, error) {
	s, err := textOf(v)
	if err != nil {
		return "", fnError("base64URLEncode", err)
	}
	return base64.URLEncoding.EncodeToString([]byte(s)), nil
}

// base64Decode accepts the standard alphabet, padded or not.
func base64Decode(v any) (string, error) {
	return decode64("base64Decode", "standard", v, base64.StdEncoding, base64.RawStdEncoding)
}

// base64URLDecode accepts the URL-safe alphabet, padded or not.
func base64URLDecode(v any) (string, error) {
	return decode64("base64URLDecode", "URL-safe", v, base64.URLEncoding, base64.RawURLEncoding)
}

func decode64(fn, alphabet string, v any, padded, raw *base64.Encoding) (string, error) {
	s, err := textOf(v)
	if err != nil {
		return "", fnError(fn, err)
	}
	enc := padded
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = raw
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		// The error's byte offset is safe to show; the input is not.
		if ce, ok := err.(base64.CorruptInputError); ok {
			return "", &funcError{msg: fmt.Sprintf("%s: not valid base64 (%s alphabet) at byte %d", fn, alphabet, int64(ce))}
		}
		return "", &funcError{msg: fmt.Sprintf("%s: not valid base64 (%s alphabet)", fn, alphabet)}
	}
	return string(b), nil
}

func toJSON(v any) (string, error) {
	b, err := marshalJSON(v, "")
	if err != nil {
		return "", fnError("toJSON", err)
	}
	return string(b), nil
}

func toJSONPretty(v any) (string, error) {
	b, err := marshalJSON(v, "  ")
	if err != nil {
		return "", fnError("toJSONPretty", err)
	}
	return string(b), nil
}

// toYAML writes v as YAML without the trailing newline, as consul-template does.
func toYAML(v any) (s string, err error) {
	b, err := marshalYAML(v)
	if err != nil {
		return "", fnError("toYAML", err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// marshalYAML encodes v with two-space indentation and keys sorted. yaml.v3 panics on
// some types; the panic is turned into an error that does not show the value.
func marshalYAML(v any) (b []byte, err error) {
	defer func() {
		if recover() != nil {
			b, err = nil, fmt.Errorf("a %s cannot be written as YAML", kindOf(v))
		}
	}()
	node, err := yamlNode(v)
	if err != nil {
		return nil, fmt.Errorf("a %s cannot be written as YAML", kindOf(v))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return nil, fmt.Errorf("a %s cannot be written as YAML", kindOf(v))
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("a %s cannot be written as YAML", kindOf(v))
	}
	return buf.Bytes(), nil
}

// yamlNode builds the YAML tree of v. It writes numbers from Vault (json.Number) as
// plain numbers, as written, where yaml.v3 would quote them as strings; and it picks
// each string's style so that it reads back exactly (yaml.v3 writes some multi-line
// strings as literal blocks that do not: "\n" reads back as "").
func yamlNode(v any) (*yaml.Node, error) {
	switch t := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case string:
		return yamlString(t), nil
	case json.Number:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: string(t)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Content: make([]*yaml.Node, 0, 2*len(t))}
		for _, k := range sortedKeys(t) {
			val, err := yamlNode(t[k])
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, yamlString(k), val)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Content: make([]*yaml.Node, 0, len(t))}
		for _, e := range t {
			val, err := yamlNode(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, val)
		}
		return n, nil
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Content: make([]*yaml.Node, 0, len(t))}
		for _, e := range t {
			n.Content = append(n.Content, yamlString(e))
		}
		return n, nil
	case *Secret:
		if t == nil {
			return yamlNode(nil)
		}
		return yamlNode(map[string]any{
			"data":           t.Data,
			"lease_id":       t.LeaseID,
			"lease_duration": json.Number(strconv.Itoa(t.LeaseDuration)),
			"renewable":      t.Renewable,
		})
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}

// yamlString returns a scalar for s: yaml.v3's own choice of style when s is one line
// of printable ASCII without surrounding spaces (it quotes what would read as another
// type, YAML 1.1 booleans such as "yes" included), a literal block when that reads back exactly (PEM certificates stay
// readable), double quotes otherwise.
func yamlString(s string) *yaml.Node {
	if simpleYAMLString(s) {
		var n yaml.Node
		if n.Encode(s) == nil {
			return &n
		}
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
		if b, err := yaml.Marshal(n); err == nil {
			var back string
			if yaml.Unmarshal(b, &back) == nil && back == s {
				return n
			}
		}
	}
	n.Style = yaml.DoubleQuotedStyle
	return n
}

func simpleYAMLString(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// join is {{ LIST | join SEP }}; each element is written as textOf writes it.
func join(sep string, list any) (string, error) {
	items, err := listOf("join", list)
	if err != nil {
		return "", err
	}
	parts := make([]string, len(items))
	for i, it := range items {
		if parts[i], err = textOf(it); err != nil {
			return "", fnError("join", err)
		}
	}
	return strings.Join(parts, sep), nil
}

// split is {{ STRING | split SEP }}; an empty string gives an empty list.
func split(sep string, v any) ([]string, error) {
	s, err := textOf(v)
	if err != nil {
		return nil, fnError("split", err)
	}
	if s == "" {
		return []string{}, nil
	}
	return strings.Split(s, sep), nil
}

func stringFunc(fn string, f func(string) string) func(any) (string, error) {
	return func(v any) (string, error) {
		s, err := textOf(v)
		if err != nil {
			return "", fnError(fn, err)
		}
		return f(s), nil
	}
}

// replaceAll is {{ STRING | replaceAll OLD NEW }}.
func replaceAll(old, new string, v any) (string, error) {
	s, err := textOf(v)
	if err != nil {
		return "", fnError("replaceAll", err)
	}
	return strings.ReplaceAll(s, old, new), nil
}

// contains is {{ HAYSTACK | contains NEEDLE }}: a substring of a string, an element of
// a list (compared as text), or a key of a map. nil contains nothing.
func contains(needle, haystack any) (bool, error) {
	n, err := textOf(needle)
	if err != nil {
		return false, fnError("contains", err)
	}
	switch h := haystack.(type) {
	case nil:
		return false, nil
	case map[string]any:
		_, ok := h[n]
		return ok, nil
	case string, json.Number, []byte:
		s, _ := textOf(h)
		return strings.Contains(s, n), nil
	}
	items, err := listOf("contains", haystack)
	if err != nil {
		return false, err
	}
	for _, it := range items {
		if s, err := textOf(it); err == nil && s == n {
			return true, nil
		}
	}
	return false, nil
}

// defaultFunc is {{ VALUE | default DEF }}: DEF when VALUE is missing, nil, "" or an
// empty list or map; VALUE otherwise (0 and false are values). With
// error_on_missing_key on, write {{ index .Data "key" | default "x" }} for an
// optional key: index does not fail on a missing key.
func defaultFunc(def any, given ...any) any {
	if len(given) == 0 {
		return def
	}
	v := given[len(given)-1]
	switch t := v.(type) {
	case nil:
		return def
	case string:
		if t == "" {
			return def
		}
		return v
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array, reflect.String:
		if rv.Len() == 0 {
			return def
		}
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return def
		}
	}
	return v
}

func listOf(fn string, v any) ([]any, error) {
	switch l := v.(type) {
	case []any:
		return l, nil
	case nil:
		return nil, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, &funcError{msg: fmt.Sprintf("%s: expected a list, got a %s", fn, kindOf(v))}
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, nil
}
