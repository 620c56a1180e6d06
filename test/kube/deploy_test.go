package kube

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/outrider-dev/outrider/inject"
	"github.com/outrider-dev/outrider/internal/kubetest"
)

// What deploy/ names its objects.
const (
	injectorNamespace = "outrider-system"
	injectorName      = "outrider-injector"
	webhookName       = "inject.outrider.dev"
	// injectionLabel is the namespace label the webhook's namespaceSelector requires.
	injectionLabel = "outrider.dev/injection"
	tlsSecretName  = "outrider-injector-tls"
	// caSecretName is the self-signed overlay's Secret holding the CA shared by the
	// replicas.
	caSecretName = "outrider-injector-selfsigned-ca"
	// serviceAccountDir is where a pod's service-account token is mounted.
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// certManagerVersion is the cert-manager release whose CustomResourceDefinitions the
// cert-manager overlay is applied against (from the Go module, which ships them in
// deploy/crds).
const certManagerVersion = "v1.21.2"

// deployAppsNamespace is the only namespace the webhook configurations applied by
// TestDeploy select; it is labelled for injection.
const deployAppsNamespace = "outrider-deploy-apps"

// TestDeploy renders deploy/base and both overlays with kustomize, checks what the
// issue asks of them, applies each to the real API server (server-side apply with
// strict field validation: every object must be accepted) and reads every object
// back. The webhook configuration is applied with one change: its namespaceSelector
// also requires the namespace deployAppsNamespace, since the API server is shared.
// Overlays are applied on top of the base, like an upgrade from one to the other.
func TestDeploy(t *testing.T) {
	t.Parallel()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: deployAppsNamespace, Labels: map[string]string{injectionLabel: "enabled"},
	}}); err != nil {
		t.Fatal(err)
	}

	t.Run("base", func(t *testing.T) {
		m := build(t, "base")
		im := checkCommon(t, m)
		if got, want := m.kinds(), []string{"ConfigMap", "Deployment", "MutatingWebhookConfiguration", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"}; !slices.Equal(got, want) {
			t.Errorf("kinds = %v, want %v (the base grants no RBAC: the injector needs nothing from the API server)", got, want)
		}
		if v := volume(t, im.dep.Spec.Template.Spec, "tls"); v.Secret == nil || v.Secret.SecretName != tlsSecretName {
			t.Errorf("volume tls = %+v, want the Secret %s", v.VolumeSource, tlsSecretName)
		}
		if ports := egressPorts(im.netpols); len(ports) != 0 {
			t.Errorf("the base allows egress to %v, want none", ports)
		}
		applyAndReadBack(ctx, t, c, m.confineWebhooks(t, deployAppsNamespace))
		admitTemplate(ctx, t, c, im)
		checkAccess(ctx, t, c, nil, []authorizationv1.ResourceAttributes{
			{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: injectorName, Verb: "get"},
			{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: injectorName, Verb: "update"},
			{Resource: "secrets", Namespace: injectorNamespace, Verb: "get"},
			{Resource: "pods", Namespace: injectorNamespace, Verb: "list"},
		})
		checkFailurePolicy(ctx, t, c)
	})

	t.Run("self-signed", func(t *testing.T) {
		m := build(t, "overlays/self-signed")
		im := checkCommon(t, m)
		checkSelfSignedManifests(t, m, im)
		applyAndReadBack(ctx, t, c, m.confineWebhooks(t, deployAppsNamespace))
		admitTemplate(ctx, t, c, im)
		mwc := admissionregistrationv1.SchemeGroupVersion.Group
		checkAccess(ctx, t, c, []authorizationv1.ResourceAttributes{
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Name: injectorName, Verb: "get"},
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Name: injectorName, Verb: "update"},
			{Resource: "secrets", Namespace: injectorNamespace, Name: caSecretName, Verb: "get"},
			{Resource: "secrets", Namespace: injectorNamespace, Name: caSecretName, Verb: "update"},
			{Resource: "secrets", Namespace: injectorNamespace, Verb: "create"},
		}, []authorizationv1.ResourceAttributes{
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Verb: "list"},
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Verb: "watch"},
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Verb: "create"},
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Name: injectorName, Verb: "delete"},
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Name: "another-webhook", Verb: "get"},
			{Group: mwc, Resource: "mutatingwebhookconfigurations", Name: "another-webhook", Verb: "update"},
			{Group: mwc, Resource: "validatingwebhookconfigurations", Name: injectorName, Verb: "update"},
			{Resource: "secrets", Namespace: injectorNamespace, Verb: "get"},
			{Resource: "secrets", Namespace: injectorNamespace, Name: tlsSecretName, Verb: "get"},
			{Resource: "secrets", Namespace: injectorNamespace, Verb: "list"},
			{Resource: "secrets", Namespace: injectorNamespace, Verb: "watch"},
			{Resource: "secrets", Namespace: injectorNamespace, Name: caSecretName, Verb: "delete"},
			{Resource: "secrets", Namespace: injectorNamespace, Name: caSecretName, Verb: "patch"},
			{Resource: "secrets", Namespace: "default", Verb: "create"},
			{Resource: "secrets", Namespace: "default", Name: caSecretName, Verb: "get"},
			{Resource: "pods", Namespace: injectorNamespace, Verb: "list"},
		})
		bundle := checkSelfSignedRun(ctx, t, c, m, im)
		// An upgrade re-applies the manifests, which have no caBundle: the injector's
		// must stay.
		applyAndReadBack(ctx, t, c, m.confineWebhooks(t, deployAppsNamespace))
		if got := caBundle(ctx, t, c, im.mwc.Name); string(got) != string(bundle) {
			t.Errorf("re-applying the manifests changed the caBundle:\n%s\nwas:\n%s", got, bundle)
		}
	})

	t.Run("cert-manager", func(t *testing.T) {
		m := build(t, "overlays/cert-manager")
		im := checkCommon(t, m)
		checkCertManagerManifests(t, m, im)
		installCertManagerCRDs(ctx, t, c)
		applyAndReadBack(ctx, t, c, m.confineWebhooks(t, deployAppsNamespace))
		admitTemplate(ctx, t, c, im)
	})
}

