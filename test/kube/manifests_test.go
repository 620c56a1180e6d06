package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// deployDir is deploy/ of the repository, from this package's directory.
const deployDir = "../../deploy"

// manifests is a rendered kustomization: the YAML stream `kustomize build` prints and
// its objects, in the same order.
type manifests struct {
	yaml    []byte
	objects []*unstructured.Unstructured
}

// build renders deploy/<dir> with kustomize (the krusty library `kustomize build` and
// `kubectl apply -k` use, with their default options) and fails the test with
// kustomize's message when it cannot.
func build(t testing.TB, dir string) *manifests {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(deployDir, dir))
	if err != nil {
		t.Fatal(err)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build deploy/%s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build deploy/%s: %v", dir, err)
	}
	objs, err := parseObjects(out)
	if err != nil {
		t.Fatalf("kustomize build deploy/%s: %v", dir, err)
	}
	return &manifests{yaml: out, objects: objs}
}

// parseObjects splits a YAML stream into objects, skipping empty documents.
func parseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		objs = append(objs, u)
	}
}

// find returns the object of kind and name, or fails the test.
func (m *manifests) find(t testing.TB, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range m.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the manifests have no %s %s; they have %s", kind, name, strings.Join(m.names(), ", "))
	return nil
}

// one returns the only object of kind, or fails the test.
func (m *manifests) one(t testing.TB, kind string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range m.objects {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the manifests have %d objects of kind %s, want 1; they have %s", len(found), kind, strings.Join(m.names(), ", "))
	}
	return found[0]
}

// into decodes the object of kind and name into a typed value, e.g. an
// *appsv1.Deployment, failing the test on unknown fields.
func (m *manifests) into(t testing.TB, kind, name string, out any) {
	t.Helper()
	convert(t, m.find(t, kind, name), out)
}

// convert decodes an unstructured object into a typed one, strictly.
func convert(t testing.TB, u *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// names lists the objects as Kind/name, sorted.
func (m *manifests) names() []string {
	var out []string
	for _, o := range m.objects {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// kinds is the set of kinds of the objects.
func (m *manifests) kinds() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range m.objects {
		if !seen[o.GetKind()] {
			seen[o.GetKind()] = true
			out = append(out, o.GetKind())
		}
	}
	sort.Strings(out)
	return out
}

// metadataNameKey is the label the API server puts on every namespace: its name.
const metadataNameKey = "kubernetes.io/metadata.name"

// confineWebhooks returns a copy of the manifests in which every webhook of every
// MutatingWebhookConfiguration also requires its namespace to be one of namespaces
// (an extra matchExpression on kubernetes.io/metadata.name), and nothing else
// changed: the API server is shared by the package's tests, so a webhook must never
// select another test's pods.
func (m *manifests) confineWebhooks(t testing.TB, namespaces ...string) *manifests {
	t.Helper()
	out := &manifests{}
	var buf bytes.Buffer
	for _, o := range m.objects {
		o = o.DeepCopy()
		if o.GetKind() == "MutatingWebhookConfiguration" {
			hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			if len(hooks) == 0 {
				t.Fatalf("MutatingWebhookConfiguration %s has no webhooks", o.GetName())
			}
			for i, h := range hooks {
				hook := h.(map[string]any)
				sel, _ := hook["namespaceSelector"].(map[string]any)
				if sel == nil {
					sel = map[string]any{}
				}
				exprs, _ := sel["matchExpressions"].([]any)
				vals := make([]any, len(namespaces))
				for j, ns := range namespaces {
					vals[j] = ns
				}
				sel["matchExpressions"] = append(exprs, map[string]any{"key": metadataNameKey, "operator": "In", "values": vals})
				hook["namespaceSelector"] = sel
				hooks[i] = hook
			}
			if err := unstructured.SetNestedSlice(o.Object, hooks, "webhooks"); err != nil {
				t.Fatal(err)
			}
		}
		js, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(js)
		buf.WriteString("\n")
		out.objects = append(out.objects, o)
	}
	out.yaml = buf.Bytes()
	return out
}

// subset reports where want (an object as applied) is not contained in got (the
// object as stored): a map key missing or a value that differs. Lists must have the
// same length and match element by element. The API server adds defaults and
// metadata, so got may have more; it must not have dropped or changed anything.
func subset(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: stored %s, applied an object", path, describe(got))}
		}
		var diffs []string
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: applied, not stored", path, k))
				continue
			}
			diffs = append(diffs, subset(path+"."+k, w[k], gv)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: stored %s, applied a list of %d", path, describe(got), len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(normalize(want), normalize(got)) {
			return []string{fmt.Sprintf("%s: applied %v, stored %v", path, want, got)}
		}
		return nil
	}
}

// normalize makes JSON numbers comparable whichever decoder produced them.
func normalize(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	case json.Number:
		f, _ := n.Float64()
		return f
	}
	return v
}

func describe(v any) string {
	switch g := v.(type) {
	case nil:
		return "nothing"
	case []any:
		return fmt.Sprintf("a list of %d", len(g))
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%v", g)
	}
}
