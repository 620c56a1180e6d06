package inject

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// In-cluster credentials, as Kubernetes mounts them in every pod whose service account
// token is automounted.
const (
	inClusterTokenFile = serviceAccountDir + "/token"
	inClusterCAFile    = serviceAccountDir + "/ca.crt"
	inClusterNSFile    = serviceAccountDir + "/namespace"
)

// Keys of the CA Secret (--ca-secret): the CA certificate and its private key, in PEM.
const (
	SecretCACertKey = "ca.crt"
	SecretCAKeyKey  = "ca.key"
)

// fieldManager names the injector's writes in managedFields.
const fieldManager = "outrider-inject"

// maxAPIResponseBytes bounds what is read of an API server response.
const maxAPIResponseBytes = 4 << 20

// KubeClient is the little of the Kubernetes API the injector calls: reading and
// updating its MutatingWebhookConfiguration and its CA Secret, with a bearer token
// over HTTPS, so that the injector needs no client library. The service account needs
// get and update on mutatingwebhookconfigurations (restrict it with resourceNames)
// and, for LoadOrCreateCA, get and update on the Secret (by resourceNames) and create
// on secrets in its namespace (create cannot be restricted by name).
type KubeClient struct {
	// Server is the API server's URL, such as https://10.96.0.1:443.
	Server string
	// TokenFile holds the bearer token; it is read for every request, since
	// projected service-account tokens rotate.
	TokenFile string
	// HTTP sends the requests; its transport trusts the API server's CA.
	HTTP *http.Client
}

// InClusterKubeClient returns a client for the API server of the cluster the process
// runs in, from KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and the pod's
// service-account token and CA.
func InClusterKubeClient() (*KubeClient, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not running in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset); pass --kube-server, --kube-token-file and --kube-ca-file")
	}
	return NewKubeClient("https://"+net.JoinHostPort(host, port), inClusterTokenFile, inClusterCAFile)
}

// NewKubeClient returns a client for server that authenticates with the token in
// tokenFile and trusts the CA certificates in caFile ("" for the system's roots).
func NewKubeClient(server, tokenFile, caFile string) (*KubeClient, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API server URL %q must be https://host:port", server)
	}
	if _, err := os.Stat(tokenFile); err != nil {
		return nil, fmt.Errorf("service-account token: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("API server CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("API server CA: %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &KubeClient{
		Server:    strings.TrimSuffix(server, "/"),
		TokenFile: tokenFile,
		HTTP:      &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}},
	}, nil
}

// InClusterNamespace returns the namespace of the pod the process runs in, from its
// service-account mount.
func InClusterNamespace() (string, error) {
	data, err := os.ReadFile(inClusterNSFile)
	if err != nil {
		return "", fmt.Errorf("the pod's namespace: %w; pass --namespace", err)
	}
	ns := strings.TrimSpace(string(data))
	if ns == "" {
		return "", fmt.Errorf("the pod's namespace: %s is empty; pass --namespace", inClusterNSFile)
	}
	return ns, nil
}

// errConflict is a 409 from the API server: the object changed since it was read, or
// (on create) it already exists.
var errConflict = errors.New("conflict")

// errNotFound is a 404 from the API server.
var errNotFound = errors.New("not found")

// CAOutcome says what LoadOrCreateCA did.
type CAOutcome string

// The outcomes of LoadOrCreateCA.
const (
	CAReused  CAOutcome = "reused"  // the Secret held a valid CA
	CACreated CAOutcome = "created" // there was no Secret: this call generated the CA and created it
	CAJoined  CAOutcome = "joined"  // another replica created or renewed the Secret first: its CA is used
	CARenewed CAOutcome = "renewed" // the CA was invalid or within renewBefore of expiry: a new one replaced it
)

// secretObject is the part of a Secret LoadOrCreateCA reads and writes.
type secretObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   secretMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data"`
}

type secretMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	ResourceVersion string            `json:"resourceVersion,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
}

// LoadOrCreateCA returns the CA kept in Secret namespace/name, shared by every
// injector replica:
//   - when the Secret holds a valid CA (SecretCACertKey and SecretCAKeyKey) that is
//     valid for more than renewBefore, it is used (CAReused);
//   - when there is no Secret, a new CA valid for validity is generated and the Secret
//     created (CACreated); if another replica created it in between (409), its CA is
//     used instead (CAJoined);
//   - when the CA is invalid or expires within renewBefore, a new one replaces it with
//     an update conditional on the resourceVersion read (CARenewed); if another replica
//     changed the Secret in between (409), its CA is used when valid (CAJoined).
//
// The old CA is not kept in the Secret: PatchCABundle keeps it in the caBundle until
// it expires, so replicas still serving with it stay trusted.
func (k *KubeClient) LoadOrCreateCA(ctx context.Context, namespace, name string, validity, renewBefore time.Duration, now time.Time) (*CA, CAOutcome, error) {
	if validity <= renewBefore {
		return nil, "", fmt.Errorf("CA validity %s must be longer than its renewal window %s", validity, renewBefore)
	}
	path := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/secrets"
	secretPath := path + "/" + url.PathEscape(name)
	what := "Secret " + namespace + "/" + name
	var cur secretObject
	err := k.do(ctx, http.MethodGet, secretPath, nil, &cur)
	switch {
	case errors.Is(err, errNotFound):
		ca, err := GenerateCA(validity, now)
		if err != nil {
			return nil, "", err
		}
		obj := secretObject{
			APIVersion: "v1", Kind: "Secret", Type: "Opaque",
			Metadata: secretMeta{Name: name, Namespace: namespace, Labels: map[string]string{
				"app.kubernetes.io/name":       "outrider-injector",
				"app.kubernetes.io/component":  "webhook-ca",
				"app.kubernetes.io/managed-by": fieldManager,
			}},
			Data: map[string][]byte{SecretCACertKey: ca.Cert, SecretCAKeyKey: ca.Key},
		}
		body, err := json.Marshal(obj)
		if err != nil {
			return nil, "", err
		}
		err = k.do(ctx, http.MethodPost, path+"?fieldManager="+fieldManager, body, nil)
		if err == nil {
			return ca, CACreated, nil
		}
		if !errors.Is(err, errConflict) {
			return nil, "", fmt.Errorf("create %s: %w", what, err)
		}
		return k.winnerCA(ctx, secretPath, what, now)
	case err != nil:
		return nil, "", fmt.Errorf("read %s: %w", what, err)
	}
	ca, perr := ParseCA(cur.Data[SecretCACertKey], cur.Data[SecretCAKeyKey])
	if perr == nil && now.Add(renewBefore).Before(ca.NotAfter()) {
		return ca, CAReused, nil
	}
	ca, err = GenerateCA(validity, now)
	if err != nil {
		return nil, "", err
	}
	if cur.Data == nil {
		cur.Data = map[string][]byte{}
	}
	cur.Data[SecretCACertKey], cur.Data[SecretCAKeyKey] = ca.Cert, ca.Key
	cur.APIVersion, cur.Kind = "v1", "Secret"
	body, err := json.Marshal(cur) // with the resourceVersion read: a conditional update
	if err != nil {
		return nil, "", err
	}
	err = k.do(ctx, http.MethodPut, secretPath+"?fieldManager="+fieldManager, body, nil)
	if err == nil {
		return ca, CARenewed, nil
	}
	if !errors.Is(err, errConflict) {
		return nil, "", fmt.Errorf("renew the CA in %s: %w", what, err)
	}
	return k.winnerCA(ctx, secretPath, what, now)
}

// winnerCA reads the CA another replica just wrote to the Secret.
func (k *KubeClient) winnerCA(ctx context.Context, secretPath, what string, now time.Time) (*CA, CAOutcome, error) {
	var won secretObject
	if err := k.do(ctx, http.MethodGet, secretPath, nil, &won); err != nil {
		return nil, "", fmt.Errorf("read %s after another replica wrote it: %w", what, err)
	}
	ca, err := ParseCA(won.Data[SecretCACertKey], won.Data[SecretCAKeyKey])
	if err != nil {
		return nil, "", fmt.Errorf("%s, written by another replica: %w", what, err)
	}
	if !now.Before(ca.NotAfter()) {
		return nil, "", fmt.Errorf("%s, written by another replica, holds a CA that expired at %s", what, ca.NotAfter().UTC().Format(time.RFC3339))
	}
	return ca, CAJoined, nil
}

// PatchCABundle adds ca to the caBundle of every webhook of the
// MutatingWebhookConfiguration name (MergeCABundle: older CAs of other replicas stay),
// retrying when another writer updated it in between. It returns how many webhooks
// it updated.
func (k *KubeClient) PatchCABundle(ctx context.Context, name string, ca []byte, now time.Time) (int, error) {
	path := "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + url.PathEscape(name)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		var obj map[string]any
		if err := k.do(ctx, http.MethodGet, path, nil, &obj); err != nil {
			return 0, fmt.Errorf("read MutatingWebhookConfiguration %s: %w", name, err)
		}
		hooks, _ := obj["webhooks"].([]any)
		if len(hooks) == 0 {
			return 0, fmt.Errorf("MutatingWebhookConfiguration %s has no webhooks", name)
		}
		for i, h := range hooks {
			hook, ok := h.(map[string]any)
			if !ok {
				return 0, fmt.Errorf("MutatingWebhookConfiguration %s: webhooks[%d] is not an object", name, i)
			}
			cc, _ := hook["clientConfig"].(map[string]any)
			if cc == nil {
				cc = map[string]any{}
				hook["clientConfig"] = cc
			}
			old, _ := cc["caBundle"].(string)
			oldPEM, _ := base64.StdEncoding.DecodeString(old)
			merged, err := MergeCABundle(oldPEM, ca, now)
			if err != nil {
				return 0, err
			}
			cc["caBundle"] = base64.StdEncoding.EncodeToString(merged)
		}
		body, err := json.Marshal(obj)
		if err != nil {
			return 0, err
		}
		err = k.do(ctx, http.MethodPut, path+"?fieldManager="+fieldManager, body, nil)
		if err == nil {
			return len(hooks), nil
		}
		if !errors.Is(err, errConflict) {
			return 0, fmt.Errorf("update MutatingWebhookConfiguration %s: %w", name, err)
		}
		lastErr = err
	}
	return 0, fmt.Errorf("update MutatingWebhookConfiguration %s: still conflicting after 5 attempts: %w", name, lastErr)
}

// do sends one request and decodes a JSON answer into out (when not nil).
func (k *KubeClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	token, err := os.ReadFile(k.TokenFile)
	if err != nil {
		return fmt.Errorf("service-account token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.Server+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponseBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var status struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &status)
		if status.Message == "" {
			status.Message = strings.TrimSpace(string(data[:min(len(data), 512)]))
		}
		err := fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, status.Message)
		switch resp.StatusCode {
		case http.StatusConflict:
			return fmt.Errorf("%w: %w", errConflict, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", errNotFound, err)
		}
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return nil
}
