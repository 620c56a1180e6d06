package kube

import (
	"context"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outrider-dev/outrider/config"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

// What deploy/node names its objects.
const (
	nodeNamespace = "outrider-node"
	nodeName      = "outrider-node"
)

// TestNodeAgent renders deploy/node with kustomize, checks the DaemonSet (the node's
// pod logs read-only, positions kept on the node, no privilege, every node, one agent
// per node during an upgrade) and its agent configuration (loaded as the agent loads
// it, its data_dir the node's directory, its sources under the pod logs), applies it
// to the real API server and reads every object back, and creates (dry run) a pod of
// the template in its namespace, which the API server accepts, and in a namespace
// enforcing the baseline Pod Security Standard, which refuses it for its hostPath
// volumes: why the node agent has a namespace of its own.
func TestNodeAgent(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	m := build(t, "node")
	if got, want := m.kinds(), []string{"ConfigMap", "DaemonSet", "Namespace", "ServiceAccount"}; !slices.Equal(got, want) {
		t.Errorf("kinds = %v, want %v (no RBAC: the agent needs nothing from the API server)", got, want)
	}
	var ds appsv1.DaemonSet
	m.into(t, "DaemonSet", nodeName, &ds)
	var sa corev1.ServiceAccount
	m.into(t, "ServiceAccount", nodeName, &sa)
	var ns corev1.Namespace
	m.into(t, "Namespace", nodeNamespace, &ns)
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace %s enforces %q, want privileged (hostPath volumes)", nodeNamespace, ns.Labels["pod-security.kubernetes.io/enforce"])
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the service account mounts a token; the agent needs none")
	}

	spec := ds.Spec.Template.Spec
	if u := ds.Spec.UpdateStrategy.RollingUpdate; u == nil || u.MaxSurge == nil || u.MaxSurge.IntValue() != 0 {
		t.Errorf("updateStrategy = %+v, want maxSurge 0: two agents on a node would share the positions", ds.Spec.UpdateStrategy)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("tolerations = %+v, want one that tolerates every taint (every node has pods)", spec.Tolerations)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken || spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("pod: automount %v, hostNetwork %v, hostPID %v, hostIPC %v; want no token and no host namespace", spec.AutomountServiceAccountToken, spec.HostNetwork, spec.HostPID, spec.HostIPC)
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("containers %d, init containers %d; want one agent", len(spec.Containers), len(spec.InitContainers))
	}
	agent := spec.Containers[0]
	if len(agent.Args) < 2 || agent.Args[0] != "agent" || flagValue(agent.Args, "--config") != "/etc/outrider/config.yaml" {
		t.Errorf("args = %v, want outrider agent --config=/etc/outrider/config.yaml", agent.Args)
	}
	checkResources(t, agent)
	sc := agent.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("securityContext = %+v, want unprivileged, no privilege escalation, read-only root filesystem, every capability dropped, seccomp RuntimeDefault", sc)
	}

	logs, data := volume(t, spec, "pod-logs"), volume(t, spec, "data")
	if logs.HostPath == nil || logs.HostPath.Path != "/var/log/pods" || logs.HostPath.Type == nil || *logs.HostPath.Type != corev1.HostPathDirectory {
		t.Errorf("volume pod-logs = %+v, want hostPath /var/log/pods (Directory)", logs.VolumeSource)
	}
	if data.HostPath == nil || data.HostPath.Path != "/var/lib/outrider-node" || data.HostPath.Type == nil || *data.HostPath.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("volume data = %+v, want hostPath /var/lib/outrider-node (DirectoryOrCreate): positions must outlive the pod", data.VolumeSource)
	}
	var logsMount, dataMount corev1.VolumeMount
	for _, vm := range agent.VolumeMounts {
		switch vm.Name {
		case "pod-logs":
			logsMount = vm
		case "data":
			dataMount = vm
		}
	}
	if !logsMount.ReadOnly || logsMount.MountPath != "/var/log/pods" || logsMount.SubPath != "" || logsMount.SubPathExpr != "" {
		t.Errorf("mount of pod-logs = %+v, want read-only at /var/log/pods", logsMount)
	}
	if dataMount.ReadOnly || dataMount.MountPath == "" {
		t.Errorf("mount of data = %+v, want writable", dataMount)
	}

	// The agent's configuration, loaded as the agent loads it.
	cm := m.one(t, "ConfigMap")
	if !strings.HasPrefix(cm.GetName(), nodeName+"-config") {
		t.Errorf("ConfigMap %s, want %s-config-<hash>", cm.GetName(), nodeName)
	}
	if v := volume(t, spec, "config"); v.ConfigMap == nil || v.ConfigMap.Name != cm.GetName() {
		t.Errorf("volume config = %+v, want the ConfigMap %s", v.VolumeSource, cm.GetName())
	}
	cmData, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	cfg, err := config.Parse("deploy/node/config.yaml", []byte(cmData["config.yaml"]))
	if err != nil {
		t.Fatalf("deploy/node/config.yaml does not load: %v", err)
	}
	if path.Clean(cfg.DataDir) != dataMount.MountPath {
		t.Errorf("data_dir %s, but the data volume is mounted at %s: positions would be lost with the pod", cfg.DataDir, dataMount.MountPath)
	}
	if len(cfg.Logs.Sources) == 0 {
		t.Error("the configuration tails nothing")
	}
	for _, s := range cfg.Logs.Sources {
		if !strings.HasPrefix(s.Path, logsMount.MountPath+"/") {
			t.Errorf("source %s tails %s, outside the pod logs mounted at %s", s.Name, s.Path, logsMount.MountPath)
		}
	}
	if cfg.Server.Listen == "" || !strings.HasSuffix(cfg.Server.Listen, ":8686") {
		t.Errorf("server.listen %q, want port 8686, the probes' port", cfg.Server.Listen)
	}

	applyAndReadBack(ctx, t, c, m)

	pod := func(namespace string) *corev1.Pod {
		tmpl := ds.Spec.Template.DeepCopy()
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: nodeName + "-", Namespace: namespace, Labels: tmpl.Labels},
			Spec:       tmpl.Spec,
		}
	}
	dryRun := func(namespace string) error {
		p := pod(namespace)
		if namespace != nodeNamespace {
			p.Spec.ServiceAccountName = "" // the namespace's default
		}
		return c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+namespace+"/pods?dryRun=All&fieldValidation=Strict", p, nil)
	}
	if err := dryRun(nodeNamespace); err != nil {
		t.Errorf("a pod of the DaemonSet is refused in %s: %v", nodeNamespace, err)
	}
	const baseline = "outrider-node-baseline"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: baseline, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}}); err != nil {
		t.Fatal(err)
	}
	if err := dryRun(baseline); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), "hostPath") {
		t.Errorf("a pod of the DaemonSet in a baseline namespace: %v, want a PodSecurity refusal naming hostPath", err)
	}
}
