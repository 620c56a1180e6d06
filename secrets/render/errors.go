package render

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"
)

// Template errors are rebuilt rather than passed on: text/template's execution errors
// can print the value being evaluated ("range can't iterate over hunter2"), and a secret
// value must never reach a log line. A rebuilt error names the file, the template line
// and column, the expression (template source, never data) and a reason: reasons known
// to carry only names and types are kept, the rest are withheld. As a second guard,
// every string a render fetched is scrubbed from the message.

// minScrubLen is the shortest fetched value scrubbed from error messages; shorter ones
// would mangle ordinary words.
const minScrubLen = 4

const withheld = "[redacted]"

// unsafeReasons start text/template messages that print a value.
var unsafeReasons = []string{
	"if/with can't use ",
	"can't use ",
	"range ",
	"error calling call: ",
}

// safeReasons start text/template messages that print only template source, names and
// types.
var safeReasons = []string{
	"undefined variable: ",
	"template ",
	"exceeded maximum template depth",
	"can't give argument to non-function ",
	"nil is not a command",
	"can't evaluate command ",
	"indirection through explicit nil in ",
	"nil pointer evaluating ",
	"can't evaluate field ",
	"wrong number of args for ",
	"invalid value; expected ",
	"dereference of nil pointer of type ",
	"wrong type for value; expected ",
	"cannot assign nil to ",
	"can't handle ",
	"expected bool; found ",
	"expected string; found ",
	"expected integer; found ",
	"expected unsigned integer; found ",
	"expected float; found ",
	"expected complex; found ",
	"can't print ",
}

// safeReasonParts are the fixed parts of safe messages that start with a name.
var safeReasonParts = []string{
	" is not a defined function",
	" is an unexported field of struct type ",
	" has arguments but cannot be invoked as function",
	" is not a method but has arguments",
	" is an incomplete or empty template",
}

// safeBuiltinReasons are the safe messages of text/template's own functions (index,
// slice, len, eq …), after "error calling NAME: ".
var safeBuiltinReasons = []string{
	"cannot index slice/array with ",
	"index of untyped nil",
	"index of nil pointer",
	"can't index item of type ",
	"slice of untyped nil",
	"slice of nil pointer",
	"too many slice indexes",
	"cannot 3-index slice a string",
	"can't slice item of type ",
	"len of nil pointer",
	"len of type ",
	"incompatible types for comparison",
	"invalid type for comparison",
	"missing argument for comparison",
	"value is nil; should be of type ",
	"value has type ",
}

// parseError rewrites a text/template parse error of the template named name as
// "line N: reason". Parse errors show template source only.
func parseError(name string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "template: "+name+":"); ok {
		if line, after, ok := cutNumber(rest); ok {
			if after, ok := strings.CutPrefix(after, ": "); ok {
				return errors.New("line " + line + ": " + cleanText(after))
			}
		}
		return errors.New(cleanText(strings.TrimPrefix(rest, " ")))
	}
	return errors.New(cleanText(strings.TrimPrefix(msg, "template: ")))
}

// execError rewrites an error from executing the template of file.
func execError(file string, err error, r *run) error {
	seen := r.seen()
	var ee template.ExecError
	if !errors.As(err, &ee) {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		msg = strings.TrimPrefix(msg, file+": ")
		return fmt.Errorf("render %s: %s", file, scrub(cleanText(msg), seen))
	}
	loc, expr, reason, ok := splitExecError(file, ee.Err.Error())
	if !ok {
		return fmt.Errorf("render %s: template execution failed (%s)", file, withheldNote)
	}
	where := "template " + loc
	if expr != "" {
		where += " at <" + scrub(cleanText(expr), seen) + ">"
	}

	var fe *funcError
	if errors.As(ee.Err, &fe) {
		return &renderError{msg: fmt.Sprintf("render %s: %s: %s", file, where, scrub(cleanText(fe.msg), seen)), err: fe}
	}
	if key, ok := strings.CutPrefix(reason, "map has no entry for key "); ok {
		k, err := strconv.Unquote(key)
		if err != nil {
			k = key
		}
		return &renderError{
			msg: fmt.Sprintf("render %s: %s: the secret has no key %q; check the name (KV v2 keys are under .Data.data) or set error_on_missing_key: false",
				file, where, scrub(cleanText(k), seen)),
			err: ErrMissingKey,
		}
	}
	if key, ok := strings.CutPrefix(reason, "nil data; no entry for key "); ok {
		return fmt.Errorf("render %s: %s: no data for %s; fields such as .Data exist only inside {{ with secret \"PATH\" }} or on the result of (secret \"PATH\")",
			file, where, scrub(cleanText(key), seen))
	}
	if safeReason(reason) {
		return fmt.Errorf("render %s: %s: %s", file, where, scrub(cleanText(reason), seen))
	}
	return fmt.Errorf("render %s: %s: %s", file, where, withheldNote)
}

