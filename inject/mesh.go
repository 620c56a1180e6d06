package inject

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The containers service meshes inject, by the names their injectors give them
// (Istio's injection template in istio/istio
// manifests/charts/istio-control/istio-discovery/files/injection-template.yaml,
// https://istio.io/latest/blog/2023/native-sidecars/; Linkerd's
// https://linkerd.io/2/features/proxy-injection/ and
// https://linkerd.io/2/features/native-sidecars/).
var (
	// meshInit set up (or, with the mesh's CNI plugin, check) the iptables rules that
	// send the pod's traffic through the proxy; they run to completion.
	meshInit = []string{"istio-init", "istio-validation", "linkerd-init", "linkerd-network-validator"}
	// meshProxy are the proxies: native sidecars (init containers with
	// restartPolicy: Always) when the mesh's native sidecars are on, regular
	// containers otherwise.
	meshProxy = []string{"istio-proxy", "linkerd-proxy"}
	// meshCNI are the init containers of a mesh whose CNI plugin redirects the
	// traffic before any container starts.
	meshCNI = []string{"istio-validation", "linkerd-network-validator"}
)

// The annotations with which Istio and Linkerd leave outbound ports out of the
// redirection to their proxy.
const (
	istioExcludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
	linkerdSkipOutboundPorts  = "config.linkerd.io/skip-outbound-ports"
)

// meshLayout is what a pod holds of a service mesh, outrider's own containers left
// out.
type meshLayout struct {
	// after is the index in initContainers just after the last mesh init container
	// or native proxy; 0 without any.
	after int
	// nativeProxy and regularProxy name the mesh's proxy when it is an init
	// container with restartPolicy: Always, or a regular container.
	nativeProxy, regularProxy string
	// cni names the mesh's CNI validation container, when there is one.
	cni string
}

func isOurs(c corev1.Container) bool { return c.Name == SidecarName || c.Name == InitName }

// meshOf finds the mesh's containers in initContainers (outrider's own skipped, so
// that indexes are those of the list without them) and containers.
func meshOf(init, containers []corev1.Container) meshLayout {
	var m meshLayout
	i := 0
	for _, c := range init {
		if isOurs(c) {
			continue
		}
		i++
		switch {
		case slices.Contains(meshInit, c.Name):
			m.after = i
			if slices.Contains(meshCNI, c.Name) {
				m.cni = c.Name
			}
		case slices.Contains(meshProxy, c.Name):
			m.after = i
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				m.nativeProxy = c.Name
			} else {
				m.regularProxy = c.Name
			}
		}
	}
	for _, c := range containers {
		if slices.Contains(meshProxy, c.Name) {
			m.regularProxy = c.Name
		}
	}
	return m
}

// initPosition is where outrider's init container (the native sidecar, or the
// classic outrider-init) goes in the pod's initContainers, by the sidecar order;
// with the problems that prevent that order and warnings about the one chosen.
func (o *options) initPosition(pod *corev1.Pod) (int, problems, []string) {
	if o.mode == ModeClassic && !o.hasSecrets() {
		return 0, nil, nil // no init container to place
	}
	m := meshOf(pod.Spec.InitContainers, pod.Spec.Containers)
	var p problems
	var warnings []string
	switch o.order {
	case OrderAfterMesh:
		if m.regularProxy != "" {
			p.add(AnnotationSidecarOrder, "after-mesh: the mesh's proxy %q is a regular container, which starts only after every init container, so outrider could not wait for it; turn on the mesh's native sidecars (Istio: annotation sidecar.istio.io/nativeSidecar: \"true\" or ENABLE_NATIVE_SIDECARS; Linkerd: config.beta.linkerd.io/proxy-enable-native-sidecar: \"true\") or use %s: %s with Vault's port excluded from the redirection", m.regularProxy, AnnotationSidecarOrder, OrderFirst)
		}
		return m.after, p, nil
	default:
		if m.cni != "" && o.hasSecrets() {
			if port := o.vaultPort(); port != "" && !excludesPort(pod.Annotations, port) {
				warnings = append(warnings, fmt.Sprintf("outrider: the mesh's CNI plugin (%s) sends the pod's traffic to its proxy from the start, and outrider, placed first (%s: %s), logs in to Vault before the proxy runs: exclude Vault's port (annotation %s or %s: \"%s\") or use %s: %s", m.cni, AnnotationSidecarOrder, OrderFirst, istioExcludeOutboundPorts, linkerdSkipOutboundPorts, port, AnnotationSidecarOrder, OrderAfterMesh))
			}
		}
		return 0, nil, warnings
	}
}

// vaultPort is the port of Vault's URL, or "" when there is no Vault.
func (o *options) vaultPort() string {
	u, err := url.Parse(o.vaultAddr)
	if err != nil || u.Host == "" {
		return ""
	}
	if port := u.Port(); port != "" {
		return port
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// excludesPort reports whether the mesh's annotations leave port out of the
// redirection.
func excludesPort(ann map[string]string, port string) bool {
	for _, k := range []string{istioExcludeOutboundPorts, linkerdSkipOutboundPorts} {
		for _, v := range splitList(ann[k]) {
			if v == port {
				return true
			}
			if lo, hi, ok := strings.Cut(v, "-"); ok {
				l, err1 := strconv.Atoi(lo)
				h, err2 := strconv.Atoi(hi)
				n, err3 := strconv.Atoi(port)
				if err1 == nil && err2 == nil && err3 == nil && l <= n && n <= h {
					return true
				}
			}
		}
	}
	return false
}

// reorder answers the reinvocation of the webhook for a pod outrider injected
// already, after another webhook (a mesh's injector) added its containers: the ops
// that move outrider's init container to where the sidecar order puts it, or none
// when it is there. It never fails: a pod it cannot read is left as it is.
func reorder(pod *corev1.Pod) []patchOp {
	order := strings.TrimSpace(pod.Annotations[AnnotationSidecarOrder])
	if order == "" {
		order = OrderFirst
	}
	init := pod.Spec.InitContainers
	cur := slices.IndexFunc(init, isOurs)
	if cur < 0 || (order != OrderFirst && order != OrderAfterMesh) {
		return nil
	}
	want := 0
	if order == OrderAfterMesh {
		want = meshOf(init, pod.Spec.Containers).after
	}
	if want == cur {
		return nil
	}
	path := "/spec/initContainers/" + strconv.Itoa(cur)
	return []patchOp{
		{Op: "test", Path: path + "/name", Value: init[cur].Name},
		{Op: "remove", Path: path},
		{Op: "add", Path: "/spec/initContainers/" + strconv.Itoa(want), Value: init[cur]},
	}
}
