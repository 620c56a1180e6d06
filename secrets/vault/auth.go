package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/outrider-dev/outrider/internal/atomicfile"
	"github.com/outrider-dev/outrider/secrets/audit"
)

// Login authenticates now with the configured method and replaces the client's token.
// Its error wraps ErrAuth and names the method, mount and role, and what to check.
// Every login, successful or not, is an audit event.
func (c *Client) Login(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginLocked(ctx, "login")
}

// loginLocked logs in; loginMu must be held. reason says why, for the audit trail.
func (c *Client) loginLocked(ctx context.Context, reason string) error {
	start := time.Now()
	auth, err := c.authenticate(ctx)
	ev := audit.Event{
		Time:     time.Now(),
		Kind:     audit.KindAuth,
		Path:     c.loginPath(),
		Duration: time.Since(start),
		Detail:   c.authDetail() + " reason=" + reason,
	}
	if err != nil {
		c.metrics.logins.WithLabelValues(LoginFailure).Inc()
		ev.Outcome, ev.Error = "error", err.Error()
		c.audit.Record(ev)
		return err
	}
	c.api.SetToken(auth.ClientToken)
	c.mu.Lock()
	replaced := c.noteToken(auth)
	c.auth = auth
	c.gen++
	c.mu.Unlock()
	ttl := time.Duration(auth.LeaseDuration) * time.Second
	c.metrics.logins.WithLabelValues(LoginSuccess).Inc()
	c.metrics.tokenTTL.Set(ttl.Seconds())
	ev.Outcome, ev.TTL = "ok", ttl
	ev.Detail += fmt.Sprintf(" renewable=%t", auth.Renewable)
	c.audit.Record(ev)
	c.log.Info("vault login", "method", c.cfg.Auth.Method, "mount", c.loginPath(), "role", c.cfg.Auth.Role,
		"ttl", ttl, "renewable", auth.Renewable, "reason", reason)
	if c.cfg.TokenSink.Path != "" {
		c.writeSink(auth.ClientToken)
	}
	select {
	case c.loggedIn <- struct{}{}:
	default:
	}
	if replaced {
		c.signalRelogin()
	}
	return nil
}

// writeSink writes the token to the configured token sink. A failure does not fail
// the login — the client itself has its token — but is logged and audited.
func (c *Client) writeSink(token string) {
	_, err := atomicfile.Write(c.cfg.TokenSink.Path, []byte(token), atomicfile.Options{Mode: c.sink})
	if err == nil {
		return
	}
	msg := fmt.Sprintf("token_sink: %v; check that the directory of %s exists and is writable", err, c.cfg.TokenSink.Path)
	c.log.Error("vault token sink write failed", "path", c.cfg.TokenSink.Path, "error", msg)
	c.audit.Record(audit.Event{Time: time.Now(), Kind: audit.KindFailure, Path: c.cfg.TokenSink.Path, Outcome: "error", Error: msg, Detail: "token sink"})
}

func (c *Client) loginPath() string {
	if c.cfg.Auth.Method == MethodToken {
		return "auth/token/lookup-self"
	}
	return "auth/" + c.cfg.Auth.MountPath + "/login"
}

// authDetail describes the auth configuration for audit events.
func (c *Client) authDetail() string {
	a := c.cfg.Auth
	if a.Method == MethodToken {
		return "method=token"
	}
	d := "method=" + a.Method + " mount=auth/" + a.MountPath
	if a.Role != "" {
		d += " role=" + a.Role
	}
	return d
}

// authDesc names where the client's token comes from, for error messages.
func (c *Client) authDesc() string {
	a := c.cfg.Auth
	switch {
	case a.Method == MethodToken && a.TokenFile != "":
		return "auth.token_file " + a.TokenFile
	case a.Method == MethodToken:
		return "the configured token (auth.token or $VAULT_TOKEN)"
	case a.Role != "":
		return fmt.Sprintf("%s login at auth/%s (role %q)", a.Method, a.MountPath, a.Role)
	default:
		return fmt.Sprintf("%s login at auth/%s", a.Method, a.MountPath)
	}
}