// injectorManifests are the injector's objects of a rendered kustomization, typed.
type injectorManifests struct {
	dep     appsv1.Deployment
	sa      corev1.ServiceAccount
	svc     corev1.Service
	pdb     policyv1.PodDisruptionBudget
	mwc     admissionregistrationv1.MutatingWebhookConfiguration
	netpols []networkingv1.NetworkPolicy
	config  string // config.yaml of the injector's ConfigMap
}

// checkCommon checks what the base and every overlay must have: the Deployment,
// PodDisruptionBudget, Service, webhook configuration and network policy the issue
// asks for, consistent with each other.
func checkCommon(t *testing.T, m *manifests) *injectorManifests {
	t.Helper()
	im := &injectorManifests{}
	m.find(t, "Namespace", injectorNamespace)
	for _, o := range m.objects {
		switch o.GetKind() {
		case "Namespace", "MutatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding":
		default:
			if o.GetNamespace() != injectorNamespace {
				t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), injectorNamespace)
			}
		}
		if o.GetKind() == "NetworkPolicy" {
			var np networkingv1.NetworkPolicy
			convert(t, o, &np)
			im.netpols = append(im.netpols, np)
		}
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), injectorName+"-config") {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			im.config = data["config.yaml"]
		}
	}
	m.into(t, "Deployment", injectorName, &im.dep)
	m.into(t, "ServiceAccount", injectorName, &im.sa)
	m.into(t, "Service", injectorName, &im.svc)
	m.into(t, "PodDisruptionBudget", injectorName, &im.pdb)
	convert(t, m.one(t, "MutatingWebhookConfiguration"), &im.mwc)
	if im.config == "" {
		t.Errorf("no ConfigMap %s-config with a config.yaml", injectorName)
	}

	// Deployment.
	dep := im.dep
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment replicas = %v, want 2", dep.Spec.Replicas)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("Deployment rollingUpdate = %+v, want maxUnavailable 0: an upgrade must not take a replica away", ru)
	}
	if !selects(t, dep.Spec.Selector, podLabels) {
		t.Errorf("the Deployment's selector does not select its pod template")
	}
	spec := dep.Spec.Template.Spec
	if spec.ServiceAccountName != im.sa.Name {
		t.Errorf("serviceAccountName = %q, want %s", spec.ServiceAccountName, im.sa.Name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("the pod automounts a service-account token; the serving container needs none")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot, runAsUser 65532, seccompProfile RuntimeDefault", psc)
	}
	checkAntiAffinity(t, spec.Affinity, podLabels)
	for _, ctr := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		checkContainerSecurity(t, ctr)
		checkResources(t, ctr)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1 (the injector)", len(spec.Containers))
	}
	ctr := spec.Containers[0]
	if len(ctr.Command) != 0 || len(ctr.Args) == 0 || ctr.Args[0] != "inject" {
		t.Errorf("container %s runs %q %q, want the image's entrypoint with args inject ...", ctr.Name, ctr.Command, ctr.Args)
	}
	checkGOMEMLIMIT(t, ctr)
	port := containerPort(t, ctr, "https")
	for name, p := range map[string]*corev1.Probe{"readinessProbe": ctr.ReadinessProbe, "livenessProbe": ctr.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Scheme != corev1.URISchemeHTTPS ||
			(p.HTTPGet.Port != intstr.FromString("https") && p.HTTPGet.Port != intstr.FromInt32(port)) {
			t.Errorf("%s = %+v, want GET /healthz over HTTPS on port https", name, p)
		}
	}
	if listen := flagValue(ctr.Args, "--listen"); !strings.HasSuffix(listen, fmt.Sprintf(":%d", port)) {
		t.Errorf("--listen=%q does not serve the container port %d", listen, port)
	}
	for _, mnt := range ctr.VolumeMounts {
		if mnt.MountPath == serviceAccountDir {
			t.Errorf("the serving container mounts a service-account token (%s); it needs none", mnt.Name)
		}
	}
	if tls := mountPath(t, ctr, "tls"); flagValue(ctr.Args, "--tls-cert") != tls+"/tls.crt" || flagValue(ctr.Args, "--tls-key") != tls+"/tls.key" {
		t.Errorf("--tls-cert=%q --tls-key=%q, want the files of the tls volume at %s", flagValue(ctr.Args, "--tls-cert"), flagValue(ctr.Args, "--tls-key"), tls)
	}

	// PodDisruptionBudget.
	if mn := im.pdb.Spec.MinAvailable; mn == nil || mn.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want 1", mn)
	}
	if !selects(t, im.pdb.Spec.Selector, podLabels) {
		t.Errorf("the PodDisruptionBudget does not select the injector's pods")
	}

	// Service.
	if !labels.SelectorFromSet(im.svc.Spec.Selector).Matches(podLabels) || len(im.svc.Spec.Selector) == 0 {
		t.Errorf("the Service's selector %v does not select the injector's pods", im.svc.Spec.Selector)
	}
	if len(im.svc.Spec.Ports) != 1 || im.svc.Spec.Ports[0].Port != 443 ||
		(im.svc.Spec.Ports[0].TargetPort != intstr.FromString("https") && im.svc.Spec.Ports[0].TargetPort != intstr.FromInt32(port)) {
		t.Errorf("Service ports = %+v, want 443 to the container port https", im.svc.Spec.Ports)
	}

	checkWebhookConfiguration(t, im, podLabels)

	// NetworkPolicy: ingress to the webhook port only.
	var ingress []networkingv1.NetworkPolicyIngressRule
	egressIsolated := false
	for _, np := range im.netpols {
		if !selects(t, &np.Spec.PodSelector, podLabels) {
			continue
		}
		ingress = append(ingress, np.Spec.Ingress...)
		egressIsolated = egressIsolated || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	}
	if !egressIsolated {
		t.Errorf("no NetworkPolicy isolates the injector's egress (policyTypes: [Egress])")
	}
	if len(ingress) == 0 {
		t.Errorf("no NetworkPolicy admits ingress to the injector's pods")
	}
	for _, r := range ingress {
		if len(r.Ports) != 1 || r.Ports[0].Port == nil ||
			(*r.Ports[0].Port != intstr.FromString("https") && *r.Ports[0].Port != intstr.FromInt32(port)) {
			t.Errorf("NetworkPolicy ingress rule %+v admits more than the webhook port", r)
		}
	}
	return im
}

