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
)

// maxAPIResponseBytes bounds what is read of an API server response.
const maxAPIResponseBytes = 4 << 20

// KubeClient is the little of the Kubernetes API the injector calls: reading and
// updating its MutatingWebhookConfiguration, with a bearer token over HTTPS, so that
// the injector needs no client library. The service account needs get and update on
// mutatingwebhookconfigurations (restrict it with resourceNames).
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

// errConflict is a 409 from the API server: the object changed since it was read.
var errConflict = errors.New("conflict")

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
		err = k.do(ctx, http.MethodPut, path+"?fieldManager=outrider-inject", body, nil)
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
		if resp.StatusCode == http.StatusConflict {
			return fmt.Errorf("%w: %w", errConflict, err)
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
