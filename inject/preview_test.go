package inject

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestInjectObject checks that InjectObject injects the pod of each kind in place
// and leaves the rest of the object as it was.
func TestInjectObject(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	template := `
    metadata:
      labels: {app: web}
      annotations:
        outrider.dev/inject: "true"
        outrider.dev/role: web
        outrider.dev/secret-db: secret/data/db
    spec:
      containers:
        - name: web
          image: web:1`
	indent := func(s, by string) string { return strings.ReplaceAll(s, "\n", "\n"+by) }
	for _, tt := range []struct {
		kind, doc string
		path      []string
	}{
		{"Pod", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  annotations: {outrider.dev/inject: \"true\", outrider.dev/role: web, outrider.dev/secret-db: secret/data/db}\nspec:\n  containers: [{name: web, image: \"web:1\"}]\n", nil},
		{"Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:" + indent(template, ""), []string{"spec", "template"}},
		{"CronJob", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:" + indent(template, "    "), []string{"spec", "jobTemplate", "spec", "template"}},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			js, err := yaml.YAMLToJSON([]byte(tt.doc))
			if err != nil {
				t.Fatalf("%v\n%s", err, tt.doc)
			}
			pv, err := in.InjectObject(js)
			if err != nil {
				t.Fatal(err)
			}
			if !pv.Injected || pv.Result != ResultInjected {
				t.Fatalf("injected=%v result=%s", pv.Injected, pv.Result)
			}
			var root map[string]any
			if err := json.Unmarshal(pv.Object, &root); err != nil {
				t.Fatal(err)
			}
			pod := root
			if tt.path != nil {
				if pod, err = lookupMap(root, tt.path); err != nil {
					t.Fatal(err)
				}
			}
			meta := pod["metadata"].(map[string]any)
			if ann := meta["annotations"].(map[string]any); ann[AnnotationStatus] != StatusInjected || ann[AnnotationConfig] == nil {
				t.Errorf("pod annotations = %v, want the status and the configuration", ann)
			}
			if _, ok := meta["generateName"]; ok && tt.path != nil {
				t.Error("the template got a generateName")
			}
			spec, _ := json.Marshal(pod["spec"])
			if !strings.Contains(string(spec), `"name":"outrider"`) {
				t.Errorf("no sidecar in %s", spec)
			}
			if tt.kind == "Deployment" {
				if root["spec"].(map[string]any)["replicas"] != float64(3) {
					t.Error("the Deployment lost its replicas")
				}
			}
			again, err := in.InjectObject(pv.Object)
			if err != nil || again.Injected {
				t.Errorf("a second pass: injected=%v err=%v, want unchanged", again != nil && again.Injected, err)
			}
		})
	}

	t.Run("denied", func(t *testing.T) {
		_, err := in.InjectObject([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","annotations":{"outrider.dev/inject":"true","outrider.dev/secret-db":"secret/data/db"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`))
		if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), AnnotationRole) {
			t.Errorf("err = %v, want a denial naming %s", err, AnnotationRole)
		}
	})
	t.Run("not a workload", func(t *testing.T) {
		_, err := in.InjectObject([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}`))
		if err == nil || !strings.Contains(err.Error(), `kind "Service"`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no template", func(t *testing.T) {
		_, err := in.InjectObject([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{}}`))
		if err == nil || !strings.Contains(err.Error(), "has no .spec.template object") {
			t.Errorf("err = %v", err)
		}
	})
}

// FuzzInjectObject feeds InjectObject arbitrary documents, as `outrider inject -f`
// reads them from a file: it never panics, an object it injects is JSON that a second
// pass leaves unchanged, and every other outcome is an error or the object as it was.
func FuzzInjectObject(f *testing.F) {
	for _, seed := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w","annotations":{"outrider.dev/inject":"true","outrider.dev/role":"r","outrider.dev/secret-db":"secret/data/db"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"},"spec":{"template":{"metadata":{"annotations":{"outrider.dev/inject":"true","outrider.dev/stdout":"true"}},"spec":{"containers":[{"name":"a","image":"a"}]}}}}`,
		`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"w"},"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"outrider.dev/inject":"true","outrider.dev/sidecar-order":"after-mesh"}},"spec":{"initContainers":[{"name":"istio-proxy","image":"p","restartPolicy":"Always"}],"containers":[{"name":"a","image":"a"}]}}}}}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"},"spec":{"template":[]}}`,
		`{"kind":"Pod"}`, `[]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	in := newTestInjector(f, testDefaults())
	f.Fuzz(func(t *testing.T, doc []byte) {
		pv, err := in.InjectObject(doc)
		if err != nil {
			return
		}
		if !pv.Injected {
			if string(pv.Object) != string(doc) {
				t.Fatalf("not injected but changed:\n%s\n%s", doc, pv.Object)
			}
			return
		}
		if !json.Valid(pv.Object) {
			t.Fatalf("injected object is not JSON: %s", pv.Object)
		}
		again, err := in.InjectObject(pv.Object)
		if err != nil || again.Injected {
			t.Fatalf("a second pass: err %v, injected %v\n%s", err, again != nil && again.Injected, pv.Object)
		}
	})
}
