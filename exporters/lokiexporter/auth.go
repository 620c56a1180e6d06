package lokiexporter

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// fileValue is a secret read from a file and re-read when the file's size or
// modification time changes (a rotated token or password). Surrounding whitespace,
// such as a trailing newline, is trimmed.
type fileValue struct {
	path string

	mu    sync.Mutex
	val   string
	size  int64
	mtime time.Time
	read  bool
}

func (f *fileValue) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return "", err
	}
	if f.read && st.Size() == f.size && st.ModTime().Equal(f.mtime) {
		return f.val, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", f.path)
	}
	f.val, f.size, f.mtime, f.read = v, st.Size(), st.ModTime(), true
	return v, nil
}

// authorizer computes the Authorization header of each request.
type authorizer struct {
	static string // a precomputed header value, or ""

	bearerFile *fileValue
	user       string
	passFile   *fileValue
}

func newAuthorizer(c *Config) *authorizer {
	a := &authorizer{}
	switch {
	case c.BasicAuth.PasswordFile != "":
		a.user = c.BasicAuth.Username
		a.passFile = &fileValue{path: c.BasicAuth.PasswordFile}
	case c.BasicAuth.Username != "":
		a.static = basicAuth(c.BasicAuth.Username, c.BasicAuth.Password.Reveal())
	case c.BearerTokenFile != "":
		a.bearerFile = &fileValue{path: c.BearerTokenFile}
	case c.BearerToken != "":
		a.static = "Bearer " + c.BearerToken.Reveal()
	}
	return a
}

// header returns the Authorization value, or "" for none.
func (a *authorizer) header() (string, error) {
	switch {
	case a.passFile != nil:
		p, err := a.passFile.get()
		if err != nil {
			return "", fmt.Errorf("read basic_auth.password_file: %w", err)
		}
		return basicAuth(a.user, p), nil
	case a.bearerFile != nil:
		t, err := a.bearerFile.get()
		if err != nil {
			return "", fmt.Errorf("read bearer_token_file: %w", err)
		}
		return "Bearer " + t, nil
	}
	return a.static, nil
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
