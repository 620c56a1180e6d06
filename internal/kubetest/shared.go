package kubetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is one cluster per test binary; tests that use it work in namespaces of
// their own (and cluster-scoped objects with names of their own), so they can share
// it and run in parallel.
var shared struct {
	once sync.Once
	dir  string
	c    *Cluster
	err  error
}

// Shared returns the test binary's cluster, starting it on first use. A missing binary
// fails the test with the command that builds it. Tests using it must not Stop it,
// and must keep to their own namespaces and object names; webhook configurations they
// register must select only their own objects (namespaceSelector or objectSelector).
// Call StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "outrider-kube-test-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*ReadyTimeout+5*time.Second)
		defer cancel()
		shared.c, shared.err = StartIn(ctx, shared.dir)
	})
	if shared.err != nil {
		t.Fatalf("real kube-apiserver: %v", shared.err)
	}
	return shared.c
}

// StopShared stops the shared cluster, if one was started. Its directory (with both
// servers' logs) is removed after passing tests and kept, with a message, otherwise.
func StopShared(passed bool) {
	if shared.dir == "" {
		return
	}
	if shared.c != nil {
		shared.c.Stop()
	}
	if passed {
		os.RemoveAll(shared.dir)
	} else {
		fmt.Fprintf(os.Stderr, "kube-apiserver and etcd logs kept in %s\n", shared.dir)
	}
}