// loginDesc names the login attempt, for error messages.
func (c *Client) loginDesc() string {
	if c.cfg.Auth.Method == MethodToken {
		return "token lookup for " + c.authDesc()
	}
	return c.authDesc()
}

// authenticate runs the configured method and returns the new token's auth data.
func (c *Client) authenticate(ctx context.Context) (*api.SecretAuth, error) {
	a := c.cfg.Auth
	switch a.Method {
	case MethodKubernetes, MethodJWT:
		jwt, err := readCredential("auth.token_path", a.TokenPath)
		if err != nil {
			return nil, c.credentialError(err)
		}
		data := map[string]any{"jwt": jwt}
		if a.Role != "" {
			data["role"] = a.Role
		}
		return c.loginWrite(ctx, data)
	case MethodAppRole:
		roleID, err := readCredential("auth.role_id_file", a.RoleIDFile)
		if err != nil {
			return nil, c.credentialError(err)
		}
		data := map[string]any{"role_id": roleID}
		if a.SecretIDFile != "" {
			var secretID string
			if a.SecretIDWrapped {
				secretID, err = c.unwrapSecretID(ctx)
			} else {
				secretID, err = readCredential("auth.secret_id_file", a.SecretIDFile)
				err = c.credentialError(err)
			}
			if err != nil {
				return nil, err
			}
			data["secret_id"] = secretID
		}
		return c.loginWrite(ctx, data)
	case MethodToken:
		return c.lookupToken(ctx)
	}
	return nil, &Error{kind: ErrAuth, msg: fmt.Sprintf("vault auth failed: unknown method %q", a.Method)}
}

// readCredential reads a credential file; the error names the field and the file,
// never the content.
func readCredential(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("%s: cannot read %s: %v", field, path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty", field, path)
	}
	return v, nil
}

func (c *Client) credentialError(err error) error {
	if err == nil {
		return nil
	}
	return &Error{kind: ErrAuth, cause: err, msg: fmt.Sprintf("vault auth failed: %s login: %v", c.cfg.Auth.Method, err)}
}

// raw sends a request with token instead of the client's own ("" for none): logins,
// unwrapping and token lookups carry their own credential or none. It goes through a
// copy of the api client that shares the transport (so the rate cap) and headers
// (so the namespace). A GET of a missing path returns nil, nil.
func (c *Client) raw(ctx context.Context, op, method, path, token string, body map[string]any) (*api.Secret, error) {
	cl, err := c.api.CloneWithHeaders()
	if err != nil {
		return nil, err
	}
	cl.SetToken(token)
	ctx = withOp(ctx, op)
	if method == http.MethodGet {
		return cl.Logical().ReadWithContext(ctx, path)
	}
	return cl.Logical().WriteWithContext(ctx, path, body)
}

