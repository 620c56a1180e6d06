// Package kubetest runs a real etcd and kube-apiserver on 127.0.0.1 for end-to-end
// tests of the injector and of Vault's Kubernetes auth, and talks to the API server
// with plain REST, the k8s.io/api types and sigs.k8s.io/yaml (no client-go).
//
// The binaries are built by `make backends` (tools/backends/build.sh etcd
// kube-apiserver) into the outrider cache; when one is missing, Start fails the test
// with the command that builds it: integration tests never skip.
//
// # What runs, and what does not
//
// Only etcd and the API server run: there is no controller manager, scheduler or
// kubelet. Objects are validated, defaulted, admitted (mutating webhooks included) and
// stored, and tests read the stored objects back; nothing acts on them afterwards:
// Deployments and Jobs create no pods, pods stay Pending, a deleted namespace stays
// Terminating. The one controller duty the harness takes over is the service-account
// controller's: whenever it creates a Namespace (Create, Apply, ServiceListener,
// ServiceAccountToken), it also creates the namespace's "default" ServiceAccount, so
// that the ServiceAccount admission plugin accepts pods there and mounts their token
// as a real cluster does. Namespaces created with a raw Do call do not get one.
//
// The API server sees webhook configurations, Services and RBAC bindings through
// informers, a few milliseconds after they are stored: a test that registers a
// webhook repeats a dry-run create (Do with ?dryRun=All) until the webhook answers,
// within a deadline. TokenReviewerJWT waits for its own binding.
//
// # Safety and configuration
//
// Everything listens on 127.0.0.1, and the service network is ServiceCIDR, a loopback
// range: a webhook configured with clientConfig.service makes the API server dial the
// Service's ClusterIP (there is no kube-proxy), so with the default 10.0.0.0/24 a test
// would make it dial a private-range address. ServiceListener gives a test a listener
// on such a ClusterIP. Clients authenticate with a static admin token (group
// system:masters) and need no client certificate; authorization is Node,RBAC; the
// default admission plugins run, MutatingAdmissionWebhook among them; API priority
// and fairness is off (faster start). The serving certificate is issued by a CA the
// harness generates (CAFile, CAPEM), which can also issue certificates for test
// webhooks (ServingCert). Service-account tokens are signed with an RSA key pair
// generated in the cluster's directory; the issuer and default audience is Issuer.
//
// # Vault's Kubernetes auth against this API server
//
// Vault (which does not run in a pod here) verifies a login JWT by calling the
// TokenReview API with a reviewer token of its own. Configure it with
//
//	vault auth enable kubernetes
//	vault write auth/kubernetes/config \
//	    kubernetes_host=<Cluster.URL()> \
//	    kubernetes_ca_cert=@<Cluster.CAFile()> \
//	    token_reviewer_jwt=<Cluster.TokenReviewerJWT(ctx)> \
//	    disable_local_ca_jwt=true
//	vault write auth/kubernetes/role/<role> \
//	    bound_service_account_names=<sa> bound_service_account_namespaces=<ns> \
//	    policies=<policy> ttl=1h
//
// TokenReviewerJWT is a token of a service account bound to the system:auth-delegator
// ClusterRole (the right to create TokenReviews). The application then logs in at
// auth/kubernetes/login with role=<role> and jwt=ServiceAccountToken(ctx, ns, sa),
// a real token from the TokenRequest API. A role with an `audience` needs a token
// requested for that audience (ServiceAccountToken's audiences argument).
package kubetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outrider-dev/outrider/internal/backendtest"
)

// Pinned versions tools/backends/build.sh builds (from the tools modules in
// tools/backends/kube and tools/backends/kube/etcd).
const (
	// KubeVersion is the kube-apiserver's version; /version reports it.
	KubeVersion = "v1.31.4"
	// EtcdVersion is etcd's version.
	EtcdVersion = "v3.5.17"
)

// Environment variables that override the cached binaries' paths.
const (
	APIServerBinaryEnv = "OUTRIDER_KUBE_APISERVER_BIN"
	EtcdBinaryEnv      = "OUTRIDER_ETCD_BIN"
)

// Network and identity settings of every cluster.
const (
	// ServiceCIDR is the service network (--service-cluster-ip-range): a loopback
	// range, so that no Service ClusterIP the API server dials is a private address.
	ServiceCIDR = "127.0.100.0/24"
	// KubernetesServiceIP is the ClusterIP of default/kubernetes, the first address of
	// ServiceCIDR; the serving certificate covers it.
	KubernetesServiceIP = "127.0.100.1"
	// Issuer is the service-account token issuer and the API server's audience.
	Issuer = "https://kubernetes.default.svc.cluster.local"
	// AdminUser is the user name of Token(), a member of system:masters.
	AdminUser = "kubetest-admin"
)

