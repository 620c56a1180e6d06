package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/outrider-dev/outrider/internal/confval"
)

// MaxOverlays is the most overlays merged over one base configuration.
const MaxOverlays = 8

// Layer is the content of one configuration file: the base, or an overlay merged over
// it. Name (usually the file's path) is used in messages.
type Layer struct {
	Name string
	Data []byte
}

// OverlayFile names an overlay on disk. An Optional overlay that does not exist is
// left out (a ConfigMap volume marked optional whose ConfigMap is absent); any other
// missing overlay is a problem.
type OverlayFile struct {
	Path     string
	Optional bool
}

// keyedLists are the lists whose items an overlay merges by a key instead of replacing
// the whole list: an item whose key matches an item of the base is merged over it,
// one with a new key is appended.
var keyedLists = map[string]string{
	"logs.sources":  "name",
	"secrets.files": "path",
}

// ReadLayers reads the base file and the overlays, in order, each at most MaxBytes.
// An optional overlay that does not exist is left out.
func ReadLayers(base string, overlays []OverlayFile) ([]Layer, error) {
	if len(overlays) > MaxOverlays {
		p := &confval.Problems{}
		p.Addf("", "%d overlays given; at most %d are merged over one configuration", len(overlays), MaxOverlays)
		return nil, p.Err()
	}
	data, err := ReadFile(base)
	if err != nil {
		return nil, err
	}
	layers := []Layer{{Name: base, Data: data}}
	for _, o := range overlays {
		if o.Optional {
			if _, err := os.Stat(o.Path); errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
		data, err := readOverlay(o.Path)
		if err != nil {
			return nil, err
		}
		layers = append(layers, Layer{Name: o.Path, Data: data})
	}
	return layers, nil
}

func readOverlay(path string) ([]byte, error) {
	data, err := ReadFile(path)
	if err == nil {
		return data, nil
	}
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
		p := &confval.Problems{}
		p.Addf("", "overlay %s does not exist; create it, or make it optional (--optional-overlay) when its ConfigMap may be absent", path)
		return nil, p.Err()
	}
	return nil, err
}

// LayersEqual reports whether a and b hold the same files with the same bytes.
func LayersEqual(a, b []Layer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// LoadLayers reads the base file and the overlays and parses them (ParseLayers).
func LoadLayers(base string, overlays []OverlayFile) (*Config, error) {
	layers, err := ReadLayers(base, overlays)
	if err != nil {
		return nil, err
	}
	return ParseLayers(layers)
}

// ParseLayers parses layers[0] (the base) and merges the others over it in order,
// then applies defaults and validates, like Parse.
//
// Precedence: a later layer wins. Mappings merge key by key, at every depth; a scalar
// or a list replaces what the earlier layers had, except the items of logs.sources
// (matched by name) and secrets.files (matched by path), which merge into the item of
// the same key or are appended. A key set to null in an overlay removes it (and what
// it held) from the result, as in JSON Merge Patch (RFC 7386).
//
// Each overlay is first decoded on its own, so that a wrong key, type or value is
// reported with the overlay's name, line and field path; a problem the merged
// configuration's validation finds names the overlay and line that set the field.
func ParseLayers(layers []Layer) (*Config, error) {
	if len(layers) == 0 {
		return nil, errors.New("config: no configuration to parse")
	}
	if len(layers) == 1 {
		return Parse(layers[0].Name, layers[0].Data)
	}
	if len(layers)-1 > MaxOverlays {
		p := &confval.Problems{}
		p.Addf("", "%d overlays given; at most %d are merged over one configuration", len(layers)-1, MaxOverlays)
		return nil, p.Err()
	}
	root, err := parseYAML(layers[0].Name, layers[0].Data)
	if err != nil {
		return nil, err
	}
	p := &confval.Problems{}
	origins := map[string]origin{}
	for _, l := range layers[1:] {
		over, err := parseYAML(l.Name, l.Data)
		if err != nil {
			var ce *confval.Error
			if !errors.As(err, &ce) {
				return nil, err
			}
			for _, msg := range ce.Problems {
				p.Addf("", "%s", prefixName(l.Name, msg))
			}
			continue
		}
		if !checkOverlay(l.Name, over, p) {
			continue
		}
		m := &merger{name: l.Name, origins: origins, problems: p}
		m.merge(root, over, "")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	cfg := Default()
	d := newDecoder(p)
	d.budget = MaxNodes * len(layers)
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	if err := p.Err(); err != nil {
		return nil, attribute(err, origins)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, attribute(err, origins)
	}
	return &cfg, nil
}

// prefixName puts the file's name before a message that does not start with it.
func prefixName(name, msg string) string {
	if strings.HasPrefix(msg, name+":") {
		return msg
	}
	return name + ": " + msg
}

// checkOverlay decodes an overlay alone, onto an empty configuration, so that its
// unknown keys, wrong types and bad ${VAR} references are reported with its own name
// and lines. It reports whether the overlay is fit to merge.
func checkOverlay(name string, root *yaml.Node, p *confval.Problems) bool {
	doc := root
	if doc.Kind == 0 {
		return true // an empty file
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return true
		}
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return true
	}
	if doc.Kind != yaml.MappingNode {
		p.Addf("", "%s: line %d: an overlay is a mapping of configuration keys (such as exporters: or logs:), not a single value or a list", name, doc.Line)
		return false
	}
	own := &confval.Problems{}
	var scratch Config
	newDecoder(own).decode(root, reflect.ValueOf(&scratch).Elem(), "")
	if err := own.Err(); err != nil {
		for _, msg := range err.(*confval.Error).Problems {
			p.Addf("", "%s", prefixName(name, msg))
		}
		return false
	}
	return true
}

// origin is where an overlay set a field.
type origin struct {
	name string
	line int
}

// merger merges one overlay's node tree into the configuration's.
type merger struct {
	name     string
	origins  map[string]origin
	problems *confval.Problems
}

func (m *merger) set(path string, n *yaml.Node) {
	// A field set again by a later overlay is that overlay's now, and so is all
	// that lies under it.
	for p := range m.origins {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			delete(m.origins, p)
		}
	}
	m.origins[path] = origin{m.name, n.Line}
}

