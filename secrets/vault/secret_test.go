package vault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func TestSecretNeverPrintsData(t *testing.T) {
	s := &Secret{
		Data:    map[string]any{"data": map[string]any{"password": "hunter2-canary"}, "metadata": map[string]any{"version": json.Number("3")}},
		LeaseID: "database/creds/app/abc", LeaseDuration: time.Minute, Renewable: true,
		KV: &KVInfo{Mount: "secret/", Version: 3},
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", s, "value", *s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %v", s, s, s, s, *s), buf.String()} {
		if strings.Contains(out, "hunter2-canary") {
			t.Fatalf("secret data printed: %s", out)
		}
		if !strings.Contains(out, "database/creds/app/abc") {
			t.Errorf("lease id missing from %s", out)
		}
	}
	if !strings.Contains(buf.String(), `"kv_version":3`) {
		t.Errorf("log value lacks the KV version: %s", buf.String())
	}
}

func TestFromAPIAndKVInfo(t *testing.T) {
	s := fromAPI(&api.Secret{LeaseID: "l", LeaseDuration: 90, Renewable: true, Warnings: []string{"w"}, Data: map[string]any{"k": "v"}})
	if s.LeaseID != "l" || s.LeaseDuration != 90*time.Second || !s.Renewable || s.Warnings[0] != "w" || s.Data["k"] != "v" {
		t.Fatalf("fromAPI = %+v", s)
	}
	if s := fromAPI(nil); s == nil || s.Data != nil {
		t.Fatalf("fromAPI(nil) = %v", s)
	}
	info := kvInfo("secret/", map[string]any{"metadata": map[string]any{"version": json.Number("7"), "created_time": "2025-01-02T03:04:05.123456789Z"}})
	if info.Version != 7 || info.Mount != "secret/" || info.CreatedTime.Year() != 2025 || info.CreatedTime.Nanosecond() != 123456789 {
		t.Fatalf("kvInfo = %+v", info)
	}
	if info := kvInfo("secret/", map[string]any{"metadata": nil}); info.Version != 0 || !info.CreatedTime.IsZero() {
		t.Fatalf("kvInfo without metadata = %+v", info)
	}
	for v, want := range map[any]int{json.Number("12"): 12, float64(3): 3, 4: 4, int64(5): 5} {
		if got, ok := intOf(v); !ok || got != want {
			t.Errorf("intOf(%#v) = %d, %t", v, got, ok)
		}
	}
	for _, v := range []any{json.Number("1.5"), 2.5, "3", nil} {
		if _, ok := intOf(v); ok {
			t.Errorf("intOf(%#v) accepted", v)
		}
	}
}

func TestWrappedSecretIDPath(t *testing.T) {
	for _, tc := range []struct {
		created, mount, role string
		want                 bool
	}{
		{"auth/approle/role/web/secret-id", "approle", "web", true},
		{"auth/approle/role/web/secret-id", "approle", "", true},
		{"auth/approle/role/api/secret-id", "approle", "web", false},
		{"auth/other/role/web/secret-id", "approle", "", false},
		{"sys/wrapping/wrap", "approle", "", false},
		{"auth/approle/role/web/custom-secret-id", "approle", "", false},
		{"auth/approle/role//secret-id", "approle", "", false},
		{"auth/approle/role/a/b/secret-id", "approle", "", false},
		{"", "approle", "", false},
	} {
		if got := wrappedSecretIDPath(tc.created, tc.mount, tc.role); got != tc.want {
			t.Errorf("wrappedSecretIDPath(%q, %q, %q) = %t", tc.created, tc.mount, tc.role, got)
		}
	}
}
