package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outrider-dev/outrider/internal/confval"
)

// maxBodySnippet bounds how much of an error response is quoted in the error.
const maxBodySnippet = 256

// maxBodyDrain bounds how much of a response is read at all.
const maxBodyDrain = 64 << 10

// httpNotifier asks the application to reload with an HTTP request.
type httpNotifier struct {
	client  *http.Client
	url     string
	shown   string // the URL without credentials or query, for messages
	verb    string
	headers map[string]confval.Secret
	timeout time.Duration
}

func newHTTPNotifier(cfg Config) (*httpNotifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", redactURLError(err))
	}
	shown := *u
	shown.User = nil
	shown.RawQuery, shown.ForceQuery, shown.Fragment = "", false, ""
	tr := &http.Transport{
		Proxy:                  nil, // the app is beside us; a proxy from the environment is never wanted
		DialContext:            (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		DisableKeepAlives:      true, // reloads are rare; no idle connection outlives a reload
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &httpNotifier{
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		url:     cfg.URL,
		shown:   shown.String(),
		verb:    cfg.HTTPMethod,
		headers: cfg.Headers,
		timeout: cfg.Timeout,
	}, nil
}

func (h *httpNotifier) method() string { return MethodHTTP }

func (h *httpNotifier) target() string { return h.verb + " " + h.shown }

func (h *httpNotifier) reload(ctx context.Context, _ []string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, h.verb, h.url, http.NoBody)
	if err != nil {
		return 0, fmt.Errorf("building the reload request %s: %w", h.target(), redactURLError(err))
	}
	for k, v := range h.headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v.Reveal()
			continue
		}
		req.Header.Set(k, v.Reveal())
	}
	req.Header.Set("User-Agent", "outrider-reload")
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("reload request %s timed out after %s; check that the app answers its reload endpoint in time, or raise timeout", h.target(), h.timeout)
		}
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may hold credentials
		}
		return 0, fmt.Errorf("reload request %s failed: %w; check that the app is running and listens there", h.target(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyDrain))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return 1, nil
	}
	msg := fmt.Sprintf("reload request %s answered %s", h.target(), resp.Status)
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		msg += " (redirects are not followed; point url at the final address)"
	}
	if s := snippet(body, maxBodySnippet); s != "" {
		msg += ": " + s
	}
	return 1, errors.New(msg)
}

// snippet returns at most n bytes of b as one printable line, on a rune boundary.
func snippet(b []byte, n int) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	cut := false
	if len(s) > n {
		i := n
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s, cut = s[:i], true
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if cut {
		s += "…"
	}
	return s
}
