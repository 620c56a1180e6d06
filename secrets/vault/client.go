package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/confval"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// Settings are what a Client needs from the agent besides its configuration.
type Settings struct {
	// Logger receives the client's logs; nil discards them. Tokens, secret_ids, JWTs
	// and secret data are never logged.
	Logger *slog.Logger
	// Audit receives an event for every login and token renewal or expiry; nil
	// discards them. Events never hold credentials.
	Audit audit.Sink
	// Metrics are shared by every client of the process; nil uses unregistered
	// metrics.
	Metrics *Metrics
	// WrapTransport, if set, wraps the HTTP transport that talks to Vault, below the
	// rate cap and the per-request timeout: it sees every request actually sent. For
	// tests and instrumentation.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Client is a Vault client: it logs in with the configured method, keeps its token
// alive (Run), and reads and writes secrets with a hard cap on its request rate.
//
// All methods are safe for concurrent use. A request that Vault refuses with
// "permission denied" because the token has expired or was revoked triggers one
// fresh login and one retry; concurrent callers share that login. A request denied
// by policy costs one token lookup, not a login, and fails with ErrPermissionDenied.
type Client struct {
	cfg     Config
	log     *slog.Logger
	audit   audit.Sink
	metrics *Metrics
	api     *api.Client
	base    *http.Transport
	sink    os.FileMode

	// loginMu serialises logins; mu guards the fields below it.
	loginMu sync.Mutex
	mu      sync.Mutex
	auth    *api.SecretAuth // the current token and its lease; nil before the first login
	gen     uint64          // incremented by every successful login
	// rejectedLogin is when the client last logged in because a token looked
	// rejected; see call.
	rejectedLogin time.Time
	// wrapToken is the last response-wrapping token unwrapped for the approle
	// secret_id, and secretID what it held: a wrapping token can be unwrapped once.
	wrapToken, secretID string

	loggedIn chan struct{} // signalled after each login, for Run
	// tokens counts the distinct tokens logged in with (Generation); relogged is
	// signalled when a login replaces the token (LoggedIn). Guarded by mu.
	tokens   uint64
	relogged chan struct{}

	mountsMu sync.Mutex
	mounts   map[string]mountInfo
}

// New builds a client. It applies the configuration's defaults, validates it, and
// makes no request: call Login (or Run, or any request, which logs in first).
func New(cfg Config, set Settings) (*Client, error) {
	cfg.ApplyDefaults()
	var p confval.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		log:      set.Logger,
		audit:    set.Audit,
		metrics:  set.Metrics,
		loggedIn: make(chan struct{}, 1),
		relogged: make(chan struct{}, 1),
		mounts:   map[string]mountInfo{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "vault")
	if c.audit == nil {
		c.audit = audit.Discard
	}
	if c.metrics == nil {
		c.metrics = NewMetrics(nil)
	}
	if cfg.TokenSink.Path != "" {
		c.sink, _ = ParseMode(cfg.TokenSink.Mode) // validated above
	}
	tlsCfg, err := cfg.TLS.Load()
	if err != nil {
		return nil, err
	}
	c.base = http.DefaultTransport.(*http.Transport).Clone()
	c.base.TLSClientConfig = tlsCfg
	c.base.MaxIdleConnsPerHost = 4
	var rt http.RoundTripper = c.base
	if set.WrapTransport != nil {
		rt = set.WrapTransport(rt)
	}
	apiCfg := &api.Config{
		Address: cfg.Address,
		HttpClient: &http.Client{
			Transport: &transport{next: rt, limiter: newLimiter(cfg.MaxRequestsPerSecond), timeout: cfg.Timeout, metrics: c.metrics},
			// The api package follows Vault's redirects itself.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		// Retries belong to the caller (with backoff, under the rate cap); the
		// per-request timeout is applied by the transport.
		MaxRetries: 0,
		Timeout:    0,
	}
	c.api, err = api.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.api.ClearToken() // NewClient picks up $VAULT_TOKEN; only the token method may use it
	if cfg.Namespace != "" {
		c.api.SetNamespace(cfg.Namespace)
	} else {
		c.api.ClearNamespace()
	}
	return c, nil
}

// Close releases idle connections. Call it after Run has returned; the client must
// not be used afterwards.
func (c *Client) Close() {
	c.base.CloseIdleConnections()
}

// generation returns the login generation: 0 before the first login.
func (c *Client) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// call runs fn with the current token, logging in first if nobody has yet. When
// Vault answers "permission denied" and the token turns out to be expired or revoked,
// it logs in again — once, and not at all if another caller already did since fn
// started — and runs fn again.
func (c *Client) call(ctx context.Context, fn func(context.Context) error) error {
	gen := c.generation()
	if gen == 0 {
		if err := c.relogin(ctx, 0, "first request"); err != nil {
			return err
		}
		gen = c.generation()
	}
	err := fn(ctx)
	if err == nil || !isPermissionDenied(err) {
		return err
	}
	if c.generation() == gen {
		// Vault says "permission denied" both to an expired or revoked token and to a
		// policy that does not allow the request. Only the first is cured by a new
		// login, and logging in for the second would mint a token per denied request:
		// ask Vault whether the token is still valid first.
		if !c.tokenRejected(ctx) || !c.allowRejectedLogin() {
			return err
		}
		if lerr := c.relogin(ctx, gen, "token rejected"); lerr != nil {
			return lerr
		}
	}
	return fn(ctx)
}

// rejectedLoginEvery bounds logins caused by a token that looks rejected. A token
// without the default policy cannot look itself up, so for it every policy denial
// looks like a rejected token; without this bound each denied request would mint a
// token (and spend an approle secret_id use).
const rejectedLoginEvery = time.Minute

// allowRejectedLogin reports whether a "token rejected" login may happen now, and
// records it when so.
func (c *Client) allowRejectedLogin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rejectedLogin.IsZero() && time.Since(c.rejectedLogin) < rejectedLoginEvery {
		return false
	}
	c.rejectedLogin = time.Now()
	return true
}

// tokenRejected reports whether Vault refuses the client's current token itself
// (lookup-self, which every token's default policy allows, is denied).
func (c *Client) tokenRejected(ctx context.Context) bool {
	_, err := c.raw(ctx, OpTokenLookup, http.MethodGet, "auth/token/lookup-self", c.api.Token(), nil)
	return isPermissionDenied(err)
}

// relogin logs in unless a login happened since generation gen.
func (c *Client) relogin(ctx context.Context, gen uint64, reason string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.generation() != gen {
		return nil
	}
	return c.loginLocked(ctx, reason)
}

// Read reads path. A path on a KV v2 mount (secret/app) is read from its data path
// (secret/data/app), with params such as {"version": {"3"}}, and the answer keeps
// Vault's shape: Data["data"] holds the secret, Data["metadata"] its metadata, and KV
// is set. A path that already has data/ after the mount is used as is. KV v1 and
// every other engine are read as they are. Mounts are looked up once per mount with
// sys/internal/ui/mounts and cached.
//
// A path with no secret, or a KV v2 version that was deleted or destroyed, gives an
// error wrapping ErrNotFound.
func (c *Client) Read(ctx context.Context, path string, params map[string][]string) (*Secret, error) {
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	var out *Secret
	err = c.call(ctx, func(ctx context.Context) error {
		m, err := c.mountOf(ctx, p)
		if err != nil {
			return err
		}
		readPath := p
		if m.kv == 2 {
			if readPath, err = kvDataPath(m.path, p); err != nil {
				return &Error{msg: err.Error()}
			}
		}
		sec, err := c.api.Logical().ReadWithDataWithContext(withOp(ctx, OpRead), readPath, params)
		if err != nil {
			return err
		}
		if sec == nil {
			return c.notFound(p, params)
		}
		out = fromAPI(sec)
		if m.kv == 2 {
			out.KV = kvInfo(m.path, sec.Data)
			if out.Data["data"] == nil {
				return &Error{kind: ErrNotFound, msg: fmt.Sprintf("secret at %s (version %d) was deleted or destroyed: write a new version, or undelete it", p, out.KV.Version)}
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.requestError(OpRead, p, err)
	}
	return out, nil
}

func (c *Client) notFound(path string, params map[string][]string) error {
	if v := params["version"]; len(v) > 0 {
		return &Error{kind: ErrNotFound, msg: fmt.Sprintf("secret not found at %s (version %s): check the path, mount and version", path, strings.Join(v, ","))}
	}
	return &Error{kind: ErrNotFound, msg: fmt.Sprintf("secret not found at %s: check the path and mount", path)}
}

// Write writes data to path with PUT — e.g. pki/issue/<role>, or a secrets engine
// that issues credentials on a write — and returns Vault's answer (an empty Secret
// when Vault answers with no body). The path is used as is: no KV v2 mapping.
func (c *Client) Write(ctx context.Context, path string, data map[string]any) (*Secret, error) {
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	var out *Secret
	err = c.call(ctx, func(ctx context.Context) error {
		sec, err := c.api.Logical().WriteWithContext(withOp(ctx, OpWrite), p, data)
		if err != nil {
			return err
		}
		out = fromAPI(sec)
		return nil
	})
	if err != nil {
		return nil, c.requestError(OpWrite, p, err)
	}
	return out, nil
}

// KVVersion returns the current version of the KV v2 secret at path (secret/app or
// secret/data/app) with one request to its metadata — the cheap way to poll for a
// change. The first call for a mount also looks the mount up (once). A path that is
// not on a KV v2 mount gives an error wrapping ErrNotKVv2.
func (c *Client) KVVersion(ctx context.Context, path string) (int, error) {
	p, err := cleanPath(path)
	if err != nil {
		return 0, err
	}
	var current int
	err = c.call(ctx, func(ctx context.Context) error {
		m, err := c.mountOf(ctx, p)
		if err != nil {
			return err
		}
		if m.kv != 2 {
			what := "on no KV mount"
			if m.kv == 1 {
				what = "on the KV v1 mount " + m.path
			} else if m.path != "" {
				what = fmt.Sprintf("on the %s mount %s", m.typ, m.path)
			}
			return &Error{kind: ErrNotKVv2, msg: fmt.Sprintf("%s is %s, not KV v2: it has no versions to poll; read it instead", p, what)}
		}
		mp, err := kvMetadataPath(m.path, p)
		if err != nil {
			return &Error{msg: err.Error()}
		}
		sec, err := c.api.Logical().ReadWithContext(withOp(ctx, OpKVVersion), mp)
		if err != nil {
			return err
		}
		if sec == nil {
			return c.notFound(p, nil)
		}
		v, ok := intOf(sec.Data["current_version"])
		if !ok {
			return &Error{msg: fmt.Sprintf("vault read KV metadata of %s: the answer has no current_version", p)}
		}
		current = v
		return nil
	})
	if err != nil {
		return 0, c.requestError(OpKVVersion, p, err)
	}
	return current, nil
}

// RenewLease asks Vault to extend leaseID by increment (0: the lease's default TTL;
// Vault may grant less, up to the lease's max TTL) and returns the new lease. A lease
// Vault will not renew gives an error wrapping ErrNotRenewable; an expired or revoked
// one, ErrNotFound.
func (c *Client) RenewLease(ctx context.Context, leaseID string, increment time.Duration) (*Secret, error) {
	if leaseID == "" {
		return nil, errors.New("vault renew lease: empty lease id")
	}
	var out *Secret
	err := c.call(ctx, func(ctx context.Context) error {
		sec, err := c.api.Sys().RenewWithContext(withOp(ctx, OpRenewLease), leaseID, int(increment/time.Second))
		if err != nil {
			return err
		}
		out = fromAPI(sec)
		return nil
	})
	if err != nil {
		return nil, c.leaseError(OpRenewLease, leaseID, err)
	}
	return out, nil
}

// RevokeLease revokes leaseID now (Vault deletes the credentials behind it). Revoking
// a lease that no longer exists succeeds.
func (c *Client) RevokeLease(ctx context.Context, leaseID string) error {
	if leaseID == "" {
		return errors.New("vault revoke lease: empty lease id")
	}
	err := c.call(ctx, func(ctx context.Context) error {
		return c.api.Sys().RevokeWithContext(withOp(ctx, OpRevokeLease), leaseID)
	})
	if err != nil {
		return c.leaseError(OpRevokeLease, leaseID, err)
	}
	return nil
}

func (c *Client) leaseError(op, leaseID string, err error) error {
	if re := responseError(err); re != nil && re.StatusCode == http.StatusBadRequest {
		said := vaultSaid(re)
		switch {
		case strings.Contains(said, "not renewable"):
			return &Error{kind: ErrNotRenewable, cause: err, msg: fmt.Sprintf("lease %s is not renewable (Vault: %s): fetch a new secret before it expires", leaseID, said)}
		case strings.Contains(said, "not found") || strings.Contains(said, "invalid lease"):
			return &Error{kind: ErrNotFound, cause: err, msg: fmt.Sprintf("lease %s not found (Vault: %s): it expired or was revoked; fetch a new secret", leaseID, said)}
		}
	}
	return c.requestError(op, leaseID, err)
}
