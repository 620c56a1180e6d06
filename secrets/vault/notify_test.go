package vault

import (
	"testing"
)

// received reports whether ch holds a signal, taking it.
func received(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Generation counts the tokens a client logged in with, and LoggedIn signals every
// login after the first that replaced the token, coalescing unread signals.
func TestGenerationAndLoggedIn(t *testing.T) {
	t.Parallel()
	mount := unique("approle")
	roleID, secretID := approle(t, mount, "web", map[string]any{"token_ttl": "1m", "token_max_ttl": "1h"})
	dir := t.TempDir()
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodAppRole, MountPath: mount, Role: "web",
		RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID)}}, Settings{})
	if g := c.Generation(); g != 0 {
		t.Fatalf("Generation before any login = %d, want 0", g)
	}
	steps := []struct {
		name   string
		logins int
		gen    uint64
		signal bool
	}{
		{"first login", 1, 1, false},
		{"second login", 1, 2, true},
		{"two more logins, unread signals coalesce", 2, 4, true},
	}
	for _, st := range steps {
		for range st.logins {
			if err := c.Login(ctxT(t)); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if g := c.Generation(); g != st.gen {
			t.Errorf("%s: Generation = %d, want %d", st.name, g, st.gen)
		}
		if got := received(c.LoggedIn()); got != st.signal {
			t.Errorf("%s: LoggedIn signalled %t, want %t", st.name, got, st.signal)
		}
		if received(c.LoggedIn()) {
			t.Errorf("%s: LoggedIn holds a second signal; it must coalesce to one", st.name)
		}
	}
}

// A login that finds the same token (the token method) is not a new generation: the
// leases created with the token are not at risk.
func TestGenerationSameToken(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{Auth: AuthConfig{Method: MethodToken, Token: secretOf(root(t).Token())}}, Settings{})
	for i := range 3 {
		if err := c.Login(ctxT(t)); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
	if g := c.Generation(); g != 1 {
		t.Errorf("Generation after three logins with the same token = %d, want 1", g)
	}
	if received(c.LoggedIn()) {
		t.Errorf("LoggedIn signalled although the token never changed")
	}
}
