package otlpexporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestValidateHeaderFiles(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("Bearer x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name    string
		files   map[string]string
		headers map[string]confval.Secret
		want    []string
	}{
		{"ok", map[string]string{"Authorization": tok}, nil, nil},
		{"missing file", map[string]string{"Authorization": missing}, nil, []string{`headers_from_files.Authorization: cannot read "` + missing + `"`}},
		{"both ways", map[string]string{"authorization": tok}, map[string]confval.Secret{"Authorization": "x"}, []string{`also in headers`}},
		{"reserved", map[string]string{"Content-Type": tok}, nil, []string{"set by the exporter itself"}},
		{"bad name", map[string]string{"a b": tok}, nil, []string{"invalid header name"}},
		{"no path", map[string]string{"X-Token": ""}, nil, []string{"needs the path"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p confval.Problems
			validateHeaderFiles(p.At("headers_from_files"), tc.files, tc.headers)
			err := p.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("problems %v do not contain %q", err, w)
				}
			}
		})
	}
}

func TestHeaderFilesApply(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("Bearer one\n"), 0o600)
	cfg := &Config{HeadersFromFiles: map[string]string{"Authorization": tok}, CredentialSources: map[string]string{tok: `Secret "t" key "token"`}}
	h := newHeaderFiles(cfg)
	got := map[string]string{}
	if err := h.apply(func(k, v string) { got[k] = v }); err != nil || got["Authorization"] != "Bearer one" {
		t.Fatalf("apply = %v, %v", got, err)
	}
	os.WriteFile(tok, []byte("Bearer two\nX-Injected: yes\n"), 0o600)
	if err := h.apply(func(k, v string) {}); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("a value with a line break: %v", err)
	}
	if err := h.refused(os.ErrPermission); !strings.Contains(err.Error(), `Secret "t" key "token"`) {
		t.Errorf("refused = %v", err)
	}
}
