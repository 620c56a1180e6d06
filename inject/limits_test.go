package inject

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// secretAnnotations adds n outrider.dev/secret-* annotations to pod.
func secretAnnotations(pod *corev1.Pod, n int) *corev1.Pod {
	for i := 0; i < n; i++ {
		pod.Annotations[fmt.Sprintf("%sf%d", AnnotationSecretPrefix, i)] = fmt.Sprintf("secret/data/f%d", i)
	}
	return pod
}

// TestLimitsDenyBeforeBuilding checks each limit of a pod that opts in: the denial
// names the limit and the fix, costs little memory, and stays short whatever the pod
// holds.
func TestLimitsDenyBeforeBuilding(t *testing.T) {
	in := newTestInjector(t, testDefaults())
	big := func(p *corev1.Pod) *corev1.Pod {
		p.Annotations["filler.example.com/x"] = strings.Repeat("x", 200<<10)
		p.Spec.Containers[0].Args = []string{strings.Repeat("y", MaxPodBytes)}
		return p
	}
	volumes := func(p *corev1.Pod) *corev1.Pod {
		for i := 0; i < MaxPodObjects; i++ {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("v%d", i)})
		}
		return p
	}
	containers := func(p *corev1.Pod) *corev1.Pod {
		for i := 0; i < MaxContainers; i++ {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "x"})
		}
		return p
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string
	}{
		{"20000 secret annotations", secretAnnotations(basePod(), 20000), []string{
			"outrider.dev/secret-<name>: the pod has 20001 secret files (outrider.dev/secret-<name> and outrider.dev/template-<name> annotations), more than the limit of 100; render several values into one file with a template",
			"the pod's annotations take", "more than Kubernetes' limit of 256KiB"}},
		{"4000 secret annotations", secretAnnotations(basePod(), 4000), []string{"the pod has 4001 secret files", "more than the limit of 100"}},
		{"101 secret files", secretAnnotations(basePod(), 100), []string{"the pod has 101 secret files"}},
		{"large pod", big(basePod()), []string{"outrider.dev/inject: the pod is", "bytes of JSON, more than the 512KiB the injector accepts for a pod it injects"}},
		{"many tiny volumes", volumes(basePod()), []string{"outrider.dev/inject: the pod's JSON holds", fmt.Sprintf("objects and lists, more than the limit of %d", MaxPodObjects)}},
		{"many containers", containers(basePod()), []string{fmt.Sprintf("the pod has %d containers and init containers, more than the limit of %d", MaxContainers+1, MaxContainers)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := requestFor(t, tt.pod)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp := in.Mutate(req)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte pod: %d bytes allocated; %.200s", len(req.Object.Raw), alloc, resp.Result.Message)
			if resp.Allowed {
				t.Fatal("allowed")
			}
			for _, w := range tt.want {
				if !strings.Contains(resp.Result.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, resp.Result.Message)
				}
			}
			if alloc > uint64(8*len(req.Object.Raw))+4<<20 {
				t.Errorf("denying a %d-byte pod allocated %d bytes", len(req.Object.Raw), alloc)
			}
			if len(resp.Result.Message) > 8<<10 {
				t.Errorf("the denial is %d bytes long", len(resp.Result.Message))
			}
		})
	}
	// Exactly at the limits the pod is injected; a pod that does not opt in is never
	// held to them.
	if resp := in.Mutate(requestFor(t, secretAnnotations(basePod(), MaxSecretFiles-1))); !resp.Allowed {
		t.Errorf("%d secret files denied: %s", MaxSecretFiles, resp.Result.Message)
	}
	out := secretAnnotations(basePod(), 20000)
	delete(out.Annotations, AnnotationInject)
	if resp := in.Mutate(requestFor(t, out)); !resp.Allowed || resp.Patch != nil {
		t.Errorf("a pod that does not opt in: allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
}

func TestDenialListsAtMostTwentyProblems(t *testing.T) {
	pod := basePod()
	for i := 0; i < 50; i++ {
		pod.Annotations[fmt.Sprintf("%stypo-%d", Prefix, i)] = "x"
	}
	resp := newTestInjector(t, testDefaults()).Mutate(requestFor(t, pod))
	msg := resp.Result.Message
	if !strings.HasPrefix(msg, "outrider: 50 problems:") || !strings.HasSuffix(msg, "\n- and 30 more") || strings.Count(msg, "\n- ") != 21 {
		t.Errorf("message:\n%s", msg)
	}
}

// TestHandlerLimits checks the answers that bound the handler's memory: too large by
// Content-Length (nothing read), and busy (429 with Retry-After) while other
// requests hold MaxInflightBytes.
func TestHandlerLimits(t *testing.T) {
	h := NewHandler(newTestInjector(t, testDefaults()), nil, nil)
	good := reviewBody(t, requestFor(t, basePod()), "admission.k8s.io/v1")
	post := func(body io.Reader, length int64) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/mutate", body)
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = length
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	unread := &countingReader{r: bytes.NewReader(make([]byte, 7<<20))}
	w := post(unread, 7<<20)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "is 7340032 bytes, larger than the injector's limit of 3145728 (3MiB)") {
		t.Errorf("7MiB review: %d %s", w.Code, w.Body)
	}
	if unread.n != 0 {
		t.Errorf("read %d bytes of a review refused by its Content-Length", unread.n)
	}
	w = post(io.MultiReader(bytes.NewReader(good), strings.NewReader(strings.Repeat(" ", MaxReviewBytes))), -1)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked review past the limit: %d %s", w.Code, w.Body)
	}

	// Other requests hold all but a few bytes of the budget.
	held := int64(MaxInflightBytes - 100)
	if !h.inflight.TryAcquire(held) {
		t.Fatal("acquire")
	}
	w = post(bytes.NewReader(good), int64(len(good)))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "busy: admission requests holding 16MiB are being handled already; retry in a second") {
		t.Errorf("busy: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	h.inflight.Release(held)
	// A client that announces a large body and sends it slowly holds only what it
	// sent (and one read ahead) meanwhile.
	pr, pw := io.Pipe()
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- post(pr, MaxReviewBytes) }()
	if _, err := pw.Write(good[:100]); err != nil {
		t.Fatal(err)
	}
	rest := int64(MaxInflightBytes - 2*budgetChunk - 2*100)
	if !h.inflight.TryAcquire(rest) {
		t.Error("a client that announced 3MiB and sent 100 bytes holds more than it sent")
	} else {
		h.inflight.Release(rest)
	}
	pw.Close()
	if w := <-done; w.Code != http.StatusBadRequest {
		t.Errorf("a body cut short: %d %s", w.Code, w.Body)
	}
	if !h.inflight.TryAcquire(MaxInflightBytes) {
		t.Error("the budget was not given back in full")
	} else {
		h.inflight.Release(MaxInflightBytes)
	}
	if w = post(bytes.NewReader(good), int64(len(good))); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"allowed":true`) {
		t.Errorf("after the others finished: %d %s", w.Code, w.Body)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzPrecheck checks that the pre-check never panics on any pod JSON, and that a
// pod it passes is within every limit.
func FuzzPrecheck(f *testing.F) {
	f.Add([]byte(`{"metadata":{"annotations":{"outrider.dev/inject":"true","outrider.dev/secret-a":"x","outrider.dev/secret-a-format":"raw"}},"spec":{"containers":[{}]}}`))
	f.Add([]byte(`{"spec":{"containers":[1,2],"initContainers":null}}`))
	f.Add([]byte(`{"metadata":{"annotations":{"outrider.dev/template-":"x"}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		shape, err := decodeShape(raw)
		if err != nil {
			return
		}
		p := precheck(len(raw), shape)
		if len(p) > 0 {
			return
		}
		if n := countObjects(raw, len(raw)); n > MaxPodObjects {
			t.Fatalf("passed a pod of %d objects and lists", n)
		}
		if len(raw) > MaxPodBytes || len(shape.Spec.Containers)+len(shape.Spec.InitContainers) > MaxContainers {
			t.Fatalf("passed a pod past the limits: %d bytes, %d containers", len(raw), len(shape.Spec.Containers)+len(shape.Spec.InitContainers))
		}
		size := 0
		for k, v := range shape.Metadata.Annotations {
			size += len(k) + len(v)
		}
		if size > maxAnnotationBytes {
			t.Fatalf("passed %d bytes of annotations", size)
		}
	})
}