// Timeouts of the servers' lifecycle.
const (
	// ReadyTimeout bounds how long Start waits for etcd and then the API server to be
	// ready (the API server runs its post-start hooks first: ~5-20 s on 2 busy cores).
	ReadyTimeout = 120 * time.Second
	// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
	StopGrace = 10 * time.Second
)

// APIServerBinary returns the path of kube-apiserver: $OUTRIDER_KUBE_APISERVER_BIN, or
// the one `make backends` cached (see backendtest.CacheDir).
func APIServerBinary() string {
	return backendtest.Binary(APIServerBinaryEnv, "kube-apiserver", KubeVersion)
}

// EtcdBinary returns the path of etcd: $OUTRIDER_ETCD_BIN, or the one `make backends`
// cached.
func EtcdBinary() string { return backendtest.Binary(EtcdBinaryEnv, "etcd", EtcdVersion) }

// Cluster is a running etcd and kube-apiserver. The embedded Client acts as the admin
// (Token); As gives clients acting as other identities. Its methods are safe for
// concurrent use; Stop must be called once all requests are done.
type Cluster struct {
	*Client

	// Dir holds etcd's data (etcd/), the certificates and keys (pki/), the token file
	// and both servers' logs.
	Dir string

	ca        *authority
	transport *http.Transport

	mu        sync.Mutex
	etcd      *process
	apiserver *process
}

// Start starts a cluster of the test's own under t.TempDir(), waits until the API
// server is ready and stops it when the test ends. It fails the test if a binary is
// not built or a server does not start, and logs the tail of both servers' logs when
// the test failed. Tests that share one cluster use Shared instead.
func Start(t testing.TB) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*ReadyTimeout+5*time.Second)
	defer cancel()
	c, err := StartIn(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("real kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("etcd log (%s):\n%s", c.EtcdLogPath(), tail(c.EtcdLogPath(), 20))
			t.Logf("kube-apiserver log (%s):\n%s", c.APIServerLogPath(), tail(c.APIServerLogPath(), 40))
		}
	})
	return c
}

