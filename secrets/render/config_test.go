package render

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

func TestApplyDefaults(t *testing.T) {
	zero, no := 0, false
	tests := []struct {
		name       string
		in         FileConfig
		wantFormat Format
		wantMode   string
		wantUID    int
		wantMissOn bool
	}{
		{"template", FileConfig{Template: "x"}, "", DefaultMode, -1, true},
		{"source defaults to env", FileConfig{Source: "secret/app"}, FormatEnv, DefaultMode, -1, true},
		{"source with key defaults to raw", FileConfig{Source: "secret/app", Key: "password"}, FormatRaw, DefaultMode, -1, true},
		{"explicit values kept", FileConfig{Source: "s", Format: FormatJSON, Mode: "0440", UID: &zero, ErrorOnMissingKey: &no}, FormatJSON, "0440", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in
			c.ApplyDefaults()
			uid, gid := c.Owner()
			if c.Format != tt.wantFormat || c.Mode != tt.wantMode || uid != tt.wantUID || c.missingKeyIsError() != tt.wantMissOn {
				t.Errorf("got format=%q mode=%q uid=%d missingKeyIsError=%v", c.Format, c.Mode, uid, c.missingKeyIsError())
			}
			if gid != -1 {
				t.Errorf("gid = %d, want -1", gid)
			}
			again := c
			again.ApplyDefaults()
			if again.Format != c.Format || again.Mode != c.Mode {
				t.Error("ApplyDefaults is not idempotent")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	minus2 := -2
	tests := []struct {
		name string
		cfg  FileConfig
		want []string // each must appear in the error; none means valid
	}{
		{"template ok", FileConfig{Path: "/vault/secrets/db.env", Template: `{{ with secret "db/creds/app" }}{{ .Data.username }}{{ end }}`}, nil},
		{"template_file ok", FileConfig{Path: "/s/x", TemplateFile: "/etc/t.tmpl"}, nil},
		{"source ok", FileConfig{Path: "/s/x", Source: "secret/data/app", Format: FormatProperties}, nil},
		{"raw ok", FileConfig{Path: "/s/x", Source: "secret/app", Key: "password"}, nil},
		{"mode 0440 ok", FileConfig{Path: "/s/x", Source: "s", Mode: "0440"}, nil},
		{"mode 0o640 ok", FileConfig{Path: "/s/x", Source: "s", Mode: "0o640"}, nil},
		{"path missing", FileConfig{Source: "s"}, []string{"files[0].path: required"}},
		{"path relative", FileConfig{Path: "secrets/x", Source: "s"}, []string{`files[0].path: "secrets/x" must be absolute`}},
		{"path unclean", FileConfig{Path: "/s/../x", Source: "s"}, []string{`files[0].path: "/s/../x" is not a clean path; write "/x"`}},
		{"nothing", FileConfig{Path: "/s/x"}, []string{"files[0]: set one of template, template_file or source"}},
		{"two sources", FileConfig{Path: "/s/x", Template: "x", Source: "s"}, []string{"files[0]: template and source are exclusive"}},
		{"format with template", FileConfig{Path: "/s/x", Template: "x", Format: FormatJSON}, []string{"files[0].format: applies only to source"}},
		{"key with template", FileConfig{Path: "/s/x", TemplateFile: "/t", Key: "k"}, []string{"files[0].key: applies only to source"}},
		{"key with env", FileConfig{Path: "/s/x", Source: "s", Format: FormatEnv, Key: "k"}, []string{"files[0].key: applies only to format raw"}},
		{"raw without key", FileConfig{Path: "/s/x", Source: "s", Format: FormatRaw}, []string{"files[0].key: required with format raw"}},
		{"bad format", FileConfig{Path: "/s/x", Source: "s", Format: "toml"}, []string{`files[0].format: must be one of env, json, yaml, properties, raw; got "toml"`}},
		{"source slash", FileConfig{Path: "/s/x", Source: "/secret/app"}, []string{"files[0].source: \"/secret/app\" must not start with '/'"}},
		{"world readable", FileConfig{Path: "/s/x", Source: "s", Mode: "0644"}, []string{`files[0].mode: "0644" gives access to other users`}},
		{"world executable", FileConfig{Path: "/s/x", Source: "s", Mode: "0401"}, []string{"files[0].mode:", "other users"}},
		{"setuid", FileConfig{Path: "/s/x", Source: "s", Mode: "4400"}, []string{"files[0].mode:", "setuid"}},
		{"not octal", FileConfig{Path: "/s/x", Source: "s", Mode: "rw-r-----"}, []string{`files[0].mode: "rw-r-----" is not an octal mode`}},
		{"decimal-looking", FileConfig{Path: "/s/x", Source: "s", Mode: "0480"}, []string{"files[0].mode:", "not an octal mode"}},
		{"bad uid", FileConfig{Path: "/s/x", Source: "s", UID: &minus2}, []string{"files[0].uid: must be a user id >= 0, or -1"}},
		{"bad gid", FileConfig{Path: "/s/x", Source: "s", GID: &minus2}, []string{"files[0].gid:"}},
		{"unknown function", FileConfig{Path: "/s/x", Template: "line one\n{{ secrt \"a\" }}"}, []string{`files[0].template: line 2: function "secrt" not defined`}},
		{"unclosed action", FileConfig{Path: "/s/x", Template: "{{ with secret \"a\" }}\n{{ .Data.x }}"}, []string{"files[0].template: line 2:", "unexpected EOF"}},
		{"every problem at once", FileConfig{Path: "rel", Source: "s", Format: "x", Mode: "0777"}, []string{"files[0].path:", "files[0].format:", "files[0].mode:", "3 problems"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.ApplyDefaults()
			var p confval.Problems
			c.Validate(p.At("files[0]"))
			err := p.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no problem reported, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateWithoutDefaults(t *testing.T) {
	c := FileConfig{Path: "/s/x", Source: "s"}
	var p confval.Problems
	c.Validate(&p)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "format: required") {
		t.Errorf("Validate without ApplyDefaults: %v", err)
	}
}

func TestFileConfigYAML(t *testing.T) {
	const doc = `
- path: /vault/secrets/db.env
  template: |
    {{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}
    DB_PASS={{ .Data.password }}{{ end }}
  mode: "0440"
  uid: 1000
  gid: 0
  error_on_missing_key: false
- path: /vault/secrets/app.json
  source: secret/data/app
  format: json
`
	var files []FileConfig
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&files); err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("decoded %d files", len(files))
	}
	f := files[0]
	f.ApplyDefaults()
	uid, gid := f.Owner()
	mode, err := f.FileMode()
	if err != nil || mode != 0o440 || uid != 1000 || gid != 0 || f.missingKeyIsError() {
		t.Errorf("file 0: mode=%o (%v) uid=%d gid=%d missingKeyIsError=%v", mode, err, uid, gid, f.missingKeyIsError())
	}
	if !strings.Contains(f.Template, "DB_PASS={{ .Data.password }}") {
		t.Errorf("template = %q", f.Template)
	}
	g := files[1]
	g.ApplyDefaults()
	if m, _ := g.FileMode(); m != 0o400 || g.Format != FormatJSON {
		t.Errorf("file 1: mode %o format %q", m, g.Format)
	}
	var p confval.Problems
	for i := range files {
		files[i].ApplyDefaults()
		files[i].Validate(&p)
	}
	if err := p.Err(); err != nil {
		t.Errorf("valid YAML config: %v", err)
	}
}

func TestNewTemplateConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.tmpl"
	if err := os.WriteFile(bad, []byte("ok\nok\n{{ toJSN . }}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  FileConfig
		want []string
	}{
		{"validation", FileConfig{Path: "x", Source: "s"}, []string{`path: "x" must be absolute`}},
		{"inline parse", FileConfig{Path: "/s/x", Template: "{{ nope }}"}, []string{`template: line 1: function "nope" not defined`}},
		{"file parse", FileConfig{Path: "/s/x", TemplateFile: bad}, []string{"template_file: " + bad + `: line 3: function "toJSN" not defined`}},
		{"file missing", FileConfig{Path: "/s/x", TemplateFile: dir + "/nope.tmpl"}, []string{"template_file: cannot read the template:", "no such file"}},
		{"file is a directory", FileConfig{Path: "/s/x", TemplateFile: dir}, []string{"template_file: " + dir + " is not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTemplate(tt.cfg)
			if err == nil {
				t.Fatal("NewTemplate succeeded")
			}
			if !confval.IsConfigError(err) {
				t.Errorf("%v is not a config error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}
