package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-sh/rollout/journal"
)

// PlanLocker takes a plan's controller lock (Backend and backend.Store
// satisfy it).
type PlanLocker interface {
	Lock(ctx context.Context, plan string, info journal.LockInfo) (journal.HeldLock, error)
}

// Locks is the one way apply, rollback and repair hold a plan's locks: the
// controller lock in the state backend (which keeps itself renewed), then
// one lock per host, renewed every TTL/3 by KeepRenewed while the work
// goes on. The first loss of each lock is told to Lost; Release gives
// everything back, hosts first.
type Locks struct {
	Plan  string
	Info  journal.LockInfo // who holds them; Info.TTL 0 = journal.DefaultLockTTL
	Forks int              // hosts renewed and released at once (0 = DefaultForks)
	Now   func() time.Time // nil = time.Now
	// Sleep waits between renewals (nil = journal.Pause).
	Sleep func(ctx context.Context, d time.Duration) error
	// Lost is told, once per lock, that a lock was taken away while held
	// (an error wrapping journal.ErrLockLost that says where). Nil: ignored.
	Lost func(error)
	// Warn reports what does not stop the work: a renewal or release that
	// failed. Nil: ignored.
	Warn func(format string, args ...any)

	mu        sync.Mutex
	held      journal.HeldLock
	watchDone chan struct{}
	hosts     []*lockedHost
	stopRenew func()
}

type lockedHost struct {
	name, stateDir string
	conn           journal.Runner
	lost           bool
}

func (l *Locks) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

func (l *Locks) ttl() time.Duration {
	if l.Info.TTL <= 0 {
		return journal.DefaultLockTTL
	}
	return l.Info.TTL
}

func (l *Locks) warn(format string, args ...any) {
	if l.Warn != nil {
		l.Warn(format, args...)
	}
}

func (l *Locks) lose(err error) {
	if l.Lost != nil {
		l.Lost(err)
	}
}

// TakePlan takes the controller lock in b and watches it: its loss is told
// to Lost. Another live run's lock is refused with a *journal.LockedError.
func (l *Locks) TakePlan(ctx context.Context, b PlanLocker) error {
	held, err := b.Lock(ctx, l.Plan, l.Info)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err, ok := <-held.Lost(); ok && err != nil {
			l.lose(err)
		}
	}()
	l.mu.Lock()
	l.held, l.watchDone = held, done
	l.mu.Unlock()
	return nil
}

// TakeHost takes the plan's lock on one host (name names it in a
// *journal.LockedError).
func (l *Locks) TakeHost(ctx context.Context, conn journal.Runner, name, stateDir string) error {
	if err := journal.AcquireHostLock(ctx, conn, name, stateDir, l.Plan, l.Info, l.now()); err != nil {
		return err
	}
	l.addHost(conn, name, stateDir)
	return nil
}

// TakeHostAndRead takes the plan's lock on one host and reads it in the
// same command (journal.AcquireHostLockAndInspect): the lock held and the
// read failed is an error with locked true; the lock is released with the
// rest.
func (l *Locks) TakeHostAndRead(ctx context.Context, conn journal.Runner, name, stateDir string, paths []string) (in *journal.Inspection, locked bool, err error) {
	in, locked, err = journal.AcquireHostLockAndInspect(ctx, conn, name, stateDir, l.Plan, l.Info, l.now(), paths)
	if locked {
		l.addHost(conn, name, stateDir)
	}
	return in, locked, err
}

func (l *Locks) addHost(conn journal.Runner, name, stateDir string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hosts = append(l.hosts, &lockedHost{name: name, stateDir: stateDir, conn: conn})
}

