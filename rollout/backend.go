package rollout

import (
	"context"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Backend is where a run's plan lock and journal live: the local state dir
// (journal.Local) or a store a team shares (etcd). The runner takes the
// lock before anything else and stops safely when it is lost; it records
// every event before the step the event describes goes on, and stops
// safely when a record cannot be written.
type Backend interface {
	// Lock takes the plan's controller lock; another live run's lock is
	// refused with a *journal.LockedError naming its owner.
	Lock(ctx context.Context, plan string, info journal.LockInfo) (journal.HeldLock, error)
	// Record writes one journal record durably.
	Record(ctx context.Context, e event.Event) error
}