// checkWebhookConfiguration checks the MutatingWebhookConfiguration against the
// Service and the injector's pods.
func checkWebhookConfiguration(t *testing.T, im *injectorManifests, podLabels labels.Set) {
	t.Helper()
	if len(im.mwc.Webhooks) != 1 {
		t.Fatalf("MutatingWebhookConfiguration %s has %d webhooks, want 1", im.mwc.Name, len(im.mwc.Webhooks))
	}
	wh := im.mwc.Webhooks[0]
	if wh.Name != webhookName {
		t.Errorf("webhook name = %q, want %s", wh.Name, webhookName)
	}
	if s := wh.ClientConfig.Service; s == nil || s.Name != im.svc.Name || s.Namespace != im.svc.Namespace ||
		s.Path == nil || *s.Path != "/mutate" || s.Port == nil || *s.Port != im.svc.Spec.Ports[0].Port || wh.ClientConfig.URL != nil {
		t.Errorf("clientConfig = %+v, want service %s/%s port %d path /mutate", wh.ClientConfig, im.svc.Namespace, im.svc.Name, im.svc.Spec.Ports[0].Port)
	}
	if !slices.Equal(wh.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("admissionReviewVersions = %v, want [v1]", wh.AdmissionReviewVersions)
	}
	if wh.SideEffects == nil || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects = %v, want None", wh.SideEffects)
	}
	if wh.TimeoutSeconds == nil || *wh.TimeoutSeconds != 5 {
		t.Errorf("timeoutSeconds = %v, want 5", wh.TimeoutSeconds)
	}
	if wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy = %v, want Fail (deploy/README.md explains why)", wh.FailurePolicy)
	}
	if wh.ReinvocationPolicy == nil || *wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("reinvocationPolicy = %v, want IfNeeded", wh.ReinvocationPolicy)
	}
	if len(wh.Rules) != 1 || !slices.Equal(wh.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
		!slices.Equal(wh.Rules[0].APIGroups, []string{""}) || !slices.Equal(wh.Rules[0].Resources, []string{"pods"}) {
		t.Errorf("rules = %+v, want CREATE of core pods only", wh.Rules)
	}
	if !selects(t, wh.NamespaceSelector, labels.Set{injectionLabel: "enabled"}) || selects(t, wh.NamespaceSelector, labels.Set{}) ||
		selects(t, wh.NamespaceSelector, labels.Set{injectionLabel: "disabled"}) {
		t.Errorf("namespaceSelector %v must select exactly the namespaces labelled %s=enabled", wh.NamespaceSelector, injectionLabel)
	}
	if selects(t, wh.ObjectSelector, podLabels) {
		t.Errorf("objectSelector %v selects the injector's own pods", wh.ObjectSelector)
	}
	if !selects(t, wh.ObjectSelector, labels.Set{"app.kubernetes.io/name": "web"}) || !selects(t, wh.ObjectSelector, labels.Set{}) {
		t.Errorf("objectSelector %v must select application pods", wh.ObjectSelector)
	}
}

