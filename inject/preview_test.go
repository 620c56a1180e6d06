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
