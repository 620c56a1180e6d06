package render

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/Masterminds/sprig/v3"
	ctdep "github.com/hashicorp/consul-template/dependency"
	cttemplate "github.com/hashicorp/consul-template/template"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Engine is the template engine of a file (FileConfig.TemplateEngine).
type Engine string

// The template engines.
const (
	// EngineOutrider is outrider's own engine: Go text/template with the functions
	// listed in the package documentation. It is the default.
	EngineOutrider Engine = "outrider"
	// EngineConsulTemplate executes the template with consul-template's engine, as
	// Vault Agent does, so Vault Agent templates work unchanged: every consul-template
	// function (parseJSON, indent, timestamp, sprig_* …) is there. Its Vault functions
	// (secret, pkiCert) are answered by the syncer's Fetcher, not by a consul-template
	// runner: leases, rotation and scrubbing stay the syncer's. The functions that read
	// Consul, Nomad or the local disk, run programs or write other files are refused
	// when the configuration is loaded (see ctDenied).
	EngineConsulTemplate Engine = "consul-template"
)

// ctDenied are the consul-template functions a consul-template file may not use, each
// with the reason given to the user.
var ctDenied = map[string]string{
	"datacenters":      "reads Consul",
	"exportedServices": "reads Consul",
	"key":              "reads Consul",
	"keyExists":        "reads Consul",
	"keyOrDefault":     "reads Consul",
	"ls":               "reads Consul",
	"safeLs":           "reads Consul",
	"node":             "reads Consul",
	"nodes":            "reads Consul",
	"partitions":       "reads Consul",
	"peerings":         "reads Consul",
	"service":          "reads Consul",
	"connect":          "reads Consul",
	"services":         "reads Consul",
	"tree":             "reads Consul",
	"safeTree":         "reads Consul",
	"caRoots":          "reads Consul",
	"caLeaf":           "reads Consul",
	"nomadServices":    "reads Nomad",
	"nomadService":     "reads Nomad",
	"nomadVarList":     "reads Nomad",
	"nomadVarListSafe": "reads Nomad",
	"nomadVar":         "reads Nomad",
	"nomadVarExists":   "reads Nomad",
	"secrets":          "lists Vault paths, which outrider does not do; read each path with secret",
	"file":             "reads the sidecar's own disk (its service-account token among others); put the content in the template or in Vault",
	"plugin":           "runs a program inside the sidecar",
	"writeToFile":      "writes files other than the rendered one; render each file with its own template",
}

// ctFuncs are the names of consul-template's other functions (v0.41.1), besides the
// sprig_* ones; they are needed to parse a template when the configuration is loaded,
// since text/template refuses an unknown function name. TestConsulTemplateFuncNames
// checks each against consul-template itself.
var ctFuncs = []string{
	"secret", "pkiCert", "scratch",
	"base64Decode", "base64Encode", "base64URLDecode", "base64URLEncode",
	"byKey", "byPort", "byTag", "contains", "containsAll", "containsAny", "containsNone", "containsNotAll",
	"env", "mustEnv", "envOrDefault", "executeTemplate", "explode", "explodeMap", "mergeMap", "mergeMapWithOverride",
	"in", "indent", "loop", "join", "trim", "trimPrefix", "trimSuffix", "trimSpace",
	"parseBool", "parseFloat", "parseInt", "parseJSON", "parseUint", "parseYAML",
	"regexReplaceAll", "regexMatch", "replaceAll", "sha256Hex", "md5sum", "hmacSHA256Hex", "timestamp",
	"toLower", "toJSON", "toJSONPretty", "toUnescapedJSON", "toUnescapedJSONPretty", "toTitle", "toTOML",
	"toUpper", "toYAML", "split", "splitToMap", "byMeta", "sockaddr",
	"add", "subtract", "multiply", "divide", "modulo", "minimum", "maximum",
	"spew_dump", "spew_printf", "spew_sdump", "spew_sprintf",
}

// ctParseFuncs has every name a consul-template file may write, for parsing.
var ctParseFuncs = func() template.FuncMap {
	stub := func(...any) (any, error) { return nil, errors.New("function used outside a render") }
	m := template.FuncMap{}
	for _, n := range ctFuncs {
		m[n] = stub
	}
	for n := range ctDenied {
		m[n] = stub
	}
	for n := range sprig.HermeticTxtFuncMap() {
		m["sprig_"+n] = stub
	}
	return m
}()

