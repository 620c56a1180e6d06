package render

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text: ok", "plain text: ok"},
		{"unicode ✓ 日本", "unicode ✓ 日本"},
		{"two\nlines\r\ttab", `two\nlines\r\ttab`},
		{"nul\x00 esc\x1b del\x7f", `nul\x00 esc\x1b del\x7f`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"nbsp\u00a0zwsp\u200b", `nbsp\u00a0zwsp\u200b`},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in); got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	seen := []string{"hunter22", "hunter2-longer", "a\"quote\"d", "tiny"}
	tests := []struct{ in, want string }{
		{"no values here", "no values here"},
		{"got hunter2-longer and hunter22", "got [redacted] and [redacted]"},
		{`quoted "a\"quote\"d"`, `quoted "[redacted]"`},
		{"tiny is scrubbed at 4 bytes", "[redacted] is scrubbed at 4 bytes"},
	}
	for _, tt := range tests {
		if got := scrub(tt.in, seen); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := collectStrings(nil, map[string]any{"a": "abc", "b": []any{"long enough", map[string]any{"c": "nested!"}}, "n": 12}); len(got) != 2 {
		t.Errorf("collectStrings = %q, want the two strings of 4+ bytes", got)
	}
}

func TestSplitExecError(t *testing.T) {
	tests := []struct {
		root, msg         string
		loc, expr, reason string
		ok                bool
	}{
		{"/s/x", `template: /s/x:3:14: executing "/s/x" at <.Data.x>: map has no entry for key "x"`, "line 3, column 14", ".Data.x", `map has no entry for key "x"`, true},
		{"/s/a: b", `template: /s/a: b:1:2: executing "d: \" at <" at <eq .a ">: ">: incompatible`, "line 1, column 2", `eq .a "`, `">: incompatible`, true},
		{"/s/x", `template: /s/x: "/s/x" is an incomplete or empty template`, "", "", `"/s/x" is an incomplete or empty template`, true},
		{"/s/x", `something else`, "", "", "", false},
	}
	for _, tt := range tests {
		loc, expr, reason, ok := splitExecError(tt.root, tt.msg)
		if loc != tt.loc || expr != tt.expr || reason != tt.reason || ok != tt.ok {
			t.Errorf("splitExecError(%q) = %q, %q, %q, %v", tt.msg, loc, expr, reason, ok)
		}
	}
}

// A file path holding ": " must not confuse the rebuilt error.
func TestRenderErrorPathWithColon(t *testing.T) {
	tm, err := NewTemplate(FileConfig{Path: "/vault/secrets/a: b", Template: "\n{{ with secret \"kv/app\" }}{{ .Data.nope }}{{ end }}"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = tm.Render(context.Background(), &mapFetcher{secrets: testSecrets()})
	if !errors.Is(err, ErrMissingKey) || !strings.Contains(err.Error(), `render /vault/secrets/a: b: template line 2, column 34 at <.Data.nope>: the secret has no key "nope"`) {
		t.Errorf("err = %v", err)
	}
}