// checkSelfSignedManifests checks the self-signed overlay: an init container that runs
// `outrider inject --self-signed` into the volume the server reads, with the only
// API credentials of the pod, and RBAC limited to the webhook configuration.
func checkSelfSignedManifests(t *testing.T, m *manifests, im *injectorManifests) {
	t.Helper()
	spec := im.dep.Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("the pod has %d init containers, want 1 (the certificates)", len(spec.InitContainers))
	}
	ic := spec.InitContainers[0]
	for _, want := range []string{"inject", "--self-signed"} {
		if !slices.Contains(ic.Args, want) {
			t.Errorf("init container args %q lack %s", ic.Args, want)
		}
	}
	tlsDir := mountPath(t, spec.Containers[0], "tls")
	if got := flagValue(ic.Args, "--out-dir"); got != tlsDir || mountPath(t, ic, "tls") != tlsDir {
		t.Errorf("init container writes to --out-dir=%q, want the tls volume the server reads at %s", got, tlsDir)
	}
	if got := flagValue(ic.Args, "--service"); got != im.svc.Name {
		t.Errorf("--service=%q, want %s", got, im.svc.Name)
	}
	if got := flagValue(ic.Args, "--webhook-config"); got != im.mwc.Name {
		t.Errorf("--webhook-config=%q, want %s", got, im.mwc.Name)
	}
	if got := flagValue(ic.Args, "--ca-secret"); got != caSecretName {
		t.Errorf("--ca-secret=%q, want %s (one CA shared by the replicas)", got, caSecretName)
	}
	if v := volume(t, spec, "tls"); v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.Secret != nil {
		t.Errorf("volume tls = %+v, want an in-memory emptyDir", v.VolumeSource)
	}
	if mountPath(t, ic, "api-token") != serviceAccountDir {
		t.Errorf("the init container has no service-account token at %s", serviceAccountDir)
	}

	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	m.into(t, "ClusterRole", injectorName+"-cabundle", &role)
	m.into(t, "ClusterRoleBinding", injectorName+"-cabundle", &binding)
	want := []rbacv1.PolicyRule{{
		APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
		ResourceNames: []string{im.mwc.Name}, Verbs: []string{"get", "update"},
	}}
	if js, wjs := mustJSON(t, role.Rules), mustJSON(t, want); js != wjs {
		t.Errorf("ClusterRole rules = %s, want %s", js, wjs)
	}
	if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != im.sa.Name || binding.Subjects[0].Namespace != im.sa.Namespace {
		t.Errorf("ClusterRoleBinding = %+v %+v, want the ClusterRole bound to ServiceAccount %s/%s only", binding.RoleRef, binding.Subjects, im.sa.Namespace, im.sa.Name)
	}
	var caRole rbacv1.Role
	var caBinding rbacv1.RoleBinding
	m.into(t, "Role", caSecretName, &caRole)
	m.into(t, "RoleBinding", caSecretName, &caBinding)
	wantCA := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{caSecretName}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}
	if js, wjs := mustJSON(t, caRole.Rules), mustJSON(t, wantCA); js != wjs || caRole.Namespace != im.sa.Namespace {
		t.Errorf("Role %s/%s rules = %s, want %s in %s", caRole.Namespace, caRole.Name, js, wjs, im.sa.Namespace)
	}
	if caBinding.RoleRef.Kind != "Role" || caBinding.RoleRef.Name != caRole.Name || caBinding.Namespace != caRole.Namespace || len(caBinding.Subjects) != 1 ||
		caBinding.Subjects[0].Kind != "ServiceAccount" || caBinding.Subjects[0].Name != im.sa.Name || caBinding.Subjects[0].Namespace != im.sa.Namespace {
		t.Errorf("RoleBinding = %+v %+v, want the Role bound to ServiceAccount %s/%s only", caBinding.RoleRef, caBinding.Subjects, im.sa.Namespace, im.sa.Name)
	}
	ports := egressPorts(im.netpols)
	slices.Sort(ports)
	if !slices.Equal(ports, []string{"TCP/443", "TCP/6443"}) {
		t.Errorf("egress ports = %v, want the API server's TCP/443 and TCP/6443 only", ports)
	}
}

