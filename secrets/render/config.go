package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Format is the encoding of a short-form file (FileConfig.Source).
type Format string

// The short-form formats. See the package documentation for the exact encoding rules.
const (
	// FormatEnv writes KEY=value lines, sorted by key, readable by sh's "." and by
	// docker compose's env_file.
	FormatEnv Format = "env"
	// FormatJSON writes the secret's data as a JSON object (sorted keys, two-space
	// indentation, trailing newline).
	FormatJSON Format = "json"
	// FormatYAML writes the secret's data as a YAML mapping (sorted keys).
	FormatYAML Format = "yaml"
	// FormatProperties writes Java .properties lines, sorted by key, escaped as
	// java.util.Properties.store does (non-ASCII as \uXXXX).
	FormatProperties Format = "properties"
	// FormatRaw writes the value of one key (FileConfig.Key) as it is: strings
	// unchanged, other values as compact JSON.
	FormatRaw Format = "raw"
)

// DefaultMode is the permission of a rendered file when FileConfig.Mode is empty:
// readable by its owner only.
const DefaultMode = "0400"

const maxTemplateFileBytes = 4 << 20

// FileConfig describes one rendered file. Exactly one of Template, TemplateFile and
// Source says where its content comes from. It is a plain value struct meant to be
// embedded (yaml:",inline") in the config of whatever schedules renders.
type FileConfig struct {
	// Path is the absolute path of the file to write. Its directory must exist when
	// the file is rendered (typically an in-memory volume).
	Path string `yaml:"path"`
	// Template is an inline Go text/template (see the package documentation for the
	// functions available).
	Template string `yaml:"template" config:"noexpand"`
	// TemplateFile is the path of a file holding the template; it is read by
	// NewTemplate.
	TemplateFile string `yaml:"template_file"`
	// Source is the short form: one Vault path, read and written in Format. A KV v2
	// response is unwrapped to the secret's own data.
	Source string `yaml:"source"`
	// Format is the short form's encoding: env, json, yaml, properties or raw. It
	// defaults to raw when Key is set and to env otherwise.
	Format Format `yaml:"format"`
	// Key selects the one value written by the raw format.
	Key string `yaml:"key"`
	// TemplateEngine is the engine that executes Template or TemplateFile:
	// "outrider" (the default) or "consul-template", for Vault Agent templates
	// unchanged (see EngineConsulTemplate).
	TemplateEngine Engine `yaml:"template_engine"`
	// Mode is the file's permission as an octal string such as "0400" (the default).
	// A mode that lets "other" users read, write or execute the file is refused.
	Mode string `yaml:"mode"`
	// UID and GID, when >= 0, are the file's owner and group; -1 (the default) keeps
	// the writer's.
	UID *int `yaml:"uid"`
	GID *int `yaml:"gid"`
	// ErrorOnMissingKey makes a reference to a key the secret does not have an error,
	// which leaves the last good file in place (default true). When false, a missing
	// key renders as text/template's "<no value>" in templates (as Vault Agent does)
	// and as an empty file in the raw short form.
	ErrorOnMissingKey *bool `yaml:"error_on_missing_key"`
}

// ApplyDefaults fills the fields left empty with their defaults.
func (c *FileConfig) ApplyDefaults() {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.UID == nil {
		c.UID = intPtr(-1)
	}
	if c.GID == nil {
		c.GID = intPtr(-1)
	}
	if c.ErrorOnMissingKey == nil {
		t := true
		c.ErrorOnMissingKey = &t
	}
	if c.Source != "" && c.Format == "" {
		if c.Key != "" {
			c.Format = FormatRaw
		} else {
			c.Format = FormatEnv
		}
	}
}

