package secrets

import (
	"testing"
	"time"
)

// retentionRedactor records what the syncer passes to SetRetention.
type retentionRedactor struct {
	keep time.Duration
	max  int
}

func (r *retentionRedactor) Set(string, []string) {}
func (r *retentionRedactor) Remove(string)        {}
func (r *retentionRedactor) SetRetention(keep time.Duration, max int) {
	r.keep, r.max = keep, max
}

// TestNewPassesRedactRetention: the section's redact_retention and
// redact_max_retained (or their defaults) reach a Redactor that keeps old values.
func TestNewPassesRedactRetention(t *testing.T) {
	for _, tc := range []struct {
		keep     time.Duration
		max      int
		wantKeep time.Duration
		wantMax  int
	}{
		{0, 0, DefaultRedactRetention, DefaultRedactMaxRetained},
		{2 * time.Hour, 50, 2 * time.Hour, 50},
	} {
		c := validConfig()
		c.RedactRetention, c.RedactMaxRetained = tc.keep, tc.max
		red := &retentionRedactor{}
		if _, err := New(c, Settings{Redact: red}); err != nil {
			t.Fatal(err)
		}
		if red.keep != tc.wantKeep || red.max != tc.wantMax {
			t.Errorf("set %v/%d: the redactor got %v/%d, want %v/%d", tc.keep, tc.max, red.keep, red.max, tc.wantKeep, tc.wantMax)
		}
	}
}