func (c *Client) loginWrite(ctx context.Context, data map[string]any) (*api.SecretAuth, error) {
	sec, err := c.raw(ctx, OpLogin, http.MethodPut, c.loginPath(), "", data)
	if err != nil {
		return nil, c.loginError(err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, &Error{kind: ErrAuth, msg: fmt.Sprintf("vault auth failed: %s answered without a token; check that auth/%s is a %s auth method", c.loginPath(), c.cfg.Auth.MountPath, c.cfg.Auth.Method)}
	}
	return sec.Auth, nil
}

// lookupToken validates the token method's token with lookup-self and returns its
// TTL and renewability.
func (c *Client) lookupToken(ctx context.Context) (*api.SecretAuth, error) {
	a := c.cfg.Auth
	token := a.Token.Reveal()
	if a.TokenFile != "" {
		var err error
		if token, err = readCredential("auth.token_file", a.TokenFile); err != nil {
			return nil, c.credentialError(err)
		}
	}
	sec, err := c.raw(ctx, OpTokenLookup, http.MethodGet, "auth/token/lookup-self", token, nil)
	if err != nil {
		return nil, c.loginError(err)
	}
	if sec == nil {
		return nil, &Error{kind: ErrAuth, msg: "vault auth failed: auth/token/lookup-self answered nothing; check address"}
	}
	ttl, err := sec.TokenTTL()
	if err != nil {
		return nil, &Error{kind: ErrAuth, cause: err, msg: fmt.Sprintf("vault auth failed: token lookup: %v", err)}
	}
	renewable, _ := sec.TokenIsRenewable()
	return &api.SecretAuth{ClientToken: token, LeaseDuration: int(ttl / time.Second), Renewable: renewable}, nil
}

// unwrapSecretID returns the secret_id inside the response-wrapping token in
// secret_id_file. A wrapping token can be unwrapped only once, so the secret_id is
// kept in memory and the file is unwrapped again only when it holds a new token.
// Before unwrapping, the token's creation path is checked to be this mount's
// secret-id endpoint, so a token wrapping something else is refused (as Vault Agent
// does).
func (c *Client) unwrapSecretID(ctx context.Context) (string, error) {
	a := c.cfg.Auth
	wt, err := readCredential("auth.secret_id_file", a.SecretIDFile)
	if err != nil {
		return "", c.credentialError(err)
	}
	c.mu.Lock()
	if wt == c.wrapToken && c.secretID != "" {
		sid := c.secretID
		c.mu.Unlock()
		return sid, nil
	}
	c.mu.Unlock()
	fail := func(err error, what string) error {
		return &Error{kind: ErrAuth, cause: err, retryable: err != nil && retryableCause(err),
			msg: fmt.Sprintf("vault auth failed: approle at auth/%s: %s", a.MountPath, what)}
	}
	look, err := c.raw(ctx, OpUnwrap, http.MethodPut, "sys/wrapping/lookup", "", map[string]any{"token": wt})
	if err != nil {
		if re := responseError(err); re != nil && re.StatusCode == http.StatusBadRequest {
			return "", fail(err, fmt.Sprintf("auth.secret_id_file %s holds a response-wrapping token Vault does not know (already unwrapped, expired, or from another Vault): write a freshly wrapped secret_id to it (Vault: %s)", a.SecretIDFile, vaultSaid(re)))
		}
		return "", fail(err, "looking up the wrapping token in auth.secret_id_file: "+c.describe(err))
	}
	var created string
	if look != nil {
		created, _ = look.Data["creation_path"].(string)
	}
	if want := fmt.Sprintf("auth/%s/role/%s/secret-id", a.MountPath, a.Role); !wrappedSecretIDPath(created, a.MountPath, a.Role) {
		if a.Role == "" {
			want = fmt.Sprintf("auth/%s/role/<role>/secret-id", a.MountPath)
		}
		return "", fail(nil, fmt.Sprintf("refusing to unwrap auth.secret_id_file: its wrapping token was created by %q, not by %s; it may have been tampered with", created, want))
	}
	sec, err := c.raw(ctx, OpUnwrap, http.MethodPut, "sys/wrapping/unwrap", wt, nil)
	if err != nil {
		if re := responseError(err); re != nil && re.StatusCode < 500 {
			return "", fail(err, fmt.Sprintf("cannot unwrap the token in auth.secret_id_file (Vault: %s): write a freshly wrapped secret_id to it", vaultSaid(re)))
		}
		return "", fail(err, "unwrapping auth.secret_id_file: "+c.describe(err))
	}
	var sid string
	if sec != nil {
		sid, _ = sec.Data["secret_id"].(string)
	}
	if sid == "" {
		return "", fail(nil, "the wrapping token in auth.secret_id_file held no secret_id")
	}
	c.mu.Lock()
	c.wrapToken, c.secretID = wt, sid
	c.mu.Unlock()
	return sid, nil
}

// wrappedSecretIDPath reports whether a wrapping token's creation path is the
// secret-id endpoint of an AppRole role on mount (of role, when given).
func wrappedSecretIDPath(created, mount, role string) bool {
	if role != "" {
		return created == "auth/"+mount+"/role/"+role+"/secret-id"
	}
	rest, ok := strings.CutPrefix(created, "auth/"+mount+"/role/")
	if !ok {
		return false
	}
	name, ok := strings.CutSuffix(rest, "/secret-id")
	return ok && name != "" && !strings.Contains(name, "/")
}

// loginError explains a failed login: the method, mount and role, what Vault said,
// and what to check.
func (c *Client) loginError(err error) error {
	a := c.cfg.Auth
	where := "auth/" + a.MountPath
	e := &Error{kind: ErrAuth, cause: err, retryable: retryableCause(err)}
	re := responseError(err)
	if re == nil || retryableStatus(re.StatusCode) {
		e.msg = fmt.Sprintf("vault auth failed: %s: %s", c.loginDesc(), c.describe(err))
		return e
	}
	said := vaultSaid(re)
	low := strings.ToLower(said)
	switch {
	case a.Method == MethodToken:
		e.msg = fmt.Sprintf("vault auth failed: Vault rejected the token from %s (%s); it may be expired or revoked: provide a valid token", c.authDesc(), said)
	case re.StatusCode == http.StatusNotFound || strings.Contains(low, "no handler for route"):
		e.msg = fmt.Sprintf("vault auth failed: no auth method is enabled at %s; check auth.mount_path (`vault auth list` shows the mounts) (Vault: %s)", where, said)
	case re.StatusCode == http.StatusForbidden && low == "permission denied":
		// Vault gives this bare answer to a login sent to a path where no auth method
		// is mounted (it cannot know the path is a login); auth methods explain
		// their own refusals.
		e.msg = fmt.Sprintf("vault auth failed: %s was denied (Vault: %s); check auth.mount_path: is an auth method enabled at %s (`vault auth list`)? If it is, check the role's bound CIDRs and bindings", c.authDesc(), said, where)
		if a.Method == MethodKubernetes {
			// Vault's kubernetes auth also answers this way when the API server's
			// TokenReview refuses the token.
			e.msg += "; or the Kubernetes API server no longer accepts the service-account token in auth.token_path (expired, or its service account or pod was deleted)"
		}
	case roleNotFound(a.Method, low):
		e.msg = fmt.Sprintf("vault auth failed: role %q not found at %s; %s (Vault: %s)", a.Role, where, roleHint(a.Method), said)
	case a.Method == MethodAppRole:
		e.msg = fmt.Sprintf("vault auth failed: %s rejected the role_id or secret_id; check that auth.role_id_file and auth.secret_id_file hold current credentials for the role (a secret_id expires after its TTL or num_uses) (Vault: %s)", c.authDesc(), said)
	case re.StatusCode == http.StatusForbidden || strings.Contains(low, "permission denied"):
		e.msg = fmt.Sprintf("vault auth failed: %s was denied; %s (Vault: %s)", c.authDesc(), deniedHint(a.Method), said)
	default:
		e.msg = fmt.Sprintf("vault auth failed: %s was rejected; %s (Vault: %s)", c.authDesc(), deniedHint(a.Method), said)
	}
	return e
}

func roleNotFound(method, vaultSaid string) bool {
	if method == MethodAppRole {
		return false // "invalid role or secret ID" does not say which
	}
	return strings.Contains(vaultSaid, "invalid role name") ||
		(strings.Contains(vaultSaid, "role") && (strings.Contains(vaultSaid, "not found") || strings.Contains(vaultSaid, "could not be found")))
}

func roleHint(method string) string {
	switch method {
	case MethodKubernetes:
		return "check the role name and that the service account is bound to it"
	case MethodJWT:
		return "check auth.role (or the mount's default_role)"
	default:
		return "check auth.role"
	}
}

func deniedHint(method string) string {
	switch method {
	case MethodKubernetes:
		return "check that the role's bound_service_account_names and bound_service_account_namespaces include this pod's service account, that auth.token_path holds its current token, and that Vault can reach the Kubernetes TokenReview API (auth/<mount>/config)"
	case MethodJWT:
		return "check that the JWT in auth.token_path is current and that it matches the role's bound_audiences, bound_subject, bound_claims and user_claim, and the mount's keys (jwt_validation_pubkeys, jwks_url or oidc_discovery_url)"
	default:
		return "check the role's policy and bindings"
	}
}
