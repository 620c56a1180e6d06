package tail

import (
	"path/filepath"
	"strings"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Values of Config.PathMetadata.
const (
	// PathMetadataNone takes nothing from a file's path but its name.
	PathMetadataNone = "none"
	// PathMetadataKubernetes reads the kubelet's layout of /var/log/pods on a node,
	// <namespace>_<pod>_<pod uid>/<container>/<restart>.log: the namespace, pod and
	// container labels come from the path (in place of the agent's own identity
	// labels) and the pod uid becomes structured metadata.
	PathMetadataKubernetes = "kubernetes"
	// PathMetadataKubernetesContainer reads <container>/<restart>.log inside one
	// pod's directory (mounted into that pod's sidecar): the container label comes
	// from the path; namespace and pod stay the agent's own.
	PathMetadataKubernetesContainer = "kubernetes_container"
)

// pathMeta is what a file's path says about its container.
type pathMeta struct {
	namespace, pod, uid, container string
}

// parsePodPath reads path in the layout mode names. ok is false when it does not
// follow the layout.
func parsePodPath(mode, path string) (m pathMeta, ok bool) {
	dir := filepath.Dir(path)
	m.container = filepath.Base(dir)
	if !validK8sName(m.container) {
		return pathMeta{}, false
	}
	if mode == PathMetadataKubernetesContainer {
		return m, true
	}
	m.namespace, m.pod, m.uid, ok = splitPodDir(filepath.Base(filepath.Dir(dir)))
	if !ok {
		return pathMeta{}, false
	}
	return m, true
}

// splitPodDir splits the kubelet's pod directory name, <namespace>_<pod>_<uid>.
// Namespace and pod names hold no '_'.
func splitPodDir(s string) (namespace, pod, uid string, ok bool) {
	namespace, rest, ok1 := strings.Cut(s, "_")
	pod, uid, ok2 := strings.Cut(rest, "_")
	if !ok1 || !ok2 || !validK8sName(namespace) || !validK8sName(pod) || !validUID(uid) {
		return "", "", "", false
	}
	return namespace, pod, uid, true
}

// validK8sName reports whether s may be a namespace, pod or container name: a DNS
// subdomain (lowercase letters, digits, '-' and '.'), at most 253 bytes.
func validK8sName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validUID reports whether s may be a pod uid: a UUID, or the hash a static pod
// gets, in hex digits and dashes.
func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validatePathLayout records a problem when glob can never match the layout of
// mode: too few directories, or a literal directory name the layout refuses.
// Wildcard parts may match, and files that do not are counted while running.
func validatePathLayout(p *confval.Problems, mode, glob string) {
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(glob), "/"), "/")
	need, layout := 3, "<namespace>_<pod>_<uid>/<container>/<n>.log, such as /var/log/pods/*/*/*.log"
	if mode == PathMetadataKubernetesContainer {
		need, layout = 2, "<container>/<n>.log inside the pod's directory, such as /var/log/pod/*/*.log"
	}
	if len(parts) < need {
		p.Addf("path", "%q cannot match the %s layout of path_metadata: %s", glob, mode, layout)
		return
	}
	literal := func(s string) bool { return !strings.ContainsAny(s, `*?[\`) }
	if c := parts[len(parts)-2]; literal(c) && !validK8sName(c) {
		p.Addf("path", "%q: the container directory %q is not a container name, so it can never match the layout of path_metadata: %s (%s)", glob, c, mode, layout)
	}
	if mode == PathMetadataKubernetes {
		if d := parts[len(parts)-3]; literal(d) {
			if _, _, _, ok := splitPodDir(d); !ok {
				p.Addf("path", "%q: the pod directory %q is not <namespace>_<pod>_<uid>, so it can never match the layout of path_metadata: %s (%s)", glob, d, mode, layout)
			}
		}
	}
}