// KeepRenewed renews the host locks taken so far every TTL/3 until
// Release. A host whose lock is gone or another run's is told to Lost
// (and renewed no more); other failures are warnings and renewing goes on.
func (l *Locks) KeepRenewed(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	l.mu.Lock()
	hosts := append([]*lockedHost(nil), l.hosts...)
	l.mu.Unlock()
	errc := journal.KeepRenewed(ctx, l.ttl()/3, l.Sleep, func(ctx context.Context) error {
		_ = eachOf(ctx, l.Forks, hosts, func(ctx context.Context, h *lockedHost) error {
			l.mu.Lock()
			lost := h.lost
			l.mu.Unlock()
			if lost {
				return nil
			}
			err := journal.RenewHostLock(ctx, h.conn, h.stateDir, l.Plan, l.Info, l.now())
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, journal.ErrNotHeld):
				// another run may be driving this host now: go no further
				l.mu.Lock()
				h.lost = true
				l.mu.Unlock()
				l.lose(fmt.Errorf("%w: %s: %w", journal.ErrLockLost, h.name, err))
			default:
				l.warn("%s: renewing lock: %v", h.name, err)
			}
			return nil
		})
		return nil
	})
	l.mu.Lock()
	l.stopRenew = func() {
		cancel()
		for range errc {
		}
	}
	l.mu.Unlock()
}

// Release stops renewing, releases every host lock taken (those of
// unreachable hosts stay: their names are returned, sorted) and then the
// controller lock. It outlives ctx's cancellation by up to 10 seconds, so
// that an interrupted run still gives its locks back.
func (l *Locks) Release(ctx context.Context) (unreleased []string) {
	l.mu.Lock()
	stop, hosts, held, watchDone := l.stopRenew, l.hosts, l.held, l.watchDone
	l.stopRenew, l.hosts, l.held = nil, nil, nil
	l.mu.Unlock()
	if stop != nil {
		stop()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	_ = eachOf(rctx, l.Forks, hosts, func(ctx context.Context, h *lockedHost) error {
		if err := journal.ReleaseHostLock(ctx, h.conn, h.stateDir, l.Plan, l.Info.RunID); err != nil {
			l.warn("%s: releasing lock: %v", h.name, err)
			mu.Lock()
			unreleased = append(unreleased, h.name)
			mu.Unlock()
		}
		return nil
	})
	sort.Strings(unreleased)
	if held != nil {
		if err := held.Release(rctx); err != nil {
			l.warn("releasing the plan lock: %v", err)
		}
		<-watchDone
	}
	return unreleased
}

// eachOf runs f for every item, at most limit at a time (0 =
// DefaultForks), and joins the errors in a stable order.
func eachOf[T any](ctx context.Context, limit int, items []T, f func(context.Context, T) error) error {
	if limit <= 0 {
		limit = DefaultForks
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	var mu sync.Mutex
	var errs []error
	for _, it := range items {
		g.Go(func() error {
			if err := f(gctx, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// LockReader reads and breaks a plan's controller lock (backend.Store
// satisfies it).
type LockReader interface {
	Describe() string
	ReadLock(ctx context.Context, plan string) (*journal.LockInfo, error)
	BreakLock(ctx context.Context, plan string) error
}

// FoundLock is one lock of a plan that someone holds: in the state
// backend or on a host.
type FoundLock struct {
	Where string // the backend's description, or the host's name
	Info  *journal.LockInfo
	Break func(ctx context.Context) error // removes it, whoever holds it
}

// FindLocks lists who holds the plan's controller lock and its lock on
// each selected host, for `rollout unlock`. A host that cannot be reached
// or read is told to skipped and left out.
func FindLocks(ctx context.Context, sel *Selection, store LockReader, env Env, skipped func(host string, err error)) ([]FoundLock, error) {
	name := sel.Plan.Name
	var found []FoundLock
	if li, err := store.ReadLock(ctx, name); err != nil {
		return nil, err
	} else if li != nil {
		found = append(found, FoundLock{store.Describe(), li, func(ctx context.Context) error { return store.BreakLock(ctx, name) }})
	}
	for _, h := range sel.Hosts {
		spec, diags := sel.Plan.ForHost(h, sel.Plan.Revision)
		if diags.HasErrors() {
			return nil, &DiagError{Diags: diags, Sources: sel.Sources}
		}
		conn, err := env.Connect(ctx, h)
		if err != nil {
			skipped(h.Name, fmt.Errorf("cannot check its lock: %w", err))
			continue
		}
		li, err := journal.ReadHostLock(ctx, conn, spec.StateDir, name)
		if err != nil {
			skipped(h.Name, err)
			continue
		}
		if li != nil {
			found = append(found, FoundLock{h.Name, li, func(ctx context.Context) error { return journal.BreakHostLock(ctx, conn, spec.StateDir, name) }})
		}
	}
	return found, nil
}