// merge merges src over dst, both at path.
func (m *merger) merge(dst, src *yaml.Node, path string) {
	if src.Kind == 0 {
		return // an empty file
	}
	if dst.Kind == 0 {
		*dst = yaml.Node{Kind: yaml.DocumentNode}
	}
	if dst.Kind == yaml.DocumentNode {
		if src.Kind == yaml.DocumentNode {
			if len(src.Content) == 0 {
				return
			}
			src = src.Content[0]
		}
		if len(dst.Content) == 0 || isNull(dst.Content[0]) {
			dst.Content = []*yaml.Node{src}
			m.setTree(src, path)
			return
		}
		m.merge(dst.Content[0], src, path)
		return
	}
	switch {
	case isNull(src) && path == "":
		return
	case dst.Kind == yaml.MappingNode && src.Kind == yaml.MappingNode:
		m.mergeMapping(dst, src, path)
	case dst.Kind == yaml.SequenceNode && src.Kind == yaml.SequenceNode && keyedLists[path] != "":
		m.mergeKeyed(dst, src, path, keyedLists[path])
	default:
		*dst = *src
		m.setTree(src, path)
	}
}

// setTree records src's origin at path and at every field under it, so that a
// problem deep inside a replaced subtree names the line that holds it.
func (m *merger) setTree(src *yaml.Node, path string) {
	m.set(path, src)
	switch src.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(src.Content); i += 2 {
			m.setTree(src.Content[i+1], join(path, src.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, item := range src.Content {
			m.setTree(item, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func (m *merger) mergeMapping(dst, src *yaml.Node, path string) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		key, val := src.Content[i], src.Content[i+1]
		at := join(path, key.Value)
		j := mappingIndex(dst, key.Value)
		switch {
		case isNull(val):
			if j >= 0 {
				dst.Content = append(dst.Content[:j], dst.Content[j+2:]...)
			}
			m.set(at, val)
		case j < 0:
			dst.Content = append(dst.Content, key, val)
			m.setTree(val, at)
		default:
			m.merge(dst.Content[j+1], val, at)
		}
	}
}

// mergeKeyed merges the items of src into dst by the value of their key field.
func (m *merger) mergeKeyed(dst, src *yaml.Node, path, key string) {
	for i, item := range src.Content {
		k, ok := itemKey(item, key)
		if !ok {
			m.problems.Addf("", "%s: %s[%d] (line %d): an overlay's item of %s needs its %s, which says which item it changes or adds", m.name, path, i, item.Line, path, key)
			continue
		}
		j := -1
		for n, existing := range dst.Content {
			if ek, ok := itemKey(existing, key); ok && ek == k {
				j = n
				break
			}
		}
		if j < 0 {
			dst.Content = append(dst.Content, item)
			m.setTree(item, fmt.Sprintf("%s[%d]", path, len(dst.Content)-1))
			continue
		}
		m.merge(dst.Content[j], item, fmt.Sprintf("%s[%d]", path, j))
	}
}

func itemKey(item *yaml.Node, key string) (string, bool) {
	if item.Kind != yaml.MappingNode {
		return "", false
	}
	j := mappingIndex(item, key)
	if j < 0 || item.Content[j+1].Kind != yaml.ScalarNode || item.Content[j+1].Value == "" {
		return "", false
	}
	return item.Content[j+1].Value, true
}

func mappingIndex(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// attribute adds to each problem of err the overlay and line that set its field (the
// most specific recorded path that holds it).
func attribute(err error, origins map[string]origin) error {
	var ce *confval.Error
	if !errors.As(err, &ce) || len(origins) == 0 {
		return err
	}
	p := &confval.Problems{}
	for _, msg := range ce.Problems {
		field, _, _ := strings.Cut(msg, ": ")
		best, found := "", false
		if !strings.ContainsAny(field, " \t") {
			for path := range origins {
				if (field == path || strings.HasPrefix(field, path+".") || strings.HasPrefix(field, path+"[")) && len(path) >= len(best) {
					best, found = path, true
				}
			}
		}
		if found {
			o := origins[best]
			msg = fmt.Sprintf("%s (set by overlay %s, line %d)", msg, o.name, o.line)
		}
		p.Addf("", "%s", msg)
	}
	return p.Err()
}
