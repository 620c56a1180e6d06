package inject

import (
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/outrider-dev/outrider/inject/internal/jsonpatch"
)

// previewUID is the admission request uid of InjectObject: it salts the local
// Sentry key, which is then the same on every run.
const previewUID = "outrider-inject-preview"

// templatePaths are, by kind, where an object keeps the pod it creates: the
// object itself for a Pod, its pod template for the workloads.
var templatePaths = map[string][]string{
	"Pod":                   nil,
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
	"PodTemplate":           {"template"},
}

// Errors InjectObject wraps.
var (
	// ErrDenied: the injector denies the pod.
	ErrDenied = errors.New("denied")
	// ErrNoPod: the object is of a kind that holds no pod (a Service, a ConfigMap).
	ErrNoPod = errors.New("holds no pod")
)

// Preview is what InjectObject did to one object.
type Preview struct {
	// Object is the object as JSON: injected, or as it was when its pod does not opt
	// in or is injected already.
	Object []byte
	// Injected reports whether the pod was injected (or its sidecar reordered).
	Injected bool
	// Result is the result Mutate gave, one of the Result constants.
	Result string
	// Warnings are the admission warnings, as the API server would show them.
	Warnings []string
}

// InjectObject injects the pod of a Kubernetes object given as JSON (a Pod, or a
// workload holding a pod template: Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job, CronJob, PodTemplate), through Mutate, as the webhook
// would when the pod is created: the object comes back with the patched pod in
// place of its own. The pod of a workload is named as its controller would name it
// (generateName "<name>-") and created in the object's namespace. A pod the injector
// denies is an error wrapping ErrDenied that carries the denial's message; an object
// of another kind is an error wrapping ErrNoPod that names the kinds.
func (in *Injector) InjectObject(obj []byte) (*Preview, error) {
	var root map[string]any
	if err := json.Unmarshal(obj, &root); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	kind, _ := root["kind"].(string)
	apiVersion, _ := root["apiVersion"].(string)
	tmplPath, ok := templatePaths[kind]
	if !ok || apiVersion == "" {
		return nil, fmt.Errorf("kind %q (apiVersion %q) %w to inject; give a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob or PodTemplate", kind, apiVersion, ErrNoPod)
	}
	meta, _ := root["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	namespace, _ := meta["namespace"].(string)

	var pod map[string]any
	if tmplPath == nil {
		pod = root
	} else {
		tmpl, err := lookupMap(root, tmplPath)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, name, err)
		}
		tmplMeta, _ := tmpl["metadata"].(map[string]any)
		podMeta := map[string]any{}
		for k, v := range tmplMeta {
			podMeta[k] = v
		}
		if name != "" {
			podMeta["generateName"] = name + "-"
		}
		if namespace != "" {
			podMeta["namespace"] = namespace
		}
		pod = map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": podMeta, "spec": tmpl["spec"]}
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	req := &admissionv1.AdmissionRequest{
		UID:       previewUID,
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: namespace,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}
	resp, result := in.mutate(req)
	if !resp.Allowed {
		msg := "the injector refused the request"
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return nil, fmt.Errorf("%w: %s", ErrDenied, msg)
	}
	pv := &Preview{Object: obj, Result: result, Warnings: resp.Warnings}
	if resp.Patch == nil {
		return pv, nil
	}
	patched, err := jsonpatch.Apply(raw, resp.Patch)
	if err != nil {
		return nil, fmt.Errorf("apply the injector's patch: %w", err)
	}
	if tmplPath == nil {
		pv.Object, pv.Injected = patched, true
		return pv, nil
	}
	var out map[string]any
	if err := json.Unmarshal(patched, &out); err != nil {
		return nil, err
	}
	outMeta, _ := out["metadata"].(map[string]any)
	delete(outMeta, "generateName")
	delete(outMeta, "namespace")
	tmpl, _ := lookupMap(root, tmplPath)
	tmpl["metadata"] = outMeta
	tmpl["spec"] = out["spec"]
	if pv.Object, err = json.Marshal(root); err != nil {
		return nil, err
	}
	pv.Injected = true
	return pv, nil
}

// lookupMap follows path in m, each element a JSON object.
func lookupMap(m map[string]any, path []string) (map[string]any, error) {
	cur := m
	for i, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("has no %s object", joinPath(path[:i+1]))
		}
		cur = next
	}
	return cur, nil
}

func joinPath(p []string) string {
	s := ""
	for _, e := range p {
		s += "." + e
	}
	return s
}
