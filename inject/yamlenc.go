package inject

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(confval.Secret(""))
	marshalType  = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// encodeYAML encodes a configuration value (config.Config or one of its parts) as a
// YAML node tree the config package decodes back to the same value. Zero values are
// left out, so the result lists only what was set; nil pointers are left out but a
// non-nil pointer is written even when it points at a zero value (an empty section
// turns a feature on; a *bool false differs from its default). Strings are escaped
// for the configuration's ${VAR} expansion ("$" becomes "$$") except in fields tagged
// config:"noexpand", which the decoder takes literally; secrets are written in clear.
// The result is nil when v is zero.
func encodeYAML(v any) (*yaml.Node, error) {
	return encodeValue(reflect.ValueOf(v), true, false)
}

func encodeValue(v reflect.Value, expand, force bool) (*yaml.Node, error) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, nil
		}
		return encodeValue(v.Elem(), expand, true)
	}
	if !force && v.IsZero() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == durationType:
		return scalar("!!str", time.Duration(v.Int()).String()), nil
	case t == secretType:
		return str(v.String(), expand), nil
	case t.Implements(marshalType):
		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", t, err)
		}
		return str(string(text), expand), nil
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if err := encodeFields(n, v, expand); err != nil {
			return nil, err
		}
		return n, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("encode %s: map keys must be strings", t)
		}
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			val, err := encodeValue(v.MapIndex(reflect.ValueOf(k).Convert(t.Key())), expand, true)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, scalar("!!str", k), val)
		}
		return n, nil
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := 0; i < v.Len(); i++ {
			item, err := encodeValue(v.Index(i), expand, true)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, item)
		}
		return n, nil
	case reflect.String:
		return str(v.String(), expand), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return scalar("!!float", strconv.FormatFloat(v.Float(), 'g', -1, t.Bits())), nil
	}
	return nil, fmt.Errorf("encode %s: unsupported kind %s", t, v.Kind())
}

// encodeFields appends the non-zero fields of struct v to mapping n, following
// ",inline" fields.
func encodeFields(n *yaml.Node, v reflect.Value, expand bool) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fieldExpand := expand && f.Tag.Get("config") != "noexpand"
		if strings.Contains(opts, "inline") {
			if err := encodeFields(n, v.Field(i), fieldExpand); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		val, err := encodeValue(v.Field(i), fieldExpand, false)
		if err != nil {
			return err
		}
		if val == nil {
			continue
		}
		n.Content = append(n.Content, scalar("!!str", name), val)
	}
	return nil
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// str is a string scalar, escaped for ${VAR} expansion when expand is set, written as
// a literal block when it has several lines.
func str(s string, expand bool) *yaml.Node {
	if expand {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	n := scalar("!!str", s)
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

// mappingValue returns the value under key in mapping n, adding an empty mapping
// when there is none.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	n.Content = append(n.Content, scalar("!!str", key), v)
	return v
}
