package sentryexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// dsnExample is the shape of a DSN, for error messages; it holds no real key.
const dsnExample = "https://<public_key>@o123.ingest.sentry.io/456"

// dsn is a parsed Sentry DSN: where to send envelopes and the key that authenticates
// them. Its key is a credential: format it only with redacted, never with %v.
type dsn struct {
	scheme    string // "http" or "https"
	host      string // host[:port], IPv6 in brackets
	path      string // prefix before the project id: "" or "/sentry"
	project   string // numeric project id
	publicKey string
	secretKey string // legacy DSNs only; usually ""
}

// parseDSN parses and checks a Sentry DSN:
//
//	http(s)://<public_key>[:<secret_key>]@<host>[:<port>][/<path>]/<project_id>
//
// Errors never quote the DSN or its key, so they are safe to print.
func parseDSN(raw string) (*dsn, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, fmt.Errorf("is required: the DSN of the Sentry project to send errors to (Project Settings → Client Keys), e.g. %s", dsnExample)
	}
	lower := strings.ToLower(s)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		return nil, fmt.Errorf("must start with https:// (or http:// for a self-hosted Sentry without TLS), e.g. %s", dsnExample)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("is not a valid URL (%s); the form is %s", redactKey(err.Error(), s), dsnExample)
	}
	d := &dsn{scheme: strings.ToLower(u.Scheme), host: u.Host}
	if u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("has no public key: put the project's public key before '@', e.g. %s", dsnExample)
	}
	d.publicKey = u.User.Username()
	if !validKey(d.publicKey) {
		return nil, errors.New("has a public key (the part before '@') with characters other than letters, digits, '-' and '_'; copy the DSN again from Sentry's Client Keys page")
	}
	if secret, ok := u.User.Password(); ok {
		if !validKey(secret) {
			return nil, errors.New("has a secret key (between ':' and '@') with characters other than letters, digits, '-' and '_'; current DSNs have no secret key, copy the DSN again from Sentry's Client Keys page")
		}
		d.secretKey = secret
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("has no host after '@', e.g. %s", dsnExample)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("has a query (?...), which a DSN does not use; remove it")
	}
	if u.Fragment != "" {
		return nil, errors.New("has a #fragment; remove it")
	}
	p := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 || p[i+1:] == "" {
		return nil, fmt.Errorf("has no project id: the DSN ends with the numeric project id, e.g. %s", dsnExample)
	}
	d.path, d.project = p[:i], p[i+1:]
	if !validProject(d.project) {
		return nil, fmt.Errorf("does not end with a numeric project id, e.g. %s", dsnExample)
	}
	if strings.Contains(p, "//") {
		return nil, errors.New("has an empty segment (//) in its path")
	}
	return d, nil
}

// validKey reports whether s can be a Sentry key: it goes into the X-Sentry-Auth
// header unquoted, so only token characters are allowed.
func validKey(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

func validProject(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// userinfo returns the part of a URL between "://" and the '@' that ends the
// authority, found without parsing, so that a key can be redacted from the messages
// of a URL that does not parse.
func userinfo(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return ""
	}
	rest := s[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	return rest[:at]
}

// redactKey removes the DSN's user information (its keys), and each part of it,
// from msg.
func redactKey(msg, raw string) string {
	ui := userinfo(raw)
	if ui == "" {
		return msg
	}
	parts := append([]string{ui}, strings.Split(ui, ":")...)
	for _, p := range parts {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "<key>")
		}
	}
	return msg
}

// hostname is the DSN's host without its port, which the server's TLS certificate
// must hold.
func (d *dsn) hostname() string {
	return (&url.URL{Host: d.host}).Hostname()
}

// envelopeURL is the project's envelope endpoint.
func (d *dsn) envelopeURL() string {
	u := url.URL{Scheme: d.scheme, Host: d.host, Path: d.path + "/api/" + d.project + "/envelope/"}
	return u.String()
}

// public is the DSN as SDKs write it into an envelope header: with the public key,
// without a legacy secret key.
func (d *dsn) public() string {
	u := url.URL{Scheme: d.scheme, User: url.User(d.publicKey), Host: d.host, Path: d.path + "/" + d.project}
	return u.String()
}

// redacted is the DSN with its key replaced, safe for logs and messages.
func (d *dsn) redacted() string {
	return d.scheme + "://<key>@" + d.host + d.path + "/" + d.project
}

// authHeader is the X-Sentry-Auth header of every request.
func (d *dsn) authHeader(client string) string {
	h := "Sentry sentry_version=7, sentry_client=" + client + ", sentry_key=" + d.publicKey
	if d.secretKey != "" {
		h += ", sentry_secret=" + d.secretKey
	}
	return h
}