// parseConsulTemplate checks a consul-template file's template: its syntax, and that
// it uses none of the functions outrider refuses. The error names the line.
func parseConsulTemplate(name, text string) error {
	t, err := template.New(name).Funcs(ctParseFuncs).Parse(text)
	if err != nil {
		return parseError(name, err)
	}
	var found []string
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		walkIdentifiers(tt.Root, func(n *parse.IdentifierNode) {
			why, denied := ctDenied[n.Ident]
			if !denied {
				return
			}
			loc, _ := tt.ErrorContext(n)
			if _, rest, ok := strings.Cut(loc, ":"); ok {
				loc = "line " + strings.Replace(rest, ":", ", column ", 1)
			}
			found = append(found, fmt.Sprintf("%s: function %s %s, which outrider's sidecar does not do", loc, n.Ident, why))
		})
	}
	if len(found) > 0 {
		sort.Strings(found)
		return errors.New(strings.Join(found, "; "))
	}
	return nil
}

// walkIdentifiers calls fn for every function name used under n.
func walkIdentifiers(n parse.Node, fn func(*parse.IdentifierNode)) {
	switch t := n.(type) {
	case nil:
	case *parse.ListNode:
		if t == nil {
			return
		}
		for _, c := range t.Nodes {
			walkIdentifiers(c, fn)
		}
	case *parse.ActionNode:
		walkIdentifiers(t.Pipe, fn)
	case *parse.PipeNode:
		if t == nil {
			return
		}
		for _, c := range t.Cmds {
			walkIdentifiers(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range t.Args {
			walkIdentifiers(a, fn)
		}
	case *parse.IdentifierNode:
		fn(t)
	case *parse.ChainNode:
		walkIdentifiers(t.Node, fn)
	case *parse.IfNode:
		walkBranch(&t.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&t.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&t.BranchNode, fn)
	case *parse.TemplateNode:
		walkIdentifiers(t.Pipe, fn)
	}
}

func walkBranch(b *parse.BranchNode, fn func(*parse.IdentifierNode)) {
	walkIdentifiers(b.Pipe, fn)
	walkIdentifiers(b.List, fn)
	if b.ElseList != nil {
		walkIdentifiers(b.ElseList, fn)
	}
}

// renderConsul executes text with consul-template's engine. Its Vault functions
// (secret, pkiCert) and env are replaced by functions answered through r, so the
// engine never talks to Vault itself; the functions refused by parseConsulTemplate
// are disabled again here, should a template reach a render without it.
func (t *Template) renderConsul(r *run) ([]byte, error) {
	ext := template.FuncMap{
		"secret":       r.ctSecret,
		"pkiCert":      r.ctPKICert,
		"env":          r.ctEnv,
		"mustEnv":      r.ctMustEnv,
		"envOrDefault": r.ctEnvOrDefault,
	}
	for name, why := range ctDenied {
		ext[name] = ctDisabled(r, name, why)
	}
	ct, err := cttemplate.NewTemplate(&cttemplate.NewTemplateInput{
		Contents:      t.text,
		Destination:   t.cfg.Path,
		ErrMissingKey: t.cfg.missingKeyIsError(),
		ExtFuncMap:    ext,
	})
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", t.cfg.Path, err)
	}
	res, err := ct.Execute(&cttemplate.ExecuteInput{Brain: cttemplate.NewBrain()})
	if err != nil {
		return nil, ctExecError(t.cfg.Path, err, r)
	}
	if res.Missing != nil && res.Missing.Len() > 0 {
		var names []string
		for _, d := range res.Missing.List() {
			names = append(names, d.String())
		}
		return nil, fmt.Errorf("render %s: the template needs data outrider does not fetch: %s", t.cfg.Path, strings.Join(names, ", "))
	}
	return res.Output, nil
}

// ctArgs turns consul-template's "k=v" arguments into the Fetcher's, as
// consul-template reads them: empty ones skipped, spaces around key and value trimmed.
func ctArgs(fn, path string, rest []string) ([]string, error) {
	var args []string
	for i, s := range rest {
		if s == "" {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, &funcError{msg: fmt.Sprintf("%s %q: argument %d is not of the form key=value", fn, path, i+2)}
		}
		args = append(args, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	}
	return args, nil
}

// ctSecret is consul-template's secret: {{ secret "PATH" }} reads, {{ secret "PATH"
// "k=v" … }} writes. The answer is a copy: sprig_set and its kind may change what a
// template holds, never the syncer's cache.
func (r *run) ctSecret(s ...string) (any, error) {
	if len(s) == 0 {
		return nil, nil
	}
	args, err := ctArgs("secret", s[0], s[1:])
	if err != nil {
		return nil, r.funcErr(err)
	}
	sec, err := r.fetch("secret", s[0], args)
	if err != nil {
		return nil, r.funcErr(err)
	}
	return &ctdep.Secret{
		LeaseID:       sec.LeaseID,
		LeaseDuration: sec.LeaseDuration,
		Renewable:     sec.Renewable,
		Data:          deepCopyMap(sec.Data),
	}, nil
}

// ctPKICert is consul-template's pkiCert: a write to a PKI issue endpoint, answered
// as consul-template answers it (.Cert, .Key, .CA, .CAChain). The syncer re-issues the
// certificate before it expires, where Vault Agent reads it back from the rendered
// file.
func (r *run) ctPKICert(s ...string) (any, error) {
	if len(s) == 0 {
		return nil, nil
	}
	args, err := ctArgs("pkiCert", s[0], s[1:])
	if err != nil {
		return nil, r.funcErr(err)
	}
	c, err := r.pkiCert(s[0], args...)
	if err != nil {
		return nil, r.funcErr(err)
	}
	return ctdep.PemEncoded{Cert: c.Cert, Key: c.Key, CA: c.CA, CAChain: c.CAChain}, nil
}

// ctEnv is consul-template's env, with outrider's rule: VAULT_* variables are refused.
func (r *run) ctEnv(name string) (string, error) {
	v, err := r.env(name)
	if err != nil {
		return "", r.funcErr(err)
	}
	return v, nil
}

// ctMustEnv is consul-template's mustEnv: env, but an empty value is an error.
func (r *run) ctMustEnv(name string) (string, error) {
	v, err := r.env(name)
	if err != nil {
		return "", r.funcErr(err)
	}
	if v == "" {
		return "", r.funcErr(&funcError{msg: fmt.Sprintf("mustEnv %q: the variable is empty or unset", name)})
	}
	return v, nil
}

// ctEnvOrDefault is consul-template's envOrDefault: env, or def when the variable is
// unset (a variable set to "" gives "").
func (r *run) ctEnvOrDefault(name, def string) (string, error) {
	v, err := r.env(name)
	if err != nil {
		return "", r.funcErr(err)
	}
	if _, set := os.LookupEnv(name); !set {
		return def, nil
	}
	return v, nil
}

func ctDisabled(r *run, name, why string) func(...any) (string, error) {
	return func(...any) (string, error) {
		return "", r.funcErr(&funcError{msg: fmt.Sprintf("%s: this function %s, which outrider's sidecar does not do", name, why)})
	}
}

// funcErr remembers the last error of a function bound to the render: consul-template
// returns execution errors as text, and this is how its cause (ErrNotFound …) is
// kept.
func (r *run) funcErr(err error) error {
	var fe *funcError
	if errors.As(err, &fe) {
		r.lastFunc = fe
	}
	return err
}

// ctExecError rebuilds an error from consul-template's Execute ("execute: template:
// :LINE:COL: executing "" at <EXPR>: REASON") the way execError does for outrider's
// engine: the reason is kept only when it is known to carry no value, and every
// fetched value is scrubbed.
func ctExecError(file string, err error, r *run) error {
	seen := r.seen()
	msg := strings.TrimPrefix(err.Error(), "execute: ")
	loc, expr, reason, ok := splitExecError("", msg)
	if !ok {
		return fmt.Errorf("render %s: template execution failed (%s)", file, withheldNote)
	}
	where := "template"
	if loc != "" {
		where += " " + loc
	}
	if expr != "" {
		where += " at <" + scrub(cleanText(expr), seen) + ">"
	}
	if rest, ok := strings.CutPrefix(reason, "error calling "); ok && r.lastFunc != nil {
		if fn, _, _ := strings.Cut(rest, ":"); fn == "secret" || fn == "pkiCert" || fn == "env" || fn == "mustEnv" || fn == "envOrDefault" || ctDenied[fn] != "" {
			fe := r.lastFunc
			return &renderError{msg: fmt.Sprintf("render %s: %s: %s", file, where, scrub(cleanText(fe.msg), seen)), err: fe}
		}
	}
	if key, ok := strings.CutPrefix(reason, "map has no entry for key "); ok {
		return &renderError{
			msg: fmt.Sprintf("render %s: %s: the secret has no key %s; check the name (KV v2 keys are under .Data.data) or set error_on_missing_key: false",
				file, where, scrub(cleanText(key), seen)),
			err: ErrMissingKey,
		}
	}
	if safeReason(reason) {
		return fmt.Errorf("render %s: %s: %s", file, where, scrub(cleanText(reason), seen))
	}
	return fmt.Errorf("render %s: %s: %s", file, where, withheldNote)
}

// deepCopyMap copies the maps and lists of a Vault answer; leaves are shared (they
// are immutable: strings, numbers, booleans).
func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopyMap(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// loadConsul reads and checks the template of a consul-template file.
func (t *Template) loadConsul() error {
	var p confval.Problems
	t.text = t.cfg.Template
	field := "template"
	if t.cfg.TemplateFile != "" {
		field = "template_file"
		text, err := readTemplateFile(t.cfg.TemplateFile)
		if err != nil {
			p.Addf(field, "%v", err)
			return p.Err()
		}
		t.text = text
	}
	t.size = len(t.text)
	if err := parseConsulTemplate(t.cfg.Path, t.text); err != nil {
		if field == "template_file" {
			err = fmt.Errorf("%s: %w", t.cfg.TemplateFile, err)
		}
		p.Addf(field, "%v", err)
	}
	return p.Err()
}
