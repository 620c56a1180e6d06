// Package jsondepth measures how deeply a JSON document nests, without decoding it
// and without recursion, so that a receiver can refuse a document too deep for its
// decoder before decoding it.
//
// Scan is a tolerant lexer: it follows strings (with their escapes) and counts every
// '{' and '[' outside them, whatever the document's grammar. A JSON decoder nests only
// through those brackets, and every decoder agrees where a string starts and ends, so
// the depth Scan reports is never less than the nesting any decoder would recurse
// into, valid document or not. It also counts the values and, for callers that know
// their schema, the objects reached through chosen keys (OTLP's "arrayValue" and
// "kvlistValue"). Scan never fails on malformed JSON: the decoder that runs next
// explains what is wrong.
package jsondepth

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Limits bound a document; a zero field means no limit.
type Limits struct {
	// MaxDepth bounds the nesting of objects and arrays: {"a":1} is 1, [[1]] is 2.
	MaxDepth int
	// Keys are member names whose object or array values count one level of
	// KeyDepth each (compared after unescaping).
	Keys []string
	// MaxKeyDepth bounds KeyDepth: how many values of Keys enclose one another.
	MaxKeyDepth int
	// ItemWeights weighs the objects that are elements of an array value of the
	// named members (compared after unescaping), for callers whose decoder
	// allocates much more for some objects than for others: each adds its member's
	// weight to Result.ItemWeight.
	ItemWeights map[string]int
}

// Result is what Scan measured, up to where it stopped.
type Result struct {
	// Depth is the deepest nesting of objects and arrays.
	Depth int
	// KeyDepth is the deepest nesting of objects and arrays that are values of
	// Limits.Keys.
	KeyDepth int
	// Values counts the scalars, objects and arrays (an estimate of the decoder's
	// allocations).
	Values int
	// ItemWeight sums the weights of the objects Limits.ItemWeights names.
	ItemWeight int
}

// Error is a limit that the document exceeds.
type Error struct {
	// Offset is the byte offset of the bracket that went past the limit.
	Offset int
	// Key is true when MaxKeyDepth was exceeded, false for MaxDepth.
	Key bool
	// Limit is the limit exceeded.
	Limit int
}

func (e *Error) Error() string {
	if e.Key {
		return fmt.Sprintf("nested more than %d levels deep at byte %d", e.Limit, e.Offset)
	}
	return fmt.Sprintf("JSON nested more than %d levels deep at byte %d", e.Limit, e.Offset)
}

// frame is one open object or array.
type frame struct {
	object  bool // '{' rather than '['
	counted bool // the value of one of Limits.Keys: counts in KeyDepth
	weight  int  // an array value of one of Limits.ItemWeights: its objects' weight
}

// Scan measures data against lim. It returns an *Error at the first bracket past a
// limit, and stops there; otherwise it reads data to the end and returns nil.
func Scan(data []byte, lim Limits) (Result, error) {
	var (
		res   Result
		stack = make([]frame, 0, 32)
		keyD  int  // counted frames on the stack
		pend  bool // the last thing read is a key of Limits.Keys followed by ':'
		// pendW is the weight of the key of Limits.ItemWeights just read and followed
		// by ':', or 0.
		pendW int
		// lastStr is the last string read when it may be a key: its span in data.
		lastStart, lastEnd = -1, -1
	)
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch c {
		case ' ', '\t', '\r', '\n', ',':
			if c == ',' {
				lastStart, pend, pendW = -1, false, 0
			}
			continue
		case '"':
			start := i
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' {
					i++
				}
				i++
			}
			res.Values++
			pend, pendW, lastStart, lastEnd = false, 0, start, min(i+1, len(data))
			continue
		case ':':
			isMember := lastStart >= 0 && len(stack) > 0 && stack[len(stack)-1].object
			pend = isMember && isKey(data[lastStart:lastEnd], lim.Keys)
			if isMember && len(lim.ItemWeights) > 0 {
				pendW = keyWeight(data[lastStart:lastEnd], lim.ItemWeights)
			}
			lastStart = -1
			continue
		case '{', '[':
			counted, weight := pend, 0
			if c == '[' {
				weight = pendW
			} else if n := len(stack); n > 0 && !stack[n-1].object {
				res.ItemWeight += stack[n-1].weight
			}
			pend, pendW, lastStart = false, 0, -1
			if lim.MaxDepth > 0 && len(stack) >= lim.MaxDepth {
				return res, &Error{Offset: i, Limit: lim.MaxDepth}
			}
			if counted && lim.MaxKeyDepth > 0 && keyD >= lim.MaxKeyDepth {
				return res, &Error{Offset: i, Key: true, Limit: lim.MaxKeyDepth}
			}
			stack = append(stack, frame{object: c == '{', counted: counted, weight: weight})
			res.Values++
			res.Depth = max(res.Depth, len(stack))
			if counted {
				keyD++
				res.KeyDepth = max(res.KeyDepth, keyD)
			}
		case '}', ']':
			pend, pendW, lastStart = false, 0, -1
			if n := len(stack); n > 0 {
				if stack[n-1].counted {
					keyD--
				}
				stack = stack[:n-1]
			}
		default:
			// A number or a literal: skip to its end.
			pend, pendW, lastStart = false, 0, -1
			res.Values++
			for i+1 < len(data) && !delim(data[i+1]) {
				i++
			}
		}
	}
	return res, nil
}

func delim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ':', '"', '{', '}', '[', ']':
		return true
	}
	return false
}

// keyWeight returns the weight of the quoted string q (quotes included) in weights,
// or 0.
func keyWeight(q []byte, weights map[string]int) int {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return 0
	}
	raw := q[1 : len(q)-1]
	if !slices.Contains(raw, '\\') {
		return weights[string(raw)]
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return 0
	}
	return weights[s]
}

// isKey reports whether the quoted string q (quotes included) is one of keys.
func isKey(q []byte, keys []string) bool {
	if len(keys) == 0 || len(q) < 2 || q[len(q)-1] != '"' {
		return false
	}
	raw := q[1 : len(q)-1]
	if !slices.Contains(raw, '\\') {
		for _, k := range keys {
			if string(raw) == k {
				return true
			}
		}
		return false
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return false
	}
	return slices.Contains(keys, s)
}
