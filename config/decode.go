package config

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

// decoder maps a YAML node tree onto Go values strictly: unknown keys, wrong types and
// unset environment variables are problems reported with their field path, and decoding
// goes on so that every problem is found in one pass. A struct field tagged
// `config:"noexpand"` (template text) is taken literally, without ${VAR} expansion.
//
// A key written twice in one mapping is a problem naming both lines. Aliases are
// refused (parseYAML reports them first), and the decoder visits at most MaxNodes
// nodes, so its work is linear in the size of the file.
//
// Values of secret fields (confval.Secret, and maps or lists of them) never appear in
// a message, whatever they hold: their problems name the field and the line only.
type decoder struct {
	problems *confval.Problems
	lookup   func(string) (string, bool)
	// secret is set while decoding a value that holds secrets.
	secret bool
	// budget is how many more nodes may be visited.
	budget int
	// exhausted is set once the budget ran out (reported once).
	exhausted bool
}

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	unmarshalType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	secretType    = reflect.TypeOf(confval.Secret(""))
)

func newDecoder(p *confval.Problems) *decoder {
	return &decoder{problems: p, lookup: os.LookupEnv, budget: MaxNodes}
}

// holdsSecret reports whether values of t are secrets or contain secrets directly
// (pointers, lists and maps of secrets).
func holdsSecret(t reflect.Type) bool {
	for {
		if t == secretType {
			return true
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		default:
			return false
		}
	}
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if !d.exhausted {
			d.exhausted = true
			d.problems.Addf(path, "the configuration holds more than %d YAML nodes; that is the limit", MaxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.problems.Addf(path, "line %d: aliases (*name) are not supported; write the value out in full", n.Line)
		return
	}
	if !d.secret && holdsSecret(v.Type()) {
		d.secret = true
		defer func() { d.secret = false }()
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		d.decode(n.Content[0], v, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if v.Addr().Type().Implements(unmarshalType) {
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			if d.secret {
				d.problems.Addf(path, "line %d: not a valid value (it is secret, so it is not shown)", n.Line)
			} else {
				d.problems.Addf(path, "%v", err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// fieldsOf lists the YAML keys of a struct type, following ",inline" fields.
func fieldsOf(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, idx := range fieldsOf(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problems.Addf(path, "expected a mapping (key: value), got %s", d.describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if !d.firstKey(seen, key, path) {
			continue
		}
		idx, ok := fields[key.Value]
		if !ok {
			d.problems.Addf(join(path, key.Value), "unknown key (line %d); valid keys here: %s", key.Line, strings.Join(keysOf(fields), ", "))
			continue
		}
		field := v.FieldByIndex(idx)
		if v.Type().FieldByIndex(idx).Tag.Get("config") == "noexpand" {
			// Template text: ${...} is the template's business, not the config's.
			saved := d.lookup
			d.lookup = nil
			d.decode(val, field, join(path, key.Value))
			d.lookup = saved
			continue
		}
		d.decode(val, field, join(path, key.Value))
	}
}

// firstKey records key in seen and reports whether it is the first of its name in
// the mapping; a repeated key is a problem naming both lines (YAML forbids it, and
// silently keeping either value would hide a mistake).
func (d *decoder) firstKey(seen map[string]int, key *yaml.Node, path string) bool {
	if line, dup := seen[key.Value]; dup {
		d.problems.Addf(join(path, key.Value), "the key is written twice in one mapping, on line %d and line %d; keep one", line, key.Line)
		return false
	}
	seen[key.Value] = key.Line
	return true
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.problems.Addf(path, "expected a mapping (key: value), got %s", d.describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.problems.Addf(path, "unsupported map key type %s", v.Type().Key())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if !d.firstKey(seen, key, path) {
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.problems.Addf(path, "line %d: a key must be a single value, not a list or a mapping", key.Line)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, join(path, key.Value))
		v.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.problems.Addf(path, "expected a list, got %s", d.describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.problems.Addf(path, "invalid duration %q; write a number with a unit, e.g. \"500ms\", \"30s\", \"5m\"", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.problems.Addf(path, "expected true or false, got %q", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			d.problems.Addf(path, "expected a whole number, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			d.problems.Addf(path, "expected a whole number >= 0, got %q", s)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			d.problems.Addf(path, "expected a number, got %q", s)
			return
		}
		v.SetFloat(f)
	default:
		d.problems.Addf(path, "unsupported type %s", v.Type())
	}
}

// scalar returns a scalar node's value with environment variables expanded.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problems.Addf(path, "expected a single value, got %s", d.describe(n))
		return "", false
	}
	if d.lookup == nil {
		return n.Value, true
	}
	s, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		if d.secret {
			d.problems.Addf(path, "%s", err.(*expandError).secretMessage(n.Line))
		} else {
			d.problems.Addf(path, "%v", err)
		}
		return "", false
	}
	return s, true
}

// expandError is a failed ${VAR} expansion. Error quotes the value; secretMessage,
// for a secret field, says what is wrong without any of it.
type expandError struct {
	kind  expandProblem
	value string // the whole value
	expr  string // what is between ${ and }
	name  string // the variable's name
}

type expandProblem int

const (
	unterminated expandProblem = iota
	invalidName
	unset
)

func (e *expandError) Error() string {
	switch e.kind {
	case unterminated:
		return fmt.Sprintf("unterminated ${ in %q; close it with }, or write $${ for a literal ${", e.value)
	case invalidName:
		return fmt.Sprintf("invalid environment variable name %q in ${%s}; write ${NAME} with letters, digits and _, or $${ for a literal ${", e.name, e.expr)
	default:
		return fmt.Sprintf("environment variable %s is not set; set it or write ${%s:-default}", e.name, e.name)
	}
}

func (e *expandError) secretMessage(line int) string {
	const hidden = "(the value is secret, so no part of it is shown)"
	const literal = "if the ${ is part of the secret itself, write it as $${"
	switch e.kind {
	case unterminated:
		return fmt.Sprintf("line %d: the value holds a ${ without a closing } %s; close the ${NAME} reference, or %s", line, hidden, literal)
	case invalidName:
		return fmt.Sprintf("line %d: the value holds a ${...} that is not a valid environment variable reference %s; write ${NAME} with letters, digits and _, or %s", line, hidden, literal)
	default:
		return fmt.Sprintf("line %d: the value refers to an environment variable that is not set %s; set the variable, or %s", line, hidden, literal)
	}
}

// expandEnv replaces ${VAR} and ${VAR:-default} in s; "$$" stands for a literal "$".
// A "$" not followed by "{" or "$" is kept as it is.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", &expandError{kind: unterminated, value: s}
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !validEnvName(name) {
				return "", &expandError{kind: invalidName, value: s, expr: expr, name: name}
			}
			val, ok := lookup(name)
			switch {
			case ok && (val != "" || !hasDef):
				b.WriteString(val)
			case hasDef:
				b.WriteString(def)
			default:
				return "", &expandError{kind: unset, value: s, expr: expr, name: name}
			}
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func keysOf(m map[string][]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describe names what n is for a message; a scalar is quoted, except in a secret
// field.
func (d *decoder) describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return fmt.Sprintf("a mapping (line %d)", n.Line)
	case n.Kind == yaml.SequenceNode:
		return fmt.Sprintf("a list (line %d)", n.Line)
	case d.secret:
		return fmt.Sprintf("a single value (line %d)", n.Line)
	default:
		return fmt.Sprintf("%q (line %d)", n.Value, n.Line)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