// checkCertManagerManifests checks the cert-manager overlay: the webhook's caBundle is
// injected from the Certificate whose Secret the injector serves, issued for the
// Service's name by a CA.
func checkCertManagerManifests(t *testing.T, m *manifests, im *injectorManifests) {
	t.Helper()
	from := im.mwc.Annotations["cert-manager.io/inject-ca-from"]
	ns, name, ok := strings.Cut(from, "/")
	if !ok {
		t.Fatalf("annotation cert-manager.io/inject-ca-from = %q, want <namespace>/<certificate>", from)
	}
	cert := m.find(t, "Certificate", name)
	if cert.GetNamespace() != ns {
		t.Errorf("inject-ca-from names %s, but Certificate %s is in %s", from, name, cert.GetNamespace())
	}
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	if v := volume(t, im.dep.Spec.Template.Spec, "tls"); v.Secret == nil || v.Secret.SecretName != secret {
		t.Errorf("the injector serves volume %+v, not the Secret %s of Certificate %s", v.VolumeSource, secret, name)
	}
	dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if svcName := im.svc.Name + "." + im.svc.Namespace + ".svc"; !slices.Contains(dnsNames, svcName) {
		t.Errorf("Certificate %s dnsNames = %v, want %s (the name the API server checks)", name, dnsNames, svcName)
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	caSecret, _, _ := unstructured.NestedString(m.find(t, "Issuer", issuer).Object, "spec", "ca", "secretName")
	if caSecret == "" {
		t.Fatalf("Issuer %s of the serving certificate is not a CA issuer", issuer)
	}
	var caCert *unstructured.Unstructured
	for _, o := range m.objects {
		if s, _, _ := unstructured.NestedString(o.Object, "spec", "secretName"); o.GetKind() == "Certificate" && s == caSecret {
			caCert = o
		}
	}
	if caCert == nil {
		t.Fatalf("the CA issuer's Secret %s comes from no Certificate", caSecret)
	}
	if isCA, _, _ := unstructured.NestedBool(caCert.Object, "spec", "isCA"); !isCA {
		t.Errorf("Certificate %s of the CA issuer's Secret %s is not isCA: true", caCert.GetName(), caSecret)
	}
}

// applyAndReadBack applies the manifests and checks that the API server stored every
// field of every object as applied.
func applyAndReadBack(ctx context.Context, t *testing.T, c *kubetest.Cluster, m *manifests) {
	t.Helper()
	if err := c.Apply(ctx, m.yaml); err != nil {
		t.Fatalf("the API server refused the manifests: %v", err)
	}
	for _, o := range m.objects {
		path, err := c.Path(ctx, o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName())
		if err != nil {
			t.Fatal(err)
		}
		var stored map[string]any
		if err := c.Get(ctx, path, &stored); err != nil {
			t.Errorf("read back %s %s: %v", o.GetKind(), o.GetName(), err)
			continue
		}
		for _, d := range subset(o.GetKind()+"/"+o.GetName(), o.Object, stored) {
			t.Errorf("%s", d)
		}
	}
}

// admitTemplate creates (dry run) a pod from the Deployment's template in the
// injector's namespace, where the restricted Pod Security Standard is enforced: the
// API server must accept it. A copy without runAsNonRoot must be refused, which
// shows that the standard is enforced there.
func admitTemplate(ctx context.Context, t *testing.T, c *kubetest.Cluster, im *injectorManifests) {
	t.Helper()
	ns := im.dep.Namespace
	var nsObj corev1.Namespace
	if err := c.Get(ctx, "/api/v1/namespaces/"+ns, &nsObj); err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s enforces Pod Security %q, want restricted", ns, nsObj.Labels["pod-security.kubernetes.io/enforce"])
	}
	pod := func() *corev1.Pod {
		tmpl := im.dep.Spec.Template.DeepCopy()
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: im.dep.Name + "-", Namespace: ns, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
			Spec:       tmpl.Spec,
		}
	}
	path := "/api/v1/namespaces/" + ns + "/pods?dryRun=All&fieldValidation=Strict"
	if err := c.Do(ctx, http.MethodPost, path, pod(), nil); err != nil {
		t.Errorf("a pod of the injector's Deployment is refused: %v", err)
	}
	bad := pod()
	bad.Spec.SecurityContext.RunAsNonRoot = nil
	for i := range bad.Spec.Containers {
		bad.Spec.Containers[i].SecurityContext.RunAsNonRoot = nil
	}
	for i := range bad.Spec.InitContainers {
		bad.Spec.InitContainers[i].SecurityContext.RunAsNonRoot = nil
	}
	if err := c.Do(ctx, http.MethodPost, path, bad, nil); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a pod without runAsNonRoot in %s: %v, want a PodSecurity refusal", ns, err)
	}
}