const withheldNote = "the reason is withheld because it may contain a secret value; check the types of the values used there"

// renderError is a rebuilt template error that keeps the cause for errors.Is.
type renderError struct {
	msg string
	err error
}

func (e *renderError) Error() string { return e.msg }
func (e *renderError) Unwrap() error { return e.err }

// splitExecError splits a text/template execution message,
//
//	template: ROOT:LINE:COL: executing "NAME" at <EXPR>: REASON
//	template: NAME: REASON
//
// into "line LINE, column COL", EXPR and REASON.
func splitExecError(root, msg string) (loc, expr, reason string, ok bool) {
	rest, ok := strings.CutPrefix(msg, "template: ")
	if !ok {
		return "", "", "", false
	}
	if after, found := strings.CutPrefix(rest, root+":"); found {
		line, after, okL := cutNumber(after)
		after, okS := strings.CutPrefix(after, ":")
		col, after, okC := cutNumber(after)
		after, okE := strings.CutPrefix(after, ": executing ")
		if okL && okS && okC && okE {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return "", "", "", false
			}
			after, ok = strings.CutPrefix(after[len(q):], " at <")
			if !ok {
				return "", "", "", false
			}
			// EXPR is at most 20 bytes of source and "..."; the first ">: " ends it.
			i := strings.Index(after, ">: ")
			if i < 0 {
				return "", "", "", false
			}
			return "line " + line + ", column " + col, after[:i], after[i+3:], true
		}
	}
	// No node: "template: NAME: REASON" where NAME is the root or a {{ define }}.
	if after, found := strings.CutPrefix(rest, root+": "); found {
		return "", "", after, true
	}
	if i := strings.Index(rest, ": "); i >= 0 {
		return "", "", rest[i+2:], true
	}
	return "", "", "", false
}

func safeReason(reason string) bool {
	for _, p := range unsafeReasons {
		if strings.HasPrefix(reason, p) {
			return false
		}
	}
	if rest, ok := strings.CutPrefix(reason, "error calling "); ok {
		_, msg, ok := strings.Cut(rest, ": ")
		if !ok {
			return false
		}
		for _, p := range safeBuiltinReasons {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	for _, p := range safeReasons {
		if strings.HasPrefix(reason, p) {
			return true
		}
	}
	for _, p := range safeReasonParts {
		if strings.Contains(reason, p) {
			return true
		}
	}
	return false
}

func cutNumber(s string) (num, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:], i > 0
}

// cleanText makes s one printable line: control characters, invalid UTF-8 and
// non-printing runes are written as Go escapes.
func cleanText(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !unicode.IsPrint(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// collectStrings appends the string leaves of v long enough to scrub.
func collectStrings(dst []string, v any) []string {
	switch t := v.(type) {
	case string:
		if len(t) >= minScrubLen {
			dst = append(dst, t)
		}
	case map[string]any:
		for _, e := range t {
			dst = collectStrings(dst, e)
		}
	case []any:
		for _, e := range t {
			dst = collectStrings(dst, e)
		}
	}
	return dst
}

// scrub replaces every value of seen found in s, longest first.
func scrub(s string, seen []string) string {
	if len(seen) == 0 || s == "" {
		return s
	}
	vals := append([]string(nil), seen...)
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	for _, v := range vals {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, withheld)
		}
		// The same value as it appears quoted (%q) or escaped.
		if q := strconv.Quote(v); len(q) > 2 {
			if inner := q[1 : len(q)-1]; inner != v && strings.Contains(s, inner) {
				s = strings.ReplaceAll(s, inner, withheld)
			}
		}
		if c := cleanText(v); c != v && strings.Contains(s, c) {
			s = strings.ReplaceAll(s, c, withheld)
		}
	}
	return s
}
