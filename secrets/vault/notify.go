package vault

import "github.com/hashicorp/vault/api"

// Vault revokes every lease a token created when that token expires or is revoked:
// when the client logs in again, the credentials fetched with the previous token
// (database users, cloud keys) die with it shortly after. Generation and LoggedIn let
// the caller replace them while the previous token is still alive — the client logs
// in again with half of its last, capped TTL left.

// Generation returns the number of distinct tokens the client has logged in with: 0
// before the first login, 1 after it, and one more each time a login replaces the
// token with a new one. (A login that finds the same token, as the token method's
// does, does not count.) A lease created by a request made under generation g is tied
// to a token that Vault revokes, with the lease, some time after Generation() > g.
func (c *Client) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

// LoggedIn returns a channel that receives a value after every successful login that
// replaced the token, the first login excepted. It has a buffer of one and is never
// closed: signals sent while nobody reads coalesce into one, so a reader must compare
// Generation with what it last saw rather than count the signals. The channel is the
// same on every call; one reader only.
func (c *Client) LoggedIn() <-chan struct{} { return c.relogged }

// noteToken counts auth's token if it differs from the current one and reports
// whether it replaced an earlier token. mu must be held, and c.auth not yet replaced.
func (c *Client) noteToken(auth *api.SecretAuth) bool {
	if c.auth != nil && c.auth.ClientToken == auth.ClientToken {
		return false
	}
	c.tokens++
	return c.tokens > 1
}

// signalRelogin tells the LoggedIn reader, if any, that the token was replaced.
func (c *Client) signalRelogin() {
	select {
	case c.relogged <- struct{}{}:
	default:
	}
}
