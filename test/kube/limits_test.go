package kube

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/outrider-dev/outrider/inject"
)

// TestInjectorLimits sends hostile admission reviews to the real `outrider inject`,
// run with deploy/base's arguments, configuration and GOMEMLIMIT, straight over HTTPS
// (as anyone who can reach its port could): one review with 20,000 secret annotations,
// 8 at once with 4,000 each, 64 at once of 7MiB with and without a Content-Length.
// Each must be answered with its reason, the process must stay up with its peak
// resident memory (VmHWM) under the Deployment's memory limit, and a normal pod must
// be injected afterwards. No API server is needed.
func TestInjectorLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := build(t, "base")
	var dep appsv1.Deployment
	base.into(t, "Deployment", injectorName, &dep)
	ctr := dep.Spec.Template.Spec.Containers[0]
	memLimit := ctr.Resources.Limits.Memory().Value()
	gomemlimit := ""
	for _, e := range ctr.Env {
		if e.Name == "GOMEMLIMIT" {
			gomemlimit = e.Value
		}
	}
	if memLimit == 0 || gomemlimit == "" {
		t.Fatalf("deploy/base's injector has memory limit %d and GOMEMLIMIT %q; want both", memLimit, gomemlimit)
	}

	dir := t.TempDir()
	const serverName = injectorName + ".outrider-system.svc"
	if _, _, err := runOutrider(ctx, "inject", "--self-signed", "--out-dir", dir, "--service", injectorName, "--namespace", "outrider-system"); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, inject.CAFileName))
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "config.yaml")
	writeInjectorConfig(t, base, configPath)
	listen := freeLoopbackAddr(t)
	args := injectorArgs(t, ctr.Args, map[string]string{
		"--config":   configPath,
		"--listen":   listen,
		"--tls-cert": filepath.Join(dir, inject.CertFileName),
		"--tls-key":  filepath.Join(dir, inject.KeyFileName),
	})
	inj := startInjectorEnv(t, []string{"GOMEMLIMIT=" + gomemlimit}, args, listen, serverName, caPEM)
	pid := inj.cmd.Process.Pid

	// The API server calls webhooks over HTTP/2; so does this client.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	post := func(body []byte, knownLength bool) answer {
		var r io.Reader = bytes.NewReader(body)
		if !knownLength {
			r = io.MultiReader(r) // hides the length: the body is streamed
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, inj.base+"/mutate", r)
		if err != nil {
			return answer{err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return answer{err: err}
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		a := answer{code: resp.StatusCode, body: string(data), retryAfter: resp.Header.Get("Retry-After"), err: err}
		if resp.StatusCode == http.StatusOK {
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(data, &review); err != nil || review.Response == nil {
				a.err = fmt.Errorf("not an AdmissionReview: %v: %.200s", err, data)
			} else {
				a.review = review.Response
			}
		}
		return a
	}
	alive := func(after string) {
		t.Helper()
		select {
		case <-inj.exited:
			t.Fatalf("outrider inject exited after %s: %v", after, inj.err)
		default:
		}
	}
	hwm := func(after string) int64 {
		t.Helper()
		v := vmHWM(t, pid)
		t.Logf("after %s: peak RSS (VmHWM) %.1f MiB", after, float64(v)/(1<<20))
		return v
	}
	hwm("start")

	t.Run("20000 secret annotations", func(t *testing.T) {
		body := review(t, secretPod(20000, 0))
		a := post(body, true)
		t.Logf("%d-byte review: %s", len(body), a)
		a.wantDenied(t, "more than the limit of 100", "more than Kubernetes' limit of 256KiB")
		alive("one review with 20,000 secret annotations")
		hwm("one review with 20,000 secret annotations")
	})
	t.Run("8 concurrent with 4000 each", func(t *testing.T) {
		var wg sync.WaitGroup
		answers := make([]answer, 8)
		for i := range answers {
			body := review(t, secretPod(4000, i))
			wg.Go(func() { answers[i] = post(body, true) })
		}
		wg.Wait()
		for i, a := range answers {
			t.Logf("review %d: %s", i, a)
			if a.code == http.StatusTooManyRequests {
				a.wantRefused(t, http.StatusTooManyRequests, "busy")
				continue
			}
			a.wantDenied(t, "the pod has 4001 secret files", "more than the limit of 100")
		}
		alive("8 reviews with 4,000 secret annotations each")
		hwm("8 reviews with 4,000 secret annotations each")
	})
	huge := review(t, fillerPod(7<<20))
	for _, known := range []bool{true, false} {
		name := "64 concurrent 7MiB with Content-Length"
		if !known {
			name = "64 concurrent 7MiB streamed"
		}
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			answers := make([]answer, 64)
			for i := range answers {
				wg.Go(func() { answers[i] = post(huge, known) })
			}
			wg.Wait()
			counts := map[int]int{}
			for i, a := range answers {
				counts[a.code]++
				if i == 0 || a.code != answers[0].code {
					t.Logf("%d-byte review %d: %s", len(huge), i, a)
				}
				switch a.code {
				case http.StatusRequestEntityTooLarge:
					a.wantRefused(t, a.code, "larger than the injector's limit")
				case http.StatusTooManyRequests:
					a.wantRefused(t, a.code, "busy: admission requests holding 16MiB are being handled already")
				default:
					t.Errorf("review %d: %s; want 413 (too large) or 429 (busy)", i, a)
				}
			}
			t.Logf("answers by status: %v", counts)
			alive(name)
			hwm(name)
		})
	}
	t.Run("16 concurrent pods of tiny volumes", func(t *testing.T) {
		// Within every limit, and each costs many times its size to decode.
		body := review(t, volumesPod(inject.MaxPodObjects-100))
		var wg sync.WaitGroup
		answers := make([]answer, 16)
		for i := range answers {
			wg.Go(func() { answers[i] = post(body, true) })
		}
		wg.Wait()
		counts := map[string]int{}
		for i, a := range answers {
			switch {
			case a.err == nil && a.review != nil:
				counts[fmt.Sprintf("200 allowed=%v", a.review.Allowed)]++
			case a.code == http.StatusTooManyRequests:
				counts["429"]++
				a.wantRefused(t, a.code, "busy")
			default:
				t.Errorf("review %d: %s", i, a)
			}
		}
		t.Logf("%d-byte reviews: answers %v", len(body), counts)
		alive("16 reviews of pods of tiny volumes")
		hwm("16 reviews of pods of tiny volumes")
	})
	t.Run("normal pod afterwards", func(t *testing.T) {
		pod := normalPod()
		a := post(review(t, pod), true)
		if a.err != nil || a.review == nil || !a.review.Allowed || len(a.review.Patch) == 0 {
			t.Fatalf("a normal pod was not injected: %s", a)
		}
		t.Logf("normal pod: allowed with a %d-byte patch", len(a.review.Patch))
	})
	peak := hwm("all attacks")
	if peak >= memLimit {
		t.Errorf("peak RSS %d bytes, at or past the Deployment's memory limit of %d", peak, memLimit)
	}
}

