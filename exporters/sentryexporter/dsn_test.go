package sentryexporter

import (
	"net/url"
	"strings"
	"testing"
)

// secretish is a key the tests look for in messages that must not show it.
const secretish = "Kz9secretPublicKey0000000000000a"

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name, in                   string
		url, public, auth, redacts string
		key, secret                string
	}{
		{
			name: "sentry.io", in: "https://" + secretish + "@o123.ingest.sentry.io/4505",
			url:     "https://o123.ingest.sentry.io/api/4505/envelope/",
			public:  "https://" + secretish + "@o123.ingest.sentry.io/4505",
			auth:    "Sentry sentry_version=7, sentry_client=outrider/test, sentry_key=" + secretish,
			redacts: "https://<key>@o123.ingest.sentry.io/4505",
			key:     secretish,
		},
		{
			name: "self-hosted with port and path", in: "http://abc123@sentry.internal:9000/sentry/sub/7",
			url:     "http://sentry.internal:9000/sentry/sub/api/7/envelope/",
			public:  "http://abc123@sentry.internal:9000/sentry/sub/7",
			auth:    "Sentry sentry_version=7, sentry_client=outrider/test, sentry_key=abc123",
			redacts: "http://<key>@sentry.internal:9000/sentry/sub/7",
			key:     "abc123",
		},
		{
			name: "legacy secret key", in: "https://pub:sec-ret@sentry.example.com/1",
			url:     "https://sentry.example.com/api/1/envelope/",
			public:  "https://pub@sentry.example.com/1",
			auth:    "Sentry sentry_version=7, sentry_client=outrider/test, sentry_key=pub, sentry_secret=sec-ret",
			redacts: "https://<key>@sentry.example.com/1",
			key:     "pub", secret: "sec-ret",
		},
		{
			name: "upper-case scheme, trailing slash and spaces", in: "  HTTPS://k_1@Sentry.Example.com/12/ ",
			url:     "https://Sentry.Example.com/api/12/envelope/",
			public:  "https://k_1@Sentry.Example.com/12",
			auth:    "Sentry sentry_version=7, sentry_client=outrider/test, sentry_key=k_1",
			redacts: "https://<key>@Sentry.Example.com/12",
			key:     "k_1",
		},
		{
			name: "IPv6 loopback", in: "http://k@[::1]:4319/3",
			url:     "http://[::1]:4319/api/3/envelope/",
			public:  "http://k@[::1]:4319/3",
			auth:    "Sentry sentry_version=7, sentry_client=outrider/test, sentry_key=k",
			redacts: "http://<key>@[::1]:4319/3",
			key:     "k",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDSN(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.envelopeURL(); got != tt.url {
				t.Errorf("envelopeURL = %q, want %q", got, tt.url)
			}
			if got := d.public(); got != tt.public {
				t.Errorf("public = %q, want %q", got, tt.public)
			}
			if got := d.authHeader("outrider/test"); got != tt.auth {
				t.Errorf("authHeader = %q, want %q", got, tt.auth)
			}
			if got := d.redacted(); got != tt.redacts {
				t.Errorf("redacted = %q, want %q", got, tt.redacts)
			}
			if d.publicKey != tt.key || d.secretKey != tt.secret {
				t.Errorf("keys %q %q, want %q %q", d.publicKey, d.secretKey, tt.key, tt.secret)
			}
		})
	}
}

func TestParseDSNErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "  ", "is required"},
		{"no scheme", secretish + "@o1.ingest.sentry.io/1", "must start with https://"},
		{"other scheme", "ftp://" + secretish + "@o1.ingest.sentry.io/1", "must start with https://"},
		{"no key", "https://o1.ingest.sentry.io/1", "has no public key"},
		{"only a secret", "https://:" + secretish + "@o1.ingest.sentry.io/1", "has no public key"},
		{"no host", "https://" + secretish + "@/1", "has no host"},
		{"no project", "https://" + secretish + "@o1.ingest.sentry.io", "has no project id"},
		{"bare slash", "https://" + secretish + "@o1.ingest.sentry.io/", "has no project id"},
		{"project not a number", "https://" + secretish + "@o1.ingest.sentry.io/abc", "numeric project id"},
		{"empty segment", "https://" + secretish + "@o1.ingest.sentry.io//1", "empty segment"},
		{"query", "https://" + secretish + "@o1.ingest.sentry.io/1?verify_ssl=0", "has a query"},
		{"fragment", "https://" + secretish + "@o1.ingest.sentry.io/1#x", "fragment"},
		{"bad port", "https://" + secretish + "@o1.ingest.sentry.io:port/1", "not a valid URL"},
		{"bad escape in key", "https://" + secretish + "%zz@o1.ingest.sentry.io/1", "not a valid URL"},
		{"key with a comma", "https://" + secretish + ",x@o1.ingest.sentry.io/1", "public key"},
		{"secret with a space", "https://pub:" + secretish + "%20x@o1.ingest.sentry.io/1", "secret key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDSN(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secretish) || strings.Contains(err.Error(), "Kz9secret") {
				t.Errorf("error reveals the key: %q", err)
			}
		})
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"https://" + secretish + "@o123.ingest.sentry.io/4505",
		"http://k@sentry.internal:9000/sentry/7",
		"https://pub:sec@h/1", "http://k@[::1]:4319/3/", "https://k@h/1?x#y", "https://k%zz@h:p/1",
		"https://a@b@c/1", "https://k@h//1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDSN(s)
		if err != nil {
			msg := err.Error()
			ui := userinfo(strings.TrimSpace(s))
			for _, part := range append([]string{ui}, strings.Split(ui, ":")...) {
				if len(part) >= 6 && hasUpperAndDigit(part) && strings.Contains(msg, part) {
					t.Fatalf("error %q reveals key material %q of %q", msg, part, s)
				}
			}
			return
		}
		if !validKey(d.publicKey) || !validProject(d.project) || d.host == "" {
			t.Fatalf("accepted %q as %+v", s, d)
		}
		u, err := url.Parse(d.envelopeURL())
		if err != nil || !strings.HasSuffix(u.Path, "/api/"+d.project+"/envelope/") {
			t.Fatalf("envelope URL %q of %q: %v", d.envelopeURL(), s, err)
		}
		again, err := parseDSN(d.public())
		if err != nil {
			t.Fatalf("public form %q of %q does not parse: %v", d.public(), s, err)
		}
		if again.envelopeURL() != d.envelopeURL() || again.publicKey != d.publicKey || again.project != d.project {
			t.Fatalf("public form %q of %q parses differently: %+v vs %+v", d.public(), s, again, d)
		}
		if !strings.HasPrefix(d.redacted(), d.scheme+"://<key>@") {
			t.Fatalf("redacted %q", d.redacted())
		}
	})
}

// hasUpperAndDigit tells key material from the fixed words of error messages, which
// never hold an upper-case letter and a digit in one run without '/'.
func hasUpperAndDigit(s string) bool {
	return strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "0123456789")
}
