package jsonpatch

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The cases come from RFC 6902's appendix A, plus the error cases the injector's
// patches could hit.
func TestApply(t *testing.T) {
	tests := []struct {
		name, doc, patch, want, err string
	}{
		{"add member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`, ""},
		{"add array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`, ""},
		{"add at front", `{"a":[1]}`, `[{"op":"add","path":"/a/0","value":0}]`, `{"a":[0,1]}`, ""},
		{"add at end index", `{"a":[1]}`, `[{"op":"add","path":"/a/1","value":2}]`, `{"a":[1,2]}`, ""},
		{"append", `{"a":[1]}`, `[{"op":"add","path":"/a/-","value":{"x":1}}]`, `{"a":[1,{"x":1}]}`, ""},
		{"remove member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`, ""},
		{"remove element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`, ""},
		{"replace", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`, ""},
		{"add replaces member", `{"a":1}`, `[{"op":"add","path":"/a","value":2}]`, `{"a":2}`, ""},
		{"escaped", `{"m":{}}`, `[{"op":"add","path":"/m/outrider.dev~1status","value":"x"},{"op":"add","path":"/m/a~0b","value":"y"}]`, `{"m":{"a~b":"y","outrider.dev/status":"x"}}`, ""},
		{"whole document", `{"a":1}`, `[{"op":"replace","path":"","value":[1]}]`, `[1]`, ""},
		{"test passes", `{"a":[1,{"b":2}]}`, `[{"op":"test","path":"/a/1","value":{"b":2}}]`, `{"a":[1,{"b":2}]}`, ""},
		{"numbers kept", `{"a":12345678901234567890}`, `[]`, `{"a":12345678901234567890}`, ""},
		{"missing parent", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "", `member "baz" does not exist`},
		{"index past end", `{"a":[1]}`, `[{"op":"add","path":"/a/2","value":2}]`, "", "out of range"},
		{"leading zero", `{"a":[1,2]}`, `[{"op":"remove","path":"/a/01"}]`, "", "not an array index"},
		{"replace missing", `{}`, `[{"op":"replace","path":"/a","value":1}]`, "", "does not exist"},
		{"remove missing", `{}`, `[{"op":"remove","path":"/a"}]`, "", "does not exist"},
		{"test fails", `{"a":1}`, `[{"op":"test","path":"/a","value":2}]`, "", "test failed"},
		{"no value", `{}`, `[{"op":"add","path":"/a"}]`, "", "no value"},
		{"bad pointer", `{}`, `[{"op":"add","path":"a","value":1}]`, "", "must be empty or start with '/'"},
		{"bad escape", `{}`, `[{"op":"add","path":"/a~2","value":1}]`, "", "invalid escape"},
		{"into scalar", `{"a":1}`, `[{"op":"add","path":"/a/b","value":1}]`, "", "inside a number"},
		{"move unsupported", `{}`, `[{"op":"move","from":"/a","path":"/b"}]`, "", "unsupported op"},
		{"not an array", `{}`, `{"op":"add"}`, "", "not a JSON array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.doc), []byte(tt.patch))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(tt.want)) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	va, err := decode(a)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

// FuzzApply checks that no document or patch makes Apply panic, and that a patch it
// accepts yields valid JSON.
func FuzzApply(f *testing.F) {
	f.Add(`{"a":[1,2]}`, `[{"op":"add","path":"/a/-","value":3}]`)
	f.Add(`{"m":{}}`, `[{"op":"add","path":"/m/a~1b","value":"x"},{"op":"remove","path":"/m/a~1b"}]`)
	f.Add(`[1,[2]]`, `[{"op":"replace","path":"/1/0","value":{}},{"op":"test","path":"/0","value":1}]`)
	f.Fuzz(func(t *testing.T, doc, patch string) {
		out, err := Apply([]byte(doc), []byte(patch))
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Apply returned invalid JSON %q", out)
		}
	})
}
