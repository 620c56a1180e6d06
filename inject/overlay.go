package inject

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Where the overlays' ConfigMaps are mounted in the sidecar, and their volumes.
const (
	// OverlayDir holds the overlays: OverlayDir/namespace/overlay.yaml (the
	// injector's namespace default) and OverlayDir/pod/overlay.yaml
	// (AnnotationConfigOverlay), merged over the generated configuration in that
	// order.
	OverlayDir             = "/etc/outrider-overlay"
	overlayFile            = "overlay.yaml"
	volumeOverlayNamespace = "outrider-overlay-namespace"
	volumeOverlayPod       = "outrider-overlay"
	// DefaultOverlayKey is the ConfigMap key read when the reference names none.
	DefaultOverlayKey = "overlay.yaml"
	// namespaceOverlayAny is the key of Defaults.NamespaceOverlays that applies to
	// the namespaces not listed.
	namespaceOverlayAny = "*"
)

// overlayRef is a ConfigMap key holding an overlay.
type overlayRef struct {
	configMap, key string
}

// parseOverlayRef parses "<configmap>[/<key>]".
func parseOverlayRef(ref string) (overlayRef, string) {
	name, key, hasKey := strings.Cut(strings.TrimSpace(ref), "/")
	if !hasKey {
		key = DefaultOverlayKey
	}
	if errs := append(validation.IsDNS1123Subdomain(name), validation.IsConfigMapKey(key)...); len(errs) > 0 {
		return overlayRef{}, "must be <configmap> or <configmap>/<key>, naming a ConfigMap of the pod's namespace (and its key, default " + DefaultOverlayKey + "), such as shop-outrider"
	}
	return overlayRef{name, key}, ""
}

// parseNamespaceOverlays parses "<namespace>=<configmap>[/<key>],…".
func parseNamespaceOverlays(s string) (map[string]overlayRef, []string) {
	m := map[string]overlayRef{}
	var probs []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ns, ref, ok := strings.Cut(item, "=")
		ns = strings.TrimSpace(ns)
		if !ok {
			probs = append(probs, fmt.Sprintf("%q must be <namespace>=<configmap>[/<key>], such as payments=payments-outrider (\"*\" for every other namespace)", item))
			continue
		}
		if ns != namespaceOverlayAny && len(validation.IsDNS1123Label(ns)) > 0 {
			probs = append(probs, fmt.Sprintf("%q is not a namespace name (or \"*\" for every other namespace)", ns))
			continue
		}
		if _, dup := m[ns]; dup {
			probs = append(probs, fmt.Sprintf("namespace %s is listed twice; keep one", ns))
			continue
		}
		r, msg := parseOverlayRef(ref)
		if msg != "" {
			probs = append(probs, fmt.Sprintf("%s: %q %s", ns, ref, msg))
			continue
		}
		m[ns] = r
	}
	return m, probs
}

// parseOverlays reads AnnotationConfigOverlay and the injector's overlay for the
// pod's namespace (checked by NewInjector).
func (o *options) parseOverlays(pod *corev1.Pod, nsOverlays string, p *problems) {
	if nsOverlays != "" {
		m, _ := parseNamespaceOverlays(nsOverlays)
		ref, ok := m[pod.Namespace]
		if !ok {
			ref, ok = m[namespaceOverlayAny]
		}
		if ok {
			o.nsOverlay = &ref
		}
	}
	if v, ok := pod.Annotations[AnnotationConfigOverlay]; ok {
		ref, msg := parseOverlayRef(v)
		if msg != "" {
			p.add(AnnotationConfigOverlay, "%q %s", v, msg)
		} else {
			o.podOverlay = &ref
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == volumeOverlayNamespace || v.Name == volumeOverlayPod {
			p.add(AnnotationInject, "the pod already has a volume named %q; outrider adds volumes named outrider-*, so rename it", v.Name)
		}
	}
}

// validateNamespaceOverlays checks the injector's namespace_overlays.
func validateNamespaceOverlays(p *confval.Problems, s string) {
	_, probs := parseNamespaceOverlays(s)
	for _, msg := range probs {
		p.Addf("namespace_overlays", "%s", msg)
	}
}

// overlayVolumes are the volumes of the overlays' ConfigMaps. The namespace's is
// optional, so a namespace without the ConfigMap runs on the generated configuration
// alone; the pod's is not, so a pod naming a missing ConfigMap does not start (the
// kubelet's event says which).
func (o *options) overlayVolumes() []corev1.Volume {
	var vs []corev1.Volume
	add := func(name string, ref *overlayRef, optional bool) {
		if ref == nil {
			return
		}
		opt := optional
		vs = append(vs, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ref.configMap},
			Items:                []corev1.KeyToPath{{Key: ref.key, Path: overlayFile}},
			Optional:             &opt,
		}}})
	}
	add(volumeOverlayNamespace, o.nsOverlay, true)
	add(volumeOverlayPod, o.podOverlay, false)
	return vs
}

// overlayMounts are the sidecar's read-only mounts of the overlays.
func (o *options) overlayMounts() []corev1.VolumeMount {
	var ms []corev1.VolumeMount
	if o.nsOverlay != nil {
		ms = append(ms, corev1.VolumeMount{Name: volumeOverlayNamespace, MountPath: path.Join(OverlayDir, "namespace"), ReadOnly: true})
	}
	if o.podOverlay != nil {
		ms = append(ms, corev1.VolumeMount{Name: volumeOverlayPod, MountPath: path.Join(OverlayDir, "pod"), ReadOnly: true})
	}
	return ms
}

// overlayArgs are the agent's flags that merge the overlays over its configuration.
func (o *options) overlayArgs() []string {
	var args []string
	if o.nsOverlay != nil {
		args = append(args, "--optional-overlay", path.Join(OverlayDir, "namespace", overlayFile))
	}
	if o.podOverlay != nil {
		args = append(args, "--overlay", path.Join(OverlayDir, "pod", overlayFile))
	}
	return args
}