// checkAccess asks the API server (SubjectAccessReview) what the injector's service
// account may do: every allowed request must be allowed, every denied one denied.
// Allowed ones are waited for, since the authorizer sees new bindings a little late.
func checkAccess(ctx context.Context, t *testing.T, c *kubetest.Cluster, allowed, denied []authorizationv1.ResourceAttributes) {
	t.Helper()
	review := func(ra authorizationv1.ResourceAttributes) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			ResourceAttributes: &ra,
			User:               "system:serviceaccount:" + injectorNamespace + ":" + injectorName,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + injectorNamespace, "system:authenticated"},
		}}
		if err := c.Create(ctx, sar); err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	}
	for _, ra := range allowed {
		eventually(t, 10*time.Second, fmt.Sprintf("allow %+v", ra), func() error {
			ok, err := review(ra)
			if err == nil && !ok {
				err = fmt.Errorf("denied")
			}
			return err
		})
	}
	for _, ra := range denied {
		ok, err := review(ra)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("the injector's service account may %s %s %s %q: more than it needs", ra.Verb, ra.Group, ra.Resource, ra.Name)
		}
	}
}

// checkFailurePolicy shows what failurePolicy: Fail does while no injector answers
// (the base's Service has no server behind it here): a pod created in an opted-in
// namespace is refused with the webhook's name, while the injector's own pods, which
// the objectSelector excludes, and pods of namespaces that did not opt in are not.
func checkFailurePolicy(ctx context.Context, t *testing.T, c *kubetest.Cluster) {
	t.Helper()
	pod := func(ns string, lbls map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns, Labels: lbls,
				Annotations: map[string]string{inject.AnnotationInject: "true"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
		}
	}
	dryRun := func(p *corev1.Pod) error {
		return c.Do(ctx, http.MethodPost, "/api/v1/namespaces/"+p.Namespace+"/pods?dryRun=All", p, nil)
	}
	eventually(t, 20*time.Second, "the unreachable webhook refuses opted-in pods", func() error {
		err := dryRun(pod(deployAppsNamespace, nil))
		if err == nil {
			return fmt.Errorf("pod admitted")
		}
		if !strings.Contains(err.Error(), `failed calling webhook "`+webhookName+`"`) {
			return fmt.Errorf("refused, but not by the webhook: %w", err)
		}
		return nil
	})
	if err := dryRun(pod(deployAppsNamespace, map[string]string{"app.kubernetes.io/name": injectorName})); err != nil {
		t.Errorf("an injector pod in an opted-in namespace is refused while the injector is down: %v", err)
	}
	if err := dryRun(pod("default", nil)); err != nil {
		t.Errorf("a pod of a namespace that did not opt in is refused: %v", err)
	}
}