// Validate reports every problem of c to p, with field paths relative to the file
// (path, template, mode …). Inline templates are parsed, so a syntax error or an
// unknown function is reported here with its line.
func (c *FileConfig) Validate(p *confval.Problems) {
	switch {
	case c.Path == "":
		p.Addf("path", "required: the absolute path of the file to write, such as /vault/secrets/db.env")
	case !filepath.IsAbs(c.Path):
		p.Addf("path", "%q must be absolute, such as /vault/secrets/db.env", c.Path)
	case filepath.Clean(c.Path) != c.Path:
		p.Addf("path", "%q is not a clean path; write %q", c.Path, filepath.Clean(c.Path))
	case c.Path == "/":
		p.Addf("path", "must name a file, not the root directory")
	}

	var set []string
	if c.Template != "" {
		set = append(set, "template")
	}
	if c.TemplateFile != "" {
		set = append(set, "template_file")
	}
	if c.Source != "" {
		set = append(set, "source")
	}
	switch len(set) {
	case 0:
		p.Addf("", "set one of template, template_file or source")
	case 1:
	default:
		p.Addf("", "%s are exclusive; set only one of them", strings.Join(set, " and "))
	}

	switch c.TemplateEngine {
	case "", EngineOutrider:
		if c.Template != "" {
			if _, err := parseTemplate(c.Path, c.Template, c.missingKeyIsError()); err != nil {
				p.Addf("template", "%v", err)
			}
		}
	case EngineConsulTemplate:
		if c.Source != "" {
			p.Addf("template_engine", "applies only to template and template_file; remove it (source writes a format, not a template)")
		}
		if c.Template != "" {
			if err := parseConsulTemplate(c.Path, c.Template); err != nil {
				p.Addf("template", "%v", err)
			}
		}
	default:
		p.Addf("template_engine", "must be %q (the default) or %q, got %q", EngineOutrider, EngineConsulTemplate, c.TemplateEngine)
	}
	if c.Source != "" {
		c.validateShortForm(p)
	} else {
		if c.Format != "" {
			p.Addf("format", "applies only to source; remove it (a template writes its own format)")
		}
		if c.Key != "" {
			p.Addf("key", "applies only to source with format raw; remove it")
		}
	}

	if _, err := parseMode(c.Mode); err != nil {
		p.Addf("mode", "%v", err)
	}
	if c.UID != nil && *c.UID < -1 {
		p.Addf("uid", "must be a user id >= 0, or -1 to keep the writer's; got %d", *c.UID)
	}
	if c.GID != nil && *c.GID < -1 {
		p.Addf("gid", "must be a group id >= 0, or -1 to keep the writer's; got %d", *c.GID)
	}
}

func (c *FileConfig) validateShortForm(p *confval.Problems) {
	switch {
	case strings.TrimSpace(c.Source) != c.Source:
		p.Addf("source", "%q has leading or trailing spaces", c.Source)
	case strings.HasPrefix(c.Source, "/"):
		p.Addf("source", "%q must not start with '/'; write the Vault path as in `vault read`, such as secret/data/app", c.Source)
	}
	switch c.Format {
	case FormatEnv, FormatJSON, FormatYAML, FormatProperties:
		if c.Key != "" {
			p.Addf("key", "applies only to format raw; remove it or set format: raw")
		}
	case FormatRaw:
		if c.Key == "" {
			p.Addf("key", "required with format raw: the name of the value to write")
		}
	case "":
		// ApplyDefaults chooses; an unset format after defaults means they were not applied.
		p.Addf("format", "required: one of env, json, yaml, properties, raw")
	default:
		p.Addf("format", "must be one of env, json, yaml, properties, raw; got %q", c.Format)
	}
}

// FileMode returns Mode as permission bits (DefaultMode when Mode is empty).
func (c *FileConfig) FileMode() (os.FileMode, error) {
	return parseMode(c.Mode)
}

// Owner returns the uid and gid to give the file; -1 means keep the writer's.
func (c *FileConfig) Owner() (uid, gid int) {
	uid, gid = -1, -1
	if c.UID != nil {
		uid = *c.UID
	}
	if c.GID != nil {
		gid = *c.GID
	}
	return uid, gid
}

func (c *FileConfig) missingKeyIsError() bool {
	return c.ErrorOnMissingKey == nil || *c.ErrorOnMissingKey
}

func parseMode(s string) (os.FileMode, error) {
	if s == "" {
		s = DefaultMode
	}
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an octal mode; write it quoted, such as \"0400\" or \"0440\"", s)
	}
	if v > 0o777 {
		return 0, fmt.Errorf("%q has bits beyond the permission bits (0777); setuid, setgid and sticky are not allowed", s)
	}
	if v&0o007 != 0 {
		return 0, fmt.Errorf("%q gives access to other users; secret files are never world-accessible, use \"0400\", \"0440\" or \"0640\" with uid/gid", s)
	}
	return os.FileMode(v), nil
}

func intPtr(v int) *int { return &v }
