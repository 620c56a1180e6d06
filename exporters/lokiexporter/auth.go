package lokiexporter

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	"github.com/outrider-dev/outrider/internal/secretfile"
)

// authorizer computes the Authorization header of each request. Credentials from
// files are read again when the files change (a rotated Secret).
type authorizer struct {
	static string // a precomputed header value, or ""

	bearerFile *secretfile.File
	user       string
	userFile   *secretfile.File
	passFile   *secretfile.File

	// sources says where the credential and tls files come from, for the error of a
	// refusal; "" when no file is used.
	sources string
}

func newAuthorizer(c *Config) *authorizer {
	a := &authorizer{}
	ba := c.BasicAuth
	switch {
	case ba.PasswordFile != "" || ba.UsernameFile != "":
		a.user = ba.Username
		if ba.UsernameFile != "" {
			a.userFile = secretfile.New(ba.UsernameFile)
		}
		if ba.PasswordFile != "" {
			a.passFile = secretfile.New(ba.PasswordFile)
		} else {
			a.static = ba.Password.Reveal()
		}
	case ba.Username != "":
		a.static = basicAuth(ba.Username, ba.Password.Reveal())
	case c.BearerTokenFile != "":
		a.bearerFile = secretfile.New(c.BearerTokenFile)
	case c.BearerToken != "":
		a.static = "Bearer " + c.BearerToken.Reveal()
	}
	a.sources = c.CredentialSources.Describe(c.credentialFiles()...)
	return a
}

// header returns the Authorization value, or "" for none.
func (a *authorizer) header() (string, error) {
	switch {
	case a.userFile != nil || a.passFile != nil:
		user, pass := a.user, a.static
		if a.userFile != nil {
			u, err := a.userFile.Get()
			if err != nil {
				return "", fmt.Errorf("basic_auth.username_file: %w", err)
			}
			user = u
		}
		if a.passFile != nil {
			p, err := a.passFile.Get()
			if err != nil {
				return "", fmt.Errorf("basic_auth.password_file: %w", err)
			}
			pass = p
		}
		return basicAuth(user, pass), nil
	case a.bearerFile != nil:
		t, err := a.bearerFile.Get()
		if err != nil {
			return "", fmt.Errorf("bearer_token_file: %w", err)
		}
		return "Bearer " + t, nil
	}
	return a.static, nil
}

// refused adds to the error of a 401 or 403 where the credentials came from.
func (a *authorizer) refused(err error) error {
	if a.sources == "" {
		return err
	}
	return fmt.Errorf("%w; the credentials were read from %s: fix them there", err, a.sources)
}

// hostOf returns the host of a URL pushURL accepted, for the TLS name check.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// transport adds to a failed connection's error, when it looks like a TLS failure,
// where the certificates came from.
func (a *authorizer) transport(err error) error {
	msg := err.Error()
	if a.sources == "" || !strings.Contains(msg, "tls") && !strings.Contains(msg, "certificate") {
		return err
	}
	return fmt.Errorf("%w; check the certificates read from %s", err, a.sources)
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