// checkSelfSignedRun runs the init container of the self-signed overlay as the
// injector's service account, against the real API server, the way two replicas and
// then a new pod of the first one would (each with a new in-memory volume), and an
// init container restarting in its pod (same volume). All of them must serve a
// certificate of the one CA kept in the Secret, the caBundle must hold exactly that
// CA, and a webhook call to each replica's server must verify with the caBundle for the
// Service's name. It returns the resulting caBundle.
func checkSelfSignedRun(ctx context.Context, t *testing.T, c *kubetest.Cluster, m *manifests, im *injectorManifests) []byte {
	t.Helper()
	token, err := c.ServiceAccountToken(ctx, im.sa.Namespace, im.sa.Name)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	ic := im.dep.Spec.Template.Spec.InitContainers[0]
	initContainer := func(what, outDir string) (stdout, stderr string) {
		t.Helper()
		var args []string
		for _, a := range ic.Args {
			a = strings.ReplaceAll(a, "$(POD_NAMESPACE)", im.dep.Namespace)
			if strings.HasPrefix(a, "--out-dir=") {
				a = "--out-dir=" + outDir
			}
			args = append(args, a)
		}
		// The in-cluster client, with what a pod would have.
		args = append(args, "--kube-server="+c.URL(), "--kube-token-file="+tokenFile, "--kube-ca-file="+c.CAFile())
		stdout, stderr, err := runOutrider(ctx, args...)
		if err != nil {
			t.Fatalf("%s: the self-signed init container failed: %v", what, err)
		}
		return stdout, stderr
	}
	serviceName := im.svc.Name + "." + im.svc.Namespace + ".svc"

	replica1, replica2, replica1Again := t.TempDir(), t.TempDir(), t.TempDir()
	stdout, stderr := initContainer("first replica", replica1)
	if !strings.Contains(stderr, "created") {
		t.Errorf("the first replica did not create the CA Secret: %s", stderr)
	}
	if _, stderr := initContainer("second replica", replica2); !strings.Contains(stderr, "reused") {
		t.Errorf("the second replica did not reuse the CA Secret: %s", stderr)
	}
	initContainer("first replica's new pod", replica1Again)
	if _, stderr := initContainer("init container restart", replica1); !strings.Contains(stderr, "kept") {
		t.Errorf("a restarted init container did not keep its certificates: %s", stderr)
	}

	var secret corev1.Secret
	if err := c.Get(ctx, "/api/v1/namespaces/"+im.dep.Namespace+"/secrets/"+caSecretName, &secret); err != nil {
		t.Fatalf("the CA Secret: %v", err)
	}
	ca := secret.Data[inject.SecretCACertKey]
	if _, err := inject.ParseCA(ca, secret.Data[inject.SecretCAKeyKey]); err != nil {
		t.Fatalf("Secret %s: %v", caSecretName, err)
	}
	if got := strings.TrimSpace(stdout); got != base64.StdEncoding.EncodeToString(ca) {
		t.Errorf("printed caBundle %q, want the base64 of the Secret's CA", got)
	}
	bundle := caBundle(ctx, t, c, im.mwc.Name)
	if n := strings.Count(string(bundle), "BEGIN CERTIFICATE"); n != 1 || string(bundle) != string(ca) {
		t.Errorf("the caBundle holds %d certificates, want exactly the Secret's CA:\n%s", n, bundle)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatalf("MutatingWebhookConfiguration %s has no CA in its caBundle", im.mwc.Name)
	}

	configPath := filepath.Join(t.TempDir(), "config.yaml")
	writeInjectorConfig(t, m, configPath)
	for i, dir := range []string{replica1, replica2, replica1Again} {
		if data, err := os.ReadFile(filepath.Join(dir, inject.CAFileName)); err != nil || string(data) != string(ca) {
			t.Errorf("replica %d: %s is not the Secret's CA (%v)", i, inject.CAFileName, err)
		}
		data, err := os.ReadFile(filepath.Join(dir, inject.CertFileName))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s holds no PEM", inject.CertFileName)
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: serviceName, Roots: pool}); err != nil {
			t.Errorf("replica %d: the certificate does not verify for %s with the webhook's caBundle: %v", i, serviceName, err)
		}
		// What the API server does: call /mutate, trusting the caBundle only.
		listen := freeLoopbackAddr(t)
		args := injectorArgs(t, im.dep.Spec.Template.Spec.Containers[0].Args, map[string]string{
			"--config":   configPath,
			"--listen":   listen,
			"--tls-cert": filepath.Join(dir, inject.CertFileName),
			"--tls-key":  filepath.Join(dir, inject.KeyFileName),
		})
		inj := startInjector(t, args, listen, serviceName, bundle)
		review := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID:       types.UID(fmt.Sprintf("replica-%d", i)),
				Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
				Namespace: deployAppsNamespace,
				Operation: admissionv1.Create,
				Object: runtime.RawExtension{Raw: []byte(mustJSON(t, corev1.Pod{
					TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: deployAppsNamespace},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
				}))},
			},
		}
		resp, err := inj.client.Post(inj.base+"/mutate", "application/json", strings.NewReader(mustJSON(t, review)))
		if err != nil {
			t.Errorf("replica %d: webhook call with the caBundle: %v", i, err)
		} else {
			var out admissionv1.AdmissionReview
			err := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || out.Response == nil || out.Response.UID != review.Request.UID || !out.Response.Allowed {
				t.Errorf("replica %d: webhook answered %d %+v (%v), want the review allowed", i, resp.StatusCode, out.Response, err)
			}
		}
		if err := inj.stop(15 * time.Second); err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	return bundle
}

// freeLoopbackAddr returns 127.0.0.1:<a port that was free>.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// caBundle returns the caBundle of the only webhook of the named
// MutatingWebhookConfiguration.
func caBundle(ctx context.Context, t *testing.T, c *kubetest.Cluster, name string) []byte {
	t.Helper()
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := c.Get(ctx, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"+name, &mwc); err != nil {
		t.Fatal(err)
	}
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("MutatingWebhookConfiguration %s has %d webhooks, want 1", name, len(mwc.Webhooks))
	}
	return mwc.Webhooks[0].ClientConfig.CABundle
}