// StartIn starts etcd and kube-apiserver on free 127.0.0.1 ports with everything
// they keep under dir, and waits until /readyz answers ok. It returns an error that
// says how to build the binaries when one is missing. Once it returns,
// default/kubernetes exists and so does the "default" ServiceAccount of the
// namespaces the API server creates (default, kube-system, kube-public,
// kube-node-lease). The caller stops the cluster.
func StartIn(ctx context.Context, dir string) (*Cluster, error) {
	for _, b := range []struct{ name, path, env string }{
		{"etcd " + EtcdVersion, EtcdBinary(), EtcdBinaryEnv},
		{"kube-apiserver " + KubeVersion, APIServerBinary(), APIServerBinaryEnv},
	} {
		if _, err := os.Stat(b.path); err != nil {
			return nil, fmt.Errorf("real %s not found at %s: run `make backends` (or tools/backends/build.sh etcd kube-apiserver) to build it once per machine, or set %s", b.name, b.path, b.env)
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	cr, err := writeCredentials(dir)
	if err != nil {
		return nil, err
	}
	ports, err := backendtest.FreePorts(3)
	if err != nil {
		return nil, fmt.Errorf("free ports for etcd and kube-apiserver: %w", err)
	}
	c := &Cluster{Dir: dir, ca: cr.ca}
	c.transport = newTransport(cr.ca.certPEM)
	c.Client = newClient(fmt.Sprintf("https://127.0.0.1:%d", ports[2]), cr.token, c.transport)
	if err := c.startEtcd(ctx, ports[0], ports[1]); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.startAPIServer(ctx, ports[0], ports[2]); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.bootstrap(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// bootstrap waits for what the API server creates by itself after /readyz (the
// default/kubernetes Service), then creates the default ServiceAccounts of the
// namespaces that exist from the start.
func (c *Cluster) bootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	for {
		err := c.Get(ctx, "/api/v1/namespaces/default/services/kubernetes", nil)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("default/kubernetes service not created: %w (last: %v); see %s", ctx.Err(), err, c.APIServerLogPath())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if err := c.ensureDefaultServiceAccount(ctx, ns); err != nil {
			return fmt.Errorf("create %s/default service account: %w", ns, err)
		}
	}
	return nil
}

// CAFile is the PEM file of the CA that issued the API server's serving certificate
// (and ServingCert's certificates).
func (c *Cluster) CAFile() string { return filepath.Join(c.Dir, "pki", "ca.crt") }

// CAPEM is the content of CAFile: a webhook configuration's caBundle when the webhook
// serves a ServingCert certificate, or Vault's kubernetes_ca_cert.
func (c *Cluster) CAPEM() []byte { return append([]byte(nil), c.ca.certPEM...) }

// ServingCert issues a serving certificate and its key (PEM, PKCS #8) for the given
// DNS names and IP addresses, signed by the cluster's CA. A webhook reached through a
// Service needs the name "<service>.<namespace>.svc", which the API server checks.
func (c *Cluster) ServingCert(hosts ...string) (certPEM, keyPEM []byte, err error) {
	return c.ca.issue(hosts)
}

// EtcdLogPath is the file etcd writes its log to.
func (c *Cluster) EtcdLogPath() string { return filepath.Join(c.Dir, "etcd.log") }

// APIServerLogPath is the file kube-apiserver writes its log to.
func (c *Cluster) APIServerLogPath() string { return filepath.Join(c.Dir, "kube-apiserver.log") }

func (c *Cluster) startEtcd(ctx context.Context, clientPort, peerPort int) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	args := []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=kubetest=" + peer,
		"--initial-cluster-state=new",
		"--initial-cluster-token=kubetest",
		// A test cluster lives for one test binary: durability is not worth the
		// fsync latency on a busy disk.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	p, err := startProcess("etcd", EtcdBinary(), args, c.Dir, c.EtcdLogPath())
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.etcd = p
	c.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	return p.waitReady(ctx, func(ctx context.Context) bool {
		body, code, err := get(ctx, hc, client+"/health")
		return err == nil && code == http.StatusOK && strings.Contains(body, `"health":"true"`)
	})
}

func (c *Cluster) startAPIServer(ctx context.Context, etcdPort, port int) error {
	pki := filepath.Join(c.Dir, "pki")
	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--cert-dir=" + pki,
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
		"--token-auth-file=" + filepath.Join(c.Dir, "tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=" + Issuer,
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--enable-priority-and-fairness=false",
		// The reconciler would write 127.0.0.1 into default/kubernetes's Endpoints,
		// which validation rejects (loopback) every 10 s; nothing here needs them.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}
	p, err := startProcess("kube-apiserver", APIServerBinary(), args, c.Dir, c.APIServerLogPath())
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.apiserver = p
	c.mu.Unlock()
	hc := c.HTTPClient()
	return p.waitReady(ctx, func(ctx context.Context) bool {
		body, code, err := get(ctx, hc, c.URL()+"/readyz")
		return err == nil && code == http.StatusOK && body == "ok"
	})
}

// Stop stops kube-apiserver and then etcd (SIGTERM, then SIGKILL after StopGrace), by
// their process IDs. The data stays in Dir. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() {
	c.mu.Lock()
	apiserver, etcd := c.apiserver, c.etcd
	c.apiserver, c.etcd = nil, nil
	c.mu.Unlock()
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	apiserver.stop()
	etcd.stop()
}

// Running reports whether both servers are running (started, not stopped, and not
// exited by themselves).
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apiserver.running() && c.etcd.running()
}

// process is one server process, its log file and the channel closed when it exits.
type process struct {
	name    string
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
	logPath string
}

func startProcess(name, bin string, args []string, dir, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s %s: %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan struct{}), logFile: logf, logPath: logPath}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// serverEnv is this process's environment without proxy settings (the API server
// would send webhook calls through a proxy) and without ETCD_* variables (etcd reads
// its flags from them).
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue
		}
		if strings.HasPrefix(k, "ETCD_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls ready every 100 ms until it reports true, the process exits, ctx
// ends or ReadyTimeout passes.
func (p *process) waitReady(ctx context.Context, ready func(context.Context) bool) error {
	deadline := time.NewTimer(ReadyTimeout)
	defer deadline.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited while starting:\n%s", p.name, tail(p.logPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be ready: %w; see %s", p.name, ctx.Err(), p.logPath)
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %s; see %s", p.name, ReadyTimeout, p.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, then SIGKILL after StopGrace, and waits for the exit. A nil
// process is a stopped one.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(StopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.logFile.Close()
}

func (p *process) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// get fetches url and returns the body (trimmed) and status code.
func get(ctx context.Context, hc *http.Client, url string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return strings.TrimSpace(string(data)), resp.StatusCode, err
}

// tail returns the last n lines of the file at path, or why it cannot.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dialer is the transports' dialer (loopback only, so a short connect timeout).
var dialer = &net.Dialer{Timeout: 5 * time.Second}
