package inject

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/outrider-dev/outrider/internal/confval"
)

// Results of a mutation, the values of the result label of the injector's metrics.
const (
	ResultInjected = "injected" // the sidecar was injected
	ResultSkipped  = "skipped"  // allowed unchanged: no opt-in, injected already, not a pod creation
	// ResultReordered: a pod injected already, whose sidecar another webhook (a
	// service mesh's injector) displaced, is given it back where
	// AnnotationSidecarOrder puts it.
	ResultReordered = "reordered"
	ResultDenied    = "denied" // the pod's annotations are invalid or clash with it
	ResultError     = "error"  // the request could not be read
)

// Injector decides what to add to each pod. It holds only the injector-wide
// defaults, so one Injector serves any number of concurrent requests.
type Injector struct {
	defaults Defaults
}

// NewInjector applies the defaults of d, validates them, and checks that a sidecar
// configuration generated from them alone is valid, so that an injector started with
// a bad --loki-url fails at once instead of denying every pod.
func NewInjector(d Defaults) (*Injector, error) {
	d.ApplyDefaults()
	p := &confval.Problems{}
	d.Validate(p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationInject: "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	if d.VaultAddr != "" {
		probe.Annotations[AnnotationSecretPrefix+"probe"] = "secret/data/probe"
		probe.Annotations[AnnotationRole] = "probe"
	}
	in := &Injector{defaults: d}
	if d.VaultAddr != "" || d.LokiURL != "" || d.TempoEndpoint != "" || d.MetricsEndpoint != "" || d.SentryDSNSecret != "" {
		if _, probs := in.inject(probe, "probe"); len(probs) > 0 {
			for _, msg := range probs {
				p.Addf("", "%s", defaultsMessage(msg))
			}
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return in, nil
}

// defaultsMessage rewords a problem found with the probe pod in terms of the
// injector's settings.
func defaultsMessage(msg string) string {
	for annotation, flag := range map[string]string{
		AnnotationVaultAddr:       "vault_addr (--vault-addr)",
		AnnotationLokiURL:         "loki_url (--loki-url)",
		AnnotationTempoEndpoint:   "tempo_endpoint (--tempo-endpoint)",
		AnnotationMetricsEndpoint: "metrics_endpoint (--metrics-endpoint)",
		AnnotationSentryDSNSecret: "sentry_dsn_secret (--sentry-dsn-secret)",
		AnnotationQueueSizeLimit:  "queue_size_limit (--queue-size-limit)",
		AnnotationMemoryLimit:     "memory_limit (--memory-limit)",
	} {
		if rest, ok := strings.CutPrefix(msg, annotation+": "); ok {
			return flag + ": " + rest
		}
	}
	for _, a := range (&Defaults{}).credentialAnnotations() {
		if rest, ok := strings.CutPrefix(msg, a.annotation+": "); ok {
			return a.field + ": " + rest
		}
	}
	return msg
}

// Defaults returns the injector's defaults, with their own defaults applied.
func (in *Injector) Defaults() Defaults { return in.defaults }

// Mutate answers one admission request for a pod: a JSON patch that injects the
// sidecar when the pod opted in, an allowed response without a patch when it did not
// (or was injected already, or the request is not a pod creation), and a denial whose
// message names each offending annotation and the fix otherwise. It does no I/O and
// is safe for concurrent use.
func (in *Injector) Mutate(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp, _ := in.mutate(req)
	return resp
}

// mutate is Mutate that also returns the result for metrics and logs.
func (in *Injector) mutate(req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string) {
	if req == nil {
		return deny("", http.StatusBadRequest, "the AdmissionReview has no request"), ResultError
	}
	allow := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" || req.Operation != admissionv1.Create {
		return allow, ResultSkipped
	}
	// The pod's annotations and shape first: a pod that does not opt in, or is past
	// a limit, is answered before the whole pod is decoded.
	shape, err := decodeShape(req.Object.Raw)
	if err != nil {
		return deny(req.UID, http.StatusBadRequest, "outrider: "+err.Error()), ResultError
	}
	ok, probs := in.wants(shape.Metadata.Annotations)
	if len(probs) > 0 {
		return deny(req.UID, http.StatusBadRequest, denyMessage(probs)), ResultDenied
	}
	if !ok {
		if shape.Metadata.Annotations[AnnotationStatus] == StatusInjected {
			return in.reorder(req, shape, allow)
		}
		return allow, ResultSkipped
	}
	if probs := precheck(len(req.Object.Raw), shape); len(probs) > 0 {
		return deny(req.UID, http.StatusBadRequest, denyMessage(probs)), ResultDenied
	}
	shape = nil
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(req.UID, http.StatusBadRequest, fmt.Sprintf("outrider: cannot decode the pod: %v", err)), ResultError
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	pl, probs := in.inject(&pod, string(req.UID))
	if len(probs) > 0 {
		return deny(req.UID, http.StatusBadRequest, denyMessage(probs)), ResultDenied
	}
	patch, err := json.Marshal(pl.ops)
	if err != nil {
		return deny(req.UID, http.StatusInternalServerError, fmt.Sprintf("outrider: cannot encode the patch: %v", err)), ResultError
	}
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType, allow.Warnings = patch, &pt, pl.warnings
	return allow, ResultInjected
}

// reorder answers a pod that is injected already: unchanged, or with its sidecar
// moved back to where its sidecar order puts it when a webhook called after this
// one (a service mesh's injector, with reinvocationPolicy: IfNeeded) added init
// containers around it.
func (in *Injector) reorder(req *admissionv1.AdmissionRequest, shape *podShape, allow *admissionv1.AdmissionResponse) (*admissionv1.AdmissionResponse, string) {
	if len(precheck(len(req.Object.Raw), shape)) > 0 {
		return allow, ResultSkipped // never patched: its shape is past the limits
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return allow, ResultSkipped
	}
	ops := reorder(&pod)
	if len(ops) == 0 {
		return allow, ResultSkipped
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return deny(req.UID, http.StatusInternalServerError, fmt.Sprintf("outrider: cannot encode the patch: %v", err)), ResultError
	}
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	return allow, ResultReordered
}

// inject plans the injection into pod; salt makes the local Sentry key unique to the
// request.
func (in *Injector) inject(pod *corev1.Pod, salt string) (*plan, problems) {
	view, vk, probs := in.vaultK8sView(pod)
	if len(probs) > 0 {
		return nil, probs
	}
	o, probs := parseOptions(view, &in.defaults, vk)
	if len(probs) > 0 {
		return nil, vk.blame(probs)
	}
	key := sentryKey(pod, salt)
	if o.hasSentry() {
		// The upstream DSN, and so its project id, is known only to the sidecar.
		o.localDSN = fmt.Sprintf("http://%s@127.0.0.1:%d/0", key, SentryPort)
	}
	ac, probs := o.buildConfig(key)
	if len(probs) > 0 {
		return nil, vk.blame(probs)
	}
	pl, probs := buildPatch(pod, o, ac)
	if len(probs) > 0 {
		return nil, vk.blame(probs)
	}
	if probs := vk.finish(pod, o, pl); len(probs) > 0 {
		return nil, probs
	}
	return pl, nil
}

// sentryKey derives the public key of the sidecar's local Sentry endpoint from the
// pod and the admission request, so that Mutate stays a pure function while every
// pod gets its own key.
func sentryKey(pod *corev1.Pod, salt string) string {
	name := pod.Name
	if name == "" {
		name = pod.GenerateName
	}
	sum := sha256.Sum256([]byte("outrider sentry key\x00" + pod.Namespace + "\x00" + name + "\x00" + salt))
	return hex.EncodeToString(sum[:16])
}

// maxListedProblems bounds the problems a denial lists, so that its size does not
// grow with the pod's annotations.
const maxListedProblems = 20

func denyMessage(p problems) string {
	if len(p) == 1 {
		return "outrider: " + p[0]
	}
	listed := p
	more := ""
	if len(p) > maxListedProblems {
		listed = p[:maxListedProblems]
		more = fmt.Sprintf("\n- and %d more", len(p)-maxListedProblems)
	}
	return fmt.Sprintf("outrider: %d problems:\n- %s%s", len(p), strings.Join(listed, "\n- "), more)
}

func deny(uid types.UID, code int32, msg string) *admissionv1.AdmissionResponse {
	reason := metav1.StatusReasonBadRequest
	if code >= 500 {
		reason = metav1.StatusReasonInternalError
	}
	return &admissionv1.AdmissionResponse{
		UID:     uid,
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg},
	}
}
