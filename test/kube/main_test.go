// Package kube tests the Kubernetes side of outrider against a real etcd and
// kube-apiserver on 127.0.0.1 (internal/kubetest): the manifests of deploy/ are
// rendered with kustomize and applied, and the real `outrider inject` binary serves
// the admission webhook the API server calls for the pods the tests create. A missing
// backend is a failure that says how to build it (`make backends`), never a skip.
//
// The API server runs without a controller manager, scheduler or kubelet: Deployments
// and Jobs create no pods, so the tests create the pods their controllers would, and
// nothing enforces NetworkPolicies or runs the injector's pods (their specs are
// checked by a dry-run create under the namespace's Pod Security admission instead).
package kube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/outrider-dev/outrider/internal/kubetest"
)

// outriderBin is the outrider binary, built once for the package.
var outriderBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outrider-kube-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	outriderBin = filepath.Join(dir, "outrider")
	build := exec.Command("go", "build", "-o", outriderBin, "github.com/outrider-dev/outrider/cmd/outrider")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build outrider:", err)
		return 1
	}
	code := m.Run()
	kubetest.StopShared(code == 0)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			return 1
		}
	}
	return code
}
