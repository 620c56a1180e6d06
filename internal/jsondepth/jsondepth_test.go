package jsondepth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var otlpKeys = []string{"arrayValue", "array_value", "kvlistValue", "kvlist_value"}

func TestScan(t *testing.T) {
	deepArr := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	for _, tc := range []struct {
		name      string
		in        string
		lim       Limits
		depth     int
		keyDepth  int
		values    int
		tooDeep   bool
		keyErr    bool
		errOffset int
	}{
		{name: "scalar", in: `1`, depth: 0, values: 1},
		{name: "object", in: `{"a":1}`, depth: 1, values: 3},
		{name: "nested", in: `{"a":[1,{"b":[true,null]}]}`, depth: 4, values: 9},
		{name: "brackets in strings", in: `{"a":"[[[{{{\"]]]"}`, depth: 1, values: 3},
		{name: "escaped backslash before quote", in: `["\\",["x"]]`, depth: 2, values: 4},
		{name: "deep arrays", in: deepArr, depth: 100, values: 100},
		{name: "deep arrays over limit", in: deepArr, lim: Limits{MaxDepth: 64}, depth: 64, values: 64, tooDeep: true, errOffset: 64},
		{name: "exactly at limit", in: `[[[]]]`, lim: Limits{MaxDepth: 3}, depth: 3, values: 3},
		{name: "unterminated string", in: `["abc`, depth: 1, values: 2},
		{name: "stray closers", in: `]]]}{`, depth: 1, values: 1},
		{name: "keys counted", in: `{"value":{"arrayValue":{"values":[{"kvlistValue":{"values":[]}}]}}}`,
			lim: Limits{Keys: otlpKeys}, depth: 7, keyDepth: 2, values: 12},
		{name: "escaped key counted", in: `{"\u0061rrayValue":{"array_value":{}}}`,
			lim: Limits{Keys: otlpKeys}, depth: 3, keyDepth: 2, values: 5},
		{name: "key as a value is not counted", in: `{"a":"arrayValue","b":{}}`,
			lim: Limits{Keys: otlpKeys}, depth: 2, keyDepth: 0, values: 5},
		{name: "scalar value of a key", in: `{"arrayValue":1,"x":{}}`,
			lim: Limits{Keys: otlpKeys}, depth: 2, keyDepth: 0, values: 5},
		{name: "key depth over limit", in: `{"arrayValue":{"arrayValue":{"arrayValue":{}}}}`,
			lim: Limits{Keys: otlpKeys, MaxKeyDepth: 2}, depth: 3, keyDepth: 2, values: 6, tooDeep: true, keyErr: true, errOffset: 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Scan([]byte(tc.in), tc.lim)
			var e *Error
			if tc.tooDeep != errors.As(err, &e) {
				t.Fatalf("err = %v, want too deep %v", err, tc.tooDeep)
			}
			if e != nil && (e.Key != tc.keyErr || e.Offset != tc.errOffset) {
				t.Errorf("error %+v, want key %v at %d", e, tc.keyErr, tc.errOffset)
			}
			if res.Depth != tc.depth || res.KeyDepth != tc.keyDepth || res.Values != tc.values {
				t.Errorf("Scan = %+v, want depth %d, key depth %d, values %d", res, tc.depth, tc.keyDepth, tc.values)
			}
		})
	}
}

// TestScanLargeIsIterative scans a document far deeper than a recursive scanner's
// stack would allow in a test.
func TestScanLargeIsIterative(t *testing.T) {
	n := 1 << 20
	in := strings.Repeat("[", n) + strings.Repeat("]", n)
	res, err := Scan([]byte(in), Limits{})
	if err != nil || res.Depth != n {
		t.Fatalf("Scan = %+v, %v; want depth %d", res, err, n)
	}
}

// jsonDepth is the nesting of a decoded value.
func jsonDepth(v any) int {
	switch v := v.(type) {
	case []any:
		d := 0
		for _, e := range v {
			d = max(d, jsonDepth(e))
		}
		return d + 1
	case map[string]any:
		d := 0
		for _, e := range v {
			d = max(d, jsonDepth(e))
		}
		return d + 1
	}
	return 0
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{`{}`, `{"dataPoints":[{"exemplars":[{},{}]},{}]}`, `[1,[2,[3]]]`, `{"a":"\"[","b":{"c":[]}}`, `{"arrayValue":{"values":[{"kvlistValue":{}}]}}`, `"\\"`, `[{"a":1e5,"b":null}]`} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		limit = 1 + abs(limit)%16
		res, err := Scan(data, Limits{MaxDepth: limit, Keys: otlpKeys, MaxKeyDepth: limit, ItemWeights: fuzzWeights})
		if res.Depth > limit || res.KeyDepth > limit || res.KeyDepth > res.Depth {
			t.Fatalf("result %+v past limit %d", res, limit)
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		// Differential: a document encoding/json decodes is measured exactly, and
		// refused only when it is deeper than the limit.
		want := jsonDepth(v)
		var e *Error
		switch {
		case want > limit && (!errors.As(err, &e) || e.Key && res.Depth > limit):
			t.Fatalf("depth %d over limit %d not refused: %+v, %v", want, limit, res, err)
		case want <= limit && err != nil && !errors.As(err, &e):
			t.Fatalf("unexpected error %v", err)
		case want <= limit && err == nil && res.Depth != want:
			t.Fatalf("depth %d, encoding/json says %d", res.Depth, want)
		case err != nil && !e.Key && want <= limit:
			t.Fatalf("refused depth %d within limit %d: %v", want, limit, err)
		}
		// The weight never falls short of the objects encoding/json finds in the
		// weighted lists (it may count more: a key written twice counts twice).
		if w := itemWeight(v, fuzzWeights); err == nil && res.ItemWeight < w {
			t.Fatalf("item weight %d, encoding/json finds %d", res.ItemWeight, w)
		}
	})
}

var fuzzWeights = map[string]int{"exemplars": 10, "dataPoints": 1}

// itemWeight is Result.ItemWeight computed on the decoded document (recursively: the
// fuzzed documents are at most 16 deep).
func itemWeight(v any, w map[string]int) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if list, ok := e.([]any); ok {
				for _, it := range list {
					if _, ok := it.(map[string]any); ok {
						n += w[k]
					}
				}
			}
			n += itemWeight(e, w)
		}
	case []any:
		for _, e := range x {
			n += itemWeight(e, w)
		}
	}
	return n
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestItemWeights: the objects in an array value of a weighted member add its
// weight, however the key is spelled; other objects, nested arrays and scalars do
// not.
func TestItemWeights(t *testing.T) {
	w := map[string]int{"exemplars": 10, "dataPoints": 1}
	for _, tt := range []struct {
		doc  string
		want int
	}{
		{`{"exemplars":[{},{},{}]}`, 30},
		{`{"dataPoints":[{"exemplars":[{}]},{}]}`, 12},
		{`{"ex\u0065mplars":[{}]}`, 10},
		{`{"exemplars":[[{}],1,"x",{}]}`, 10},
		{`{"exemplars":{"a":{}}}`, 0},
		{`{"other":[{}],"list":["exemplars",{}]}`, 0},
		{`["exemplars",[{}]]`, 0},
	} {
		res, err := Scan([]byte(tt.doc), Limits{ItemWeights: w})
		if err != nil || res.ItemWeight != tt.want {
			t.Errorf("%s: weight %d, %v; want %d", tt.doc, res.ItemWeight, err, tt.want)
		}
	}
}
