package kubetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// requestTimeout bounds one request when the caller's context has no earlier deadline.
const requestTimeout = 60 * time.Second

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 20

// Client talks to the API server with one bearer token. A Cluster embeds the admin's;
// Cluster.As makes others. Its methods are safe for concurrent use.
type Client struct {
	url   string
	token string
	hc    *http.Client
	tr    http.RoundTripper
	disc  *discovery
	// admin does what a controller would (a namespace's default ServiceAccount) and
	// the discovery requests; for the admin client, itself.
	admin *Client
}

func newTransport(caPEM []byte) *http.Transport {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Transport{
		// Proxy stays nil: the API server is on loopback, never behind a proxy.
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

func newClient(baseURL, token string, tr *http.Transport) *Client {
	c := &Client{
		url:   baseURL,
		token: token,
		hc:    &http.Client{Transport: bearer{token: token, next: tr}, Timeout: requestTimeout},
		tr:    tr,
		disc:  &discovery{byGV: map[schema.GroupVersion][]metav1.APIResource{}},
	}
	c.admin = c
	return c
}

// As returns a client of the same API server that authenticates with token, e.g. a
// service-account token from ServiceAccountToken, to check what RBAC lets it do. Its
// setup helpers (ServiceAccountToken, TokenReviewerJWT, ServiceListener, and the
// default ServiceAccount of a namespace it creates) still act as the admin.
func (c *Client) As(token string) *Client {
	return &Client{
		url:   c.url,
		token: token,
		hc:    &http.Client{Transport: bearer{token: token, next: c.tr}, Timeout: requestTimeout},
		tr:    c.tr,
		disc:  c.disc,
		admin: c.admin,
	}
}

// bearer adds the Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

// URL is the API server's base URL, https://127.0.0.1:<port>.
func (c *Client) URL() string { return c.url }

// Token is the bearer token the client authenticates with; for a Cluster, the admin's
// (user AdminUser in group system:masters).
func (c *Client) Token() string { return c.token }

// HTTPClient returns an HTTP client that trusts the cluster's CA and sends Token() as
// a bearer token. It uses no proxy, and a request times out after 60 s (no watches).
func (c *Client) HTTPClient() *http.Client { return c.hc }

// StatusError is the API server's refusal of a request: the HTTP status code and the
// Status object it answered with (Status.Message is its error text, e.g. a webhook's
// denial or a validation error).
type StatusError struct {
	Method string
	Path   string
	Code   int
	Status metav1.Status
}

func (e *StatusError) Error() string {
	msg := e.Status.Message
	if msg == "" {
		msg = string(e.Status.Reason)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Code, http.StatusText(e.Code), msg)
}

// StatusReason returns the reason of the API server's refusal (e.g.
// metav1.StatusReasonNotFound, StatusReasonAlreadyExists, StatusReasonForbidden,
// StatusReasonInvalid) when err wraps a *StatusError, and "" otherwise.
func StatusReason(err error) metav1.StatusReason {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status.Reason
	}
	return ""
}

// Do sends a request to apiPath (e.g. /api/v1/namespaces/x/pods?dryRun=All) and
// decodes a successful answer's JSON into into, unless into is nil. body is nil (no
// body), a []byte sent as it is, or a value sent as JSON; PATCH bodies are JSON merge
// patches. An answer other than 2xx is returned as a *StatusError.
func (c *Client) Do(ctx context.Context, method, apiPath string, body, into any) error {
	var data []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode the %s %s body: %w", method, apiPath, err)
		}
	}
	ct := "application/json"
	if method == http.MethodPatch {
		ct = "application/merge-patch+json"
	}
	return c.do(ctx, method, apiPath, ct, data, into)
}

func (c *Client) do(ctx context.Context, method, apiPath, contentType string, body []byte, into any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+apiPath, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, apiPath, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, apiPath, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Method: method, Path: apiPath, Code: resp.StatusCode}
		if json.Unmarshal(data, &se.Status) != nil || se.Status.Kind != "Status" {
			se.Status = metav1.Status{Message: strings.TrimSpace(string(data))}
		}
		return se
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s %s: decode the answer into %T: %w", method, apiPath, into, err)
	}
	return nil
}

// Get reads the object (or list) at apiPath, e.g.
// /api/v1/namespaces/x/pods/y, into into.
func (c *Client) Get(ctx context.Context, apiPath string, into any) error {
	return c.Do(ctx, http.MethodGet, apiPath, nil, into)
}

// Delete deletes the object at apiPath. Without a controller manager, objects with
// finalizers (e.g. namespaces) stay in the terminating state.
func (c *Client) Delete(ctx context.Context, apiPath string) error {
	return c.Do(ctx, http.MethodDelete, apiPath, nil, nil)
}