// TestInjectorRefusesSentryDSN checks that `outrider inject --sentry-dsn` does not
// start, says to use a Secret, and does not print the DSN.
func TestInjectorRefusesSentryDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const key = "5ec12e7c0ffee5ec12e7c0ffee5ec12e"
	_, stderr, err := runOutrider(ctx, "inject", "--listen", freeLoopbackAddr(t), "--loki-url", lokiURL, "--sentry-dsn", "https://"+key+"@o1.ingest.sentry.io/1")
	if err == nil {
		t.Fatal("outrider inject started with --sentry-dsn")
	}
	if !strings.Contains(stderr, "--sentry-dsn-secret <secret>/<key>") || strings.Contains(stderr, key) {
		t.Errorf("stderr:\n%s\nwant the advice to use --sentry-dsn-secret, without the DSN", stderr)
	}
}

// answer is what the webhook answered to one request.
type answer struct {
	code       int
	body       string
	retryAfter string
	review     *admissionv1.AdmissionResponse
	err        error
}

func (a answer) String() string {
	switch {
	case a.err != nil:
		return "error: " + a.err.Error()
	case a.review != nil && a.review.Result != nil:
		return fmt.Sprintf("%d allowed=%v: %.300s", a.code, a.review.Allowed, a.review.Result.Message)
	case a.review != nil:
		return fmt.Sprintf("%d allowed=%v, %d-byte patch", a.code, a.review.Allowed, len(a.review.Patch))
	}
	return fmt.Sprintf("%d (Retry-After %q): %.300s", a.code, a.retryAfter, strings.TrimSpace(a.body))
}

func (a answer) wantDenied(t *testing.T, want ...string) {
	t.Helper()
	if a.err != nil || a.review == nil || a.review.Allowed || a.review.Result == nil {
		t.Errorf("answer %s; want a denial", a)
		return
	}
	for _, w := range want {
		if !strings.Contains(a.review.Result.Message, w) {
			t.Errorf("denial %q lacks %q", a.review.Result.Message, w)
		}
	}
}

func (a answer) wantRefused(t *testing.T, code int, want string) {
	t.Helper()
	if a.err != nil || a.code != code || !strings.Contains(a.body, want) {
		t.Errorf("answer %s; want %d saying %q", a, code, want)
	}
	if code == http.StatusTooManyRequests && a.retryAfter == "" {
		t.Errorf("429 without Retry-After")
	}
}

// vmHWM returns the peak resident set size of the process.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// normalPod is a pod that opts in with one secret file and log files.
func normalPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop",
			Annotations: map[string]string{
				inject.AnnotationInject:              "true",
				inject.AnnotationRole:                "web",
				inject.AnnotationSecretPrefix + "db": "secret/data/shop/db",
				inject.AnnotationLogs:                "/var/log/app/*.log",
			},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/shop/web:1"}}},
	}
}

// secretPod is normalPod with n more secret annotations.
func secretPod(n, seed int) *corev1.Pod {
	pod := normalPod()
	pod.Name = fmt.Sprintf("web-%d", seed)
	for i := 0; i < n; i++ {
		pod.Annotations[fmt.Sprintf("%sf%05d", inject.AnnotationSecretPrefix, i)] = fmt.Sprintf("kv/data/f%05d", i)
	}
	return pod
}

// fillerPod is normalPod grown to about size bytes with annotations.
func fillerPod(size int) *corev1.Pod {
	pod := normalPod()
	const chunk = 64 << 10
	for i := 0; i < size/chunk; i++ {
		pod.Annotations[fmt.Sprintf("filler.example.com/a%d", i)] = strings.Repeat("x", chunk)
	}
	return pod
}

// volumesPod is normalPod with n more volumes, each as small as a volume can be.
func volumesPod(n int) *corev1.Pod {
	pod := normalPod()
	for i := 0; i < n; i++ {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: fmt.Sprintf("v%06d", i)})
	}
	return pod
}

// review wraps pod in the AdmissionReview the API server would send for its creation.
func review(t *testing.T, pod *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", len(raw))),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: pod.Namespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}
