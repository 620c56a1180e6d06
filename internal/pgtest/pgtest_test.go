package pgtest

import (
	"context"
	"testing"
	"time"
)

// TestServer starts a real PostgreSQL and checks what the secrets tests rely on: the
// superuser's socket access, a TCP login that really checks the password, and role
// listing.
func TestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := s.Query(ctx, `CREATE ROLE "v-test-1" WITH LOGIN PASSWORD 'right-password'`); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, "v-test-1", "right-password"); err != nil {
		t.Fatalf("login with the right password: %v", err)
	}
	if err := s.Login(ctx, "v-test-1", "wrong-password"); err == nil {
		t.Fatal("login with a wrong password succeeded: TCP connections must check passwords")
	}
	if err := s.Login(ctx, Superuser, s.Password); err != nil {
		t.Fatalf("superuser login over TCP: %v", err)
	}
	roles, err := s.Roles(ctx, "v-")
	if err != nil || len(roles) != 1 || roles[0] != "v-test-1" {
		t.Fatalf("Roles = %q, %v; want [v-test-1]", roles, err)
	}
	if ok, err := s.RoleExists(ctx, "v-test-2"); ok || err != nil {
		t.Fatalf("RoleExists(v-test-2) = %v, %v", ok, err)
	}
}