// Create creates obj, a k8s.io/api type (its kind is looked up when TypeMeta is
// empty) or any runtime.Object with apiVersion and kind set (e.g. an
// unstructured.Unstructured), in its namespace ("default" for a namespaced kind
// without one), and replaces obj with what the API server stored (after defaulting
// and admission, webhooks included). Unknown fields are rejected. Creating a
// Namespace also creates its "default" ServiceAccount, as the controller manager
// would.
func (c *Client) Create(ctx context.Context, obj runtime.Object) error {
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return fmt.Errorf("kubetest: create %T: not an object with metadata", obj)
	}
	path, err := c.Path(ctx, gvk.GroupVersion().String(), gvk.Kind, m.GetNamespace(), "")
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", gvk.Kind, m.GetName(), err)
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("kubetest: create %T: want a non-nil pointer", obj)
	}
	stored := reflect.New(v.Elem().Type())
	if err := c.do(ctx, http.MethodPost, path+"?fieldValidation=Strict", "application/json", body, stored.Interface()); err != nil {
		return err
	}
	v.Elem().Set(stored.Elem())
	return c.afterCreate(ctx, gvk, m.GetName())
}

// afterCreate does what the controller manager would after an object was created:
// for a Namespace, create its "default" ServiceAccount.
func (c *Client) afterCreate(ctx context.Context, gvk schema.GroupVersionKind, name string) error {
	if gvk.Group == "" && gvk.Kind == "Namespace" {
		return c.admin.ensureDefaultServiceAccount(ctx, name)
	}
	return nil
}

// ensureDefaultServiceAccount creates namespace/default unless it exists. It retries
// briefly while the namespace is not yet visible to admission.
func (c *Client) ensureDefaultServiceAccount(ctx context.Context, namespace string) error {
	sa := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}
	path := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/serviceaccounts"
	var err error
	for range 100 {
		err = c.Do(ctx, http.MethodPost, path, sa, nil)
		if err == nil || StatusReason(err) == metav1.StatusReasonAlreadyExists {
			return nil
		}
		if StatusReason(err) != metav1.StatusReasonNotFound {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

// Path returns the REST path of an object (name set) or of the collection (name
// empty) of kind in apiVersion, e.g. Path(ctx, "apps/v1", "Deployment", "x", "web")
// is /apis/apps/v1/namespaces/x/deployments/web. The namespace is ignored for
// cluster-scoped kinds and defaults to "default" for namespaced ones. The mapping
// comes from the API server's discovery documents, so every kind it serves works.
func (c *Client) Path(ctx context.Context, apiVersion, kind, namespace, name string) (string, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return "", fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	res, err := c.disc.lookup(ctx, c.admin, gv, kind)
	if err != nil {
		return "", err
	}
	return resourcePath(gv, res, namespace, name), nil
}

func resourcePath(gv schema.GroupVersion, res metav1.APIResource, namespace, name string) string {
	var b strings.Builder
	if gv.Group == "" {
		b.WriteString("/api/" + gv.Version)
	} else {
		b.WriteString("/apis/" + gv.Group + "/" + gv.Version)
	}
	if res.Namespaced {
		if namespace == "" {
			namespace = "default"
		}
		b.WriteString("/namespaces/" + url.PathEscape(namespace))
	}
	b.WriteString("/" + res.Name)
	if name != "" {
		b.WriteString("/" + url.PathEscape(name))
	}
	return b.String()
}

// discovery caches the API server's resource lists by group and version.
type discovery struct {
	mu   sync.Mutex
	byGV map[schema.GroupVersion][]metav1.APIResource
}

// lookup returns the resource of kind in gv. A kind missing from the cached list is
// looked up again, since a CustomResourceDefinition may have added it.
func (d *discovery) lookup(ctx context.Context, admin *Client, gv schema.GroupVersion, kind string) (metav1.APIResource, error) {
	d.mu.Lock()
	list, cached := d.byGV[gv]
	d.mu.Unlock()
	if cached {
		if r, ok := findKind(list, kind); ok {
			return r, nil
		}
	}
	path := "/apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	var rl metav1.APIResourceList
	if err := admin.Get(ctx, path, &rl); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return metav1.APIResource{}, fmt.Errorf("apiVersion %s is not served by the API server (kube-apiserver %s)", gv, KubeVersion)
		}
		return metav1.APIResource{}, fmt.Errorf("discover the resources of %s: %w", gv, err)
	}
	d.mu.Lock()
	d.byGV[gv] = rl.APIResources
	d.mu.Unlock()
	if r, ok := findKind(rl.APIResources, kind); ok {
		return r, nil
	}
	return metav1.APIResource{}, fmt.Errorf("kind %s is not served by the API server in %s", kind, gv)
}

// findKind returns the resource (not a subresource like pods/status) of kind.
func findKind(list []metav1.APIResource, kind string) (metav1.APIResource, bool) {
	for _, r := range list {
		if r.Kind == kind && !strings.Contains(r.Name, "/") {
			return r, true
		}
	}
	return metav1.APIResource{}, false
}

// scheme knows the k8s.io/api types Create looks kinds up for.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme,
		admissionregistrationv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		authenticationv1.AddToScheme, authorizationv1.AddToScheme, coordinationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("kubetest scheme: %v", err))
		}
	}
	return s
}()

// kindOf is obj's group, version and kind: its TypeMeta, else the scheme's.
func kindOf(obj runtime.Object) (schema.GroupVersionKind, error) {
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" && gvk.Version != "" {
		return gvk, nil
	}
	kinds, _, err := scheme.ObjectKinds(obj)
	if err != nil || len(kinds) == 0 {
		return schema.GroupVersionKind{}, fmt.Errorf("kubetest: %T has no apiVersion and kind set, and kubetest does not know its kind: set its TypeMeta", obj)
	}
	return kinds[0], nil
}
