package kube

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

// TestBesideMesh injects pods shaped as Istio's and Linkerd's injectors leave them
// with native sidecars on (inject/testdata/{istio,linkerd}-after-mesh.pod.yaml,
// whose comments cite the shapes' sources) through the real `outrider inject -f`,
// with each sidecar order, creates them through the real API server, and checks the
// order of the stored init containers: first puts outrider before the mesh's
// iptables init container, after-mesh right after the mesh's native proxy, and every
// native sidecar keeps restartPolicy: Always and its startup probe.
func TestBesideMesh(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "outrider-mesh-apps"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mesh, order string
		want        []string
	}{
		{"istio", inject.OrderFirst, []string{"outrider", "istio-init", "istio-proxy"}},
		{"istio", inject.OrderAfterMesh, []string{"istio-init", "istio-proxy", "outrider"}},
		{"linkerd", inject.OrderFirst, []string{"outrider", "linkerd-init", "linkerd-proxy"}},
		{"linkerd", inject.OrderAfterMesh, []string{"linkerd-init", "linkerd-proxy", "outrider"}},
	} {
		t.Run(tt.mesh+" "+tt.order, func(t *testing.T) {
			data, err := os.ReadFile("../../inject/testdata/" + tt.mesh + "-after-mesh.pod.yaml")
			if err != nil {
				t.Fatal(err)
			}
			doc := strings.Replace(string(data), "\n    outrider.dev/sidecar-order: after-mesh\n", "\n    outrider.dev/sidecar-order: "+tt.order+"\n", 1)
			if !strings.Contains(doc, "\n    outrider.dev/sidecar-order: "+tt.order+"\n") {
				t.Fatal("the fixture has no outrider.dev/sidecar-order annotation to change")
			}
			pod := injectedByBinary(ctx, t, []byte(doc))
			pod.Name, pod.GenerateName = "", tt.mesh+"-"
			stored := createIn(ctx, t, c, ns, pod)
			var names []string
			for _, ic := range stored.Spec.InitContainers {
				names = append(names, ic.Name)
				native := ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways
				switch ic.Name {
				case inject.SidecarName:
					if !native || ic.StartupProbe == nil {
						t.Errorf("outrider: restartPolicy %v, startupProbe %v; want a native sidecar with a startup probe", ic.RestartPolicy, ic.StartupProbe)
					}
				case "istio-proxy", "linkerd-proxy":
					if !native {
						t.Errorf("%s lost restartPolicy: Always", ic.Name)
					}
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("stored initContainers = %v, want %v", names, tt.want)
			}
			if got := fmt.Sprint(len(stored.Spec.Containers)); got != "1" {
				t.Errorf("%s containers, want the app's only", got)
			}
		})
	}
}