// installCertManagerCRDs applies cert-manager's own CustomResourceDefinitions of
// Certificate and Issuer, from its Go module, and waits until they are served.
func installCertManagerCRDs(ctx context.Context, t *testing.T, c *kubetest.Cluster) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@"+certManagerVersion)
	cmd.Dir = t.TempDir() // outside the module: go.mod is left alone
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("download cert-manager %s for its CRDs (from the Go module proxy, once per machine): %v %s %s", certManagerVersion, err, out, stderr)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v: %s", err, out)
	}
	for _, crd := range []string{"certificates", "issuers"} {
		data, err := os.ReadFile(filepath.Join(mod.Dir, "deploy", "crds", "cert-manager.io_"+crd+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, data); err != nil {
			t.Fatalf("apply cert-manager's %s CRD: %v", crd, err)
		}
		eventually(t, 30*time.Second, "CRD "+crd+".cert-manager.io established", func() error {
			var obj struct {
				Status struct {
					Conditions []metav1.Condition `json:"conditions"`
				} `json:"status"`
			}
			if err := c.Get(ctx, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+crd+".cert-manager.io", &obj); err != nil {
				return err
			}
			if !slices.ContainsFunc(obj.Status.Conditions, func(c metav1.Condition) bool {
				return c.Type == "Established" && c.Status == metav1.ConditionTrue
			}) {
				return fmt.Errorf("conditions %+v", obj.Status.Conditions)
			}
			return nil
		})
	}
}

func checkContainerSecurity(t *testing.T, ctr corev1.Container) {
	t.Helper()
	sc := ctr.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container %s securityContext = %+v, want non-root, read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault", ctr.Name, sc)
	}
}

// checkResources wants requests and a memory limit, and small ones.
func checkResources(t *testing.T, ctr corev1.Container) {
	t.Helper()
	r := ctr.Resources
	cpu, mem, limit := r.Requests[corev1.ResourceCPU], r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
	if cpu.IsZero() || mem.IsZero() || limit.IsZero() {
		t.Errorf("container %s resources = %+v, want cpu and memory requests and a memory limit", ctr.Name, r)
		return
	}
	if cpu.Cmp(resource.MustParse("100m")) > 0 || mem.Cmp(resource.MustParse("64Mi")) > 0 || limit.Cmp(resource.MustParse("256Mi")) > 0 {
		t.Errorf("container %s resources = %+v are not small", ctr.Name, r)
	}
}

// checkGOMEMLIMIT wants a soft heap limit below the container's memory limit, with
// room left for what is not heap.
func checkGOMEMLIMIT(t *testing.T, ctr corev1.Container) {
	t.Helper()
	for _, e := range ctr.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		limit := ctr.Resources.Limits[corev1.ResourceMemory]
		if err != nil || q.Value() <= 0 || q.Value() > limit.Value()*85/100 {
			t.Errorf("container %s: GOMEMLIMIT=%s, want a size of at most 85%% of the memory limit %s", ctr.Name, e.Value, limit.String())
		}
		return
	}
	t.Errorf("container %s sets no GOMEMLIMIT; without it the Go heap grows to the container's limit and is OOM-killed", ctr.Name)
}

func checkAntiAffinity(t *testing.T, a *corev1.Affinity, podLabels labels.Set) {
	t.Helper()
	if a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if term.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" && selects(t, term.PodAffinityTerm.LabelSelector, podLabels) {
				return
			}
		}
	}
	t.Errorf("affinity = %+v, want a preferred podAntiAffinity by kubernetes.io/hostname against the injector's pods", a)
}

// selects reports whether the label selector selects the labels.
func selects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return s.Matches(set)
}

func volume(t *testing.T, spec corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("the pod has no volume %s", name)
	return corev1.Volume{}
}

func mountPath(t *testing.T, ctr corev1.Container, volume string) string {
	t.Helper()
	for _, m := range ctr.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	t.Fatalf("container %s does not mount volume %s", ctr.Name, volume)
	return ""
}

func containerPort(t *testing.T, ctr corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range ctr.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %s", ctr.Name, name)
	return 0
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// egressPorts lists, as PROTOCOL/port, the ports egress rules open; "any" for a rule
// without ports.
func egressPorts(nps []networkingv1.NetworkPolicy) []string {
	var out []string
	for _, np := range nps {
		for _, r := range np.Spec.Egress {
			if len(r.Ports) == 0 {
				out = append(out, "any")
			}
			for _, p := range r.Ports {
				proto := corev1.ProtocolTCP
				if p.Protocol != nil {
					proto = *p.Protocol
				}
				out = append(out, fmt.Sprintf("%s/%s", proto, p.Port.String()))
			}
		}
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}
