// Package jsonpatch applies RFC 6902 JSON patches with the add, remove, replace and
// test operations: what the injector's tests need to turn a pod and the webhook's
// patch into the pod the API server would store.
package jsonpatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Operation is one operation of a patch.
type Operation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Apply applies patch (a JSON array of operations) to doc (a JSON document) and
// returns the patched document. Operations apply in order; the first that fails
// stops the patch with an error naming it. move and copy are not supported.
func Apply(doc, patch []byte) ([]byte, error) {
	var ops []Operation
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("jsonpatch: the patch is not a JSON array of operations: %w", err)
	}
	root, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("jsonpatch: the document: %w", err)
	}
	for i, op := range ops {
		tokens, err := parsePointer(op.Path)
		if err != nil {
			return nil, fmt.Errorf("jsonpatch: operation %d (%s %q): %w", i, op.Op, op.Path, err)
		}
		var value any
		switch op.Op {
		case "add", "replace", "test":
			if op.Value == nil {
				return nil, fmt.Errorf("jsonpatch: operation %d (%s %q): no value", i, op.Op, op.Path)
			}
			if value, err = decode(op.Value); err != nil {
				return nil, fmt.Errorf("jsonpatch: operation %d (%s %q): value: %w", i, op.Op, op.Path, err)
			}
		case "remove":
		default:
			return nil, fmt.Errorf("jsonpatch: operation %d: unsupported op %q", i, op.Op)
		}
		if root, err = apply(root, tokens, op.Op, value); err != nil {
			return nil, fmt.Errorf("jsonpatch: operation %d (%s %q): %w", i, op.Op, op.Path, err)
		}
	}
	return json.Marshal(root)
}

func decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped reference tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("a JSON pointer must be empty or start with '/'")
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("invalid escape in %q: '~' must be followed by 0 or 1", t)
			}
		}
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return tokens, nil
}

// apply performs op at tokens under node and returns the new node.
func apply(node any, tokens []string, op string, value any) (any, error) {
	if len(tokens) == 0 {
		switch op {
		case "add", "replace":
			return value, nil
		case "test":
			if !reflect.DeepEqual(node, value) {
				return nil, errors.New("test failed: the value differs")
			}
			return node, nil
		default:
			return nil, errors.New("cannot remove the whole document")
		}
	}
	tok, rest := tokens[0], tokens[1:]
	switch n := node.(type) {
	case map[string]any:
		child, exists := n[tok]
		if len(rest) > 0 {
			if !exists {
				return nil, fmt.Errorf("member %q does not exist", tok)
			}
			v, err := apply(child, rest, op, value)
			if err != nil {
				return nil, err
			}
			n[tok] = v
			return n, nil
		}
		switch op {
		case "add":
			n[tok] = value
		case "replace":
			if !exists {
				return nil, fmt.Errorf("member %q does not exist", tok)
			}
			n[tok] = value
		case "remove":
			if !exists {
				return nil, fmt.Errorf("member %q does not exist", tok)
			}
			delete(n, tok)
		case "test":
			if !exists || !reflect.DeepEqual(child, value) {
				return nil, fmt.Errorf("test failed at member %q", tok)
			}
		}
		return n, nil
	case []any:
		if len(rest) == 0 && op == "add" && tok == "-" {
			return append(n, value), nil
		}
		i, err := arrayIndex(tok)
		if err != nil {
			return nil, err
		}
		if len(rest) > 0 {
			if i >= len(n) {
				return nil, fmt.Errorf("index %d is out of range (length %d)", i, len(n))
			}
			v, err := apply(n[i], rest, op, value)
			if err != nil {
				return nil, err
			}
			n[i] = v
			return n, nil
		}
		switch op {
		case "add":
			if i > len(n) {
				return nil, fmt.Errorf("index %d is out of range for insertion (length %d)", i, len(n))
			}
			out := make([]any, 0, len(n)+1)
			out = append(out, n[:i]...)
			out = append(out, value)
			return append(out, n[i:]...), nil
		case "replace", "remove", "test":
			if i >= len(n) {
				return nil, fmt.Errorf("index %d is out of range (length %d)", i, len(n))
			}
			switch op {
			case "replace":
				n[i] = value
			case "remove":
				return append(n[:i:i], n[i+1:]...), nil
			case "test":
				if !reflect.DeepEqual(n[i], value) {
					return nil, fmt.Errorf("test failed at index %d", i)
				}
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("cannot address %q inside a %s", tok, kind(node))
}

func arrayIndex(tok string) (int, error) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("%q is not an array index", tok)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, fmt.Errorf("%q is not an array index", tok)
		}
	}
	i, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("%q is not an array index", tok)
	}
	return i, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
