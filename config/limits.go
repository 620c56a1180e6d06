package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Limits of a configuration file. They are far above any real configuration (the
// injector's largest, with templates filling a pod's 256KiB of annotations, stays
// below both), and they bound what loading an invalid or hostile file can cost: an
// agent reloading one keeps running with its old configuration.
const (
	// MaxBytes is the largest configuration file accepted, checked before parsing.
	// The YAML parser builds about 120 bytes of nodes per byte of a file made of tiny
	// nodes ("[a,a,a,…]"): 256KiB bounds that to about 32MB, which a sidecar with a
	// 96Mi limit can afford while its pipeline runs.
	MaxBytes = 256 << 10
	// MaxNodes is the most YAML nodes (mappings, lists, keys and values) a
	// configuration may hold, checked before any value is decoded.
	MaxNodes = 50_000
)

// ReadFile reads the configuration file at path, refusing one larger than MaxBytes
// without reading past the limit. A problem is returned as a *confval.Error.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		p := &confval.Problems{}
		if errors.Is(err, os.ErrNotExist) {
			p.Addf("", "config file %s does not exist; pass --config with the path of a YAML file", path)
		} else {
			p.Addf("", "cannot read config file: %v", errors.Unwrap(err))
		}
		return nil, p.Err()
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		p := &confval.Problems{}
		p.Addf("", "cannot read config file %s: %v", path, err)
		return nil, p.Err()
	}
	if len(data) > MaxBytes {
		return nil, tooLarge(path, -1)
	}
	return data, nil
}

func tooLarge(name string, size int) error {
	p := &confval.Problems{}
	what := "more than"
	if size >= 0 {
		what = fmt.Sprintf("%d bytes,", size) + " more than"
	}
	p.Addf("", "%s: the configuration is %s the limit of %s; a configuration this large is a mistake (move templates to template_file)", name, what, confval.ByteSize(MaxBytes))
	return p.Err()
}

// parseYAML parses data into one document's node tree and checks its shape before
// anything is decoded: one document, at most MaxNodes nodes, no anchors or aliases
// (an alias can stand for a tree many times its own size, the "billion laughs").
func parseYAML(name string, data []byte) (*yaml.Node, error) {
	if len(data) > MaxBytes {
		return nil, tooLarge(name, len(data))
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		p := &confval.Problems{}
		p.Addf("", "%s: invalid YAML: %s", name, cleanYAMLError(err))
		return nil, p.Err()
	}
	p := &confval.Problems{}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		p.Addf("", "%s: invalid YAML: %s", name, cleanYAMLError(err))
	default:
		p.Addf("", "%s: holds more than one YAML document (separated by ---); write the configuration as one document", name)
	}
	nodes := 0
	checkNodes(&root, p, &nodes)
	if nodes > MaxNodes {
		p.Addf("", "%s: holds more than %d YAML nodes (keys, values, lists); that is the limit", name, MaxNodes)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return &root, nil
}

// cleanYAMLError returns the parser's message without its "yaml: " prefix. The
// parser's syntax errors name a line and what it expected, never a value.
func cleanYAMLError(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "yaml: " {
		return s[6:]
	}
	return s
}

// checkNodes walks the tree counting nodes (it stops descending past MaxNodes) and
// reports the anchors and aliases it finds, each name once with its first line.
func checkNodes(root *yaml.Node, p *confval.Problems, count *int) {
	type use struct{ line, times int }
	var (
		order   []string
		anchors = map[string]int{}
		aliases = map[string]*use{}
	)
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if *count++; *count > MaxNodes {
			return
		}
		if n.Kind == yaml.AliasNode {
			if u, ok := aliases[n.Value]; ok {
				u.times++
			} else {
				aliases[n.Value] = &use{n.Line, 1}
				order = append(order, "*"+n.Value)
			}
			return
		}
		if n.Anchor != "" {
			if _, ok := anchors[n.Anchor]; !ok {
				anchors[n.Anchor] = n.Line
				order = append(order, "&"+n.Anchor)
			}
		}
		for _, c := range n.Content {
			walk(c)
			if *count > MaxNodes {
				return
			}
		}
	}
	walk(root)
	const shown = 5
	for i, name := range order {
		if i == shown {
			p.Addf("", "and %d more anchors and aliases", len(order)-shown)
			break
		}
		if name[0] == '&' {
			p.Addf("", "line %d: the anchor %s is not supported; remove it and write the value out in full wherever it is needed (anchors and aliases are refused so that a small file cannot expand into a huge one)", anchors[name[1:]], name)
			continue
		}
		u := aliases[name[1:]]
		times := ""
		if u.times > 1 {
			times = fmt.Sprintf(" (used %d times)", u.times)
		}
		p.Addf("", "line %d: the alias %s%s is not supported; write the value out in full where it is used", u.line, name, times)
	}
}
