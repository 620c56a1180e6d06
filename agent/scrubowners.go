package agent

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrider-dev/outrider/processors/redact"
	"github.com/outrider-dev/outrider/secrets"
)

// syncerOwners gives one syncer its own namespace in the process-wide redaction
// registry. A new syncer (after a reload of the secrets section) then adds its values
// beside the old syncer's instead of replacing them under the same owner names, and
// the old values — which the application may still use until it reloads — stay
// scrubbed until the old namespace is released.
type syncerOwners struct {
	reg    *redact.Registry
	prefix string

	mu     sync.Mutex
	owners map[string]struct{}
}

var syncerSeq atomic.Uint64

var (
	_ secrets.Redactor        = (*syncerOwners)(nil)
	_ secrets.RetentionSetter = (*syncerOwners)(nil)
)

func newSyncerOwners(reg *redact.Registry) *syncerOwners {
	return &syncerOwners{reg: reg, prefix: fmt.Sprintf("syncer-%d/", syncerSeq.Add(1)), owners: map[string]struct{}{}}
}

// Set implements secrets.Redactor.
func (o *syncerOwners) Set(owner string, values []string) {
	o.mu.Lock()
	o.owners[owner] = struct{}{}
	o.mu.Unlock()
	o.reg.Set(o.prefix+owner, values)
}

// SetRetention implements secrets.RetentionSetter: the process-wide registry keeps
// dropped values for the newest secrets section's retention.
func (o *syncerOwners) SetRetention(keep time.Duration, max int) {
	o.reg.SetRetention(keep, max)
}

// Remove implements secrets.Redactor.
func (o *syncerOwners) Remove(owner string) {
	o.mu.Lock()
	delete(o.owners, owner)
	o.mu.Unlock()
	o.reg.Remove(o.prefix + owner)
}

// release removes every value this syncer registered.
func (o *syncerOwners) release() {
	o.mu.Lock()
	owners := o.owners
	o.owners = map[string]struct{}{}
	o.mu.Unlock()
	for owner := range owners {
		o.reg.Remove(o.prefix + owner)
	}
}
