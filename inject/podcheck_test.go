package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// decodePod decodes a pod strictly: a field the Pod type does not have is an error,
// as the API server's strict field validation would report it.
func decodePod(data []byte) (*corev1.Pod, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var pod corev1.Pod
	if err := dec.Decode(&pod); err != nil {
		return nil, err
	}
	return &pod, nil
}

// checkPod is a structural validation of a pod the webhook patched, covering what the
// API server's validation would refuse in what the injector adds: unique and valid
// names, mounts of existing volumes, unique mount paths, valid environment names and
// quantities, probes and restart policies where they are allowed, annotation limits.
// The real API server checks the rest in the end-to-end test.
func checkPod(pod *corev1.Pod) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if volumes[v.Name] {
			bad("volume %q is defined twice", v.Name)
		}
		volumes[v.Name] = true
		for _, e := range validation.IsDNS1123Label(v.Name) {
			bad("volume name %q: %s", v.Name, e)
		}
		sources := 0
		for _, set := range []bool{v.EmptyDir != nil, v.DownwardAPI != nil, v.Projected != nil, v.Secret != nil, v.ConfigMap != nil, v.HostPath != nil, v.PersistentVolumeClaim != nil} {
			if set {
				sources++
			}
		}
		if sources != 1 {
			bad("volume %q has %d sources, want 1", v.Name, sources)
		}
		if ed := v.EmptyDir; ed != nil && ed.SizeLimit != nil && ed.SizeLimit.Sign() < 0 {
			bad("volume %q has a negative sizeLimit", v.Name)
		}
		if d := v.DownwardAPI; d != nil {
			for _, it := range d.Items {
				if it.FieldRef == nil || it.Path == "" || strings.HasPrefix(it.Path, "/") || strings.Contains(it.Path, "..") {
					bad("volume %q: invalid downwardAPI item %+v", v.Name, it)
				} else if fp := it.FieldRef.FieldPath; !strings.HasPrefix(fp, "metadata.annotations['") || !strings.HasSuffix(fp, "']") {
					if fp != "metadata.name" && fp != "metadata.namespace" && fp != "metadata.uid" && fp != "metadata.labels" && fp != "metadata.annotations" {
						bad("volume %q: unsupported fieldPath %q", v.Name, fp)
					}
				} else if key := fp[len("metadata.annotations['") : len(fp)-2]; len(validation.IsQualifiedName(key)) > 0 {
					bad("volume %q: fieldPath names an invalid annotation %q", v.Name, key)
				}
			}
		}
	}

	names := map[string]bool{}
	check := func(c corev1.Container, init bool) {
		where := fmt.Sprintf("container %q", c.Name)
		if names[c.Name] {
			bad("%s: the name is used twice", where)
		}
		names[c.Name] = true
		for _, e := range validation.IsDNS1123Label(c.Name) {
			bad("%s: name: %s", where, e)
		}
		if c.Image == "" || strings.TrimSpace(c.Image) != c.Image {
			bad("%s: image %q", where, c.Image)
		}
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if c.RestartPolicy != nil && (!init || !sidecar) {
			bad("%s: restartPolicy is only allowed as Always on init containers", where)
		}
		if init && !sidecar && (c.StartupProbe != nil || c.LivenessProbe != nil || c.ReadinessProbe != nil) {
			bad("%s: an init container without restartPolicy Always cannot have probes", where)
		}
		for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if p == nil {
				continue
			}
			if p.HTTPGet == nil || p.HTTPGet.Port.IntValue() < 1 || p.HTTPGet.Port.IntValue() > 65535 {
				bad("%s: probe without a valid httpGet port", where)
			}
			if p.SuccessThreshold > 1 && p != c.ReadinessProbe {
				bad("%s: startup and liveness probes need successThreshold 1", where)
			}
		}
		mountPaths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				bad("%s: mount of volume %q, which the pod does not have", where, m.Name)
			}
			mp := path.Clean(m.MountPath)
			if !path.IsAbs(m.MountPath) || strings.Contains(m.MountPath, ":") {
				bad("%s: mountPath %q", where, m.MountPath)
			}
			if mountPaths[mp] {
				bad("%s: mountPath %q is used twice", where, mp)
			}
			mountPaths[mp] = true
			if m.SubPath != "" && (path.IsAbs(m.SubPath) || strings.Contains(m.SubPath, "..")) {
				bad("%s: subPath %q", where, m.SubPath)
			}
		}
		envNames := map[string]bool{}
		for _, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				bad("%s: env %q: %s", where, e.Name, msg)
			}
			if envNames[e.Name] {
				bad("%s: env %q is set twice", where, e.Name)
			}
			envNames[e.Name] = true
			if e.Value != "" && e.ValueFrom != nil {
				bad("%s: env %q has both value and valueFrom", where, e.Name)
			}
			if vf := e.ValueFrom; vf != nil {
				n := 0
				for _, set := range []bool{vf.FieldRef != nil, vf.SecretKeyRef != nil, vf.ConfigMapKeyRef != nil, vf.ResourceFieldRef != nil} {
					if set {
						n++
					}
				}
				if n != 1 {
					bad("%s: env %q: valueFrom has %d sources", where, e.Name, n)
				}
				if sk := vf.SecretKeyRef; sk != nil && (len(validation.IsDNS1123Subdomain(sk.Name)) > 0 || len(validation.IsConfigMapKey(sk.Key)) > 0) {
					bad("%s: env %q: invalid secretKeyRef %s/%s", where, e.Name, sk.Name, sk.Key)
				}
			}
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				bad("%s: port %d", where, p.ContainerPort)
			}
			if p.Name != "" {
				for _, msg := range validation.IsValidPortName(p.Name) {
					bad("%s: port name %q: %s", where, p.Name, msg)
				}
				if ports[p.Name] {
					bad("%s: port name %q is used twice", where, p.Name)
				}
				ports[p.Name] = true
			}
		}
		for name, q := range c.Resources.Requests {
			if q.Sign() < 0 {
				bad("%s: negative request %s", where, name)
			}
			if lim, ok := c.Resources.Limits[name]; ok && q.Cmp(lim) > 0 {
				bad("%s: request %s %s is more than the limit %s", where, name, q.String(), lim.String())
			}
		}
		if sc := c.SecurityContext; sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			bad("%s: runAsNonRoot with runAsUser 0", where)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		check(c, true)
	}
	for _, c := range pod.Spec.Containers {
		check(c, false)
	}
	if len(pod.Spec.Containers) == 0 {
		bad("the pod has no containers")
	}

	total := 0
	for k, v := range pod.Annotations {
		total += len(k) + len(v)
	}
	for _, k := range []string{AnnotationStatus, AnnotationConfig} {
		for _, msg := range validation.IsQualifiedName(k) {
			bad("annotation %q: %s", k, msg)
		}
	}
	if total > maxAnnotationBytes {
		bad("annotations take %d bytes, more than %d", total, maxAnnotationBytes)
	}
	return errs
}
