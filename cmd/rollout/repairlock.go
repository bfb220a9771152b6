package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-sh/rollout/backend"
	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
)

// lockForRepair takes the plan's locks the way apply does (locally, and on
// every host to repair), so that repair never restores, restarts or
// undrains a host that a live run is working on: the last run in the
// journal may still be running. A lock left by a dead run refuses too,
// until it expires or `rollout unlock` removes it — unless its run is
// provably dead (journal.OwnerDead: taken on this machine by a pid that is
// gone or is another process now): then repair takes the lock over, says
// so, and records it in the journal under the dead run. The returned
// function releases what was taken.
func lockForRepair(ctx context.Context, ios *IOStreams, o *repairOptions, sel *rollout.Selection, w *wire.Wiring, store backend.Store, hosts []string) (func(), error) {
	now := time.Now()
	info := journal.LockInfo{Owner: owner(), PID: os.Getpid(), RunID: newRunID(now)}
	name := sel.Plan.Name
	var releases []func() // host locks: released at once
	var releaseLocal func()
	release := func() {
		var wg sync.WaitGroup
		for _, r := range releases {
			wg.Add(1)
			go func() { defer wg.Done(); r() }()
		}
		wg.Wait()
		if releaseLocal != nil {
			releaseLocal()
		}
	}
	refusal := func(err error) error {
		release()
		return &rollout.Refusal{Problem: fmt.Sprintf("repair: %v", err),
			Next: fmt.Sprintf("wait for that run to finish; if it is dead, wait for the lock to expire or run: rollout unlock %s; then: rollout repair %s", o.PlanFile, o.PlanFile)}
	}
	deadRun := "" // the dead run whose locks repair takes over (set before the hosts are locked)
	var sayMu sync.Mutex
	takeOver := func(err error, breakLock func() error, where string) bool {
		var le *journal.LockedError
		if !errors.As(err, &le) {
			return false
		}
		sayMu.Lock()
		defer sayMu.Unlock()
		dead, why := journal.OwnerDead(le.Info)
		if !dead && (deadRun == "" || le.Info.RunID != deadRun) {
			return false
		}
		if why == "" {
			why = "its local lock was taken over above"
		}
		if breakLock() != nil {
			return false
		}
		if deadRun == "" {
			deadRun = le.Info.RunID
		}
		msg := fmt.Sprintf("repair %s took over the lock %s of run %s (%s): that run is dead (%s)", info.RunID, where, le.Info.RunID, le.Info.Owner, why)
		fmt.Fprintln(ios.Out, msg)
		_ = store.Record(ctx, event.Event{Time: time.Now(), Run: le.Info.RunID, Event: event.Log, Level: "warn", Message: msg})
		return true
	}
	held, err := store.Lock(ctx, name, info)
	if err != nil {
		if !takeOver(err, func() error { return store.BreakLock(ctx, name) }, "in "+store.Describe()) {
			return nil, refusal(err)
		}
		if held, err = store.Lock(ctx, name, info); err != nil {
			return nil, refusal(err)
		}
	}
	releaseLocal = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = held.Release(rctx)
	}
	// every host at once (up to --forks)
	var mu sync.Mutex
	var errs []error
	g := new(errgroup.Group)
	g.SetLimit(forks(o.GlobalOptions))
	for _, hn := range hosts {
		h := sel.Inventory.Host(hn)
		spec, diags := sel.Plan.ForHost(h, sel.Plan.Revision)
		if diags.HasErrors() {
			release()
			return nil, &rollout.DiagError{Diags: diags, Sources: sel.Sources}
		}
		g.Go(func() error {
			conn, err := w.Connect(ctx, h)
			if err == nil {
				err = journal.AcquireHostLock(ctx, conn, hn, spec.StateDir, name, info, now)
				if err != nil && takeOver(err, func() error { return journal.BreakHostLock(ctx, conn, spec.StateDir, name) }, "on "+hn) {
					err = journal.AcquireHostLock(ctx, conn, hn, spec.StateDir, name, info, now)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", hn, err))
				return nil
			}
			releases = append(releases, func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_ = journal.ReleaseHostLock(rctx, conn, spec.StateDir, name, info.RunID)
			})
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, refusal(errs[0])
	}
	if deadRun != "" {
		freeDeadRunLocks(ctx, ios, sel, w, hosts, deadRun)
	}
	return release, nil
}

// freeDeadRunLocks removes the locks a dead run left on the plan's other
// hosts (those repair has nothing to put back on), so the next run is not
// refused by them.
func freeDeadRunLocks(ctx context.Context, ios *IOStreams, sel *rollout.Selection, w *wire.Wiring, repaired []string, deadRun string) {
	skip := map[string]bool{}
	for _, h := range repaired {
		skip[h] = true
	}
	for _, h := range sel.Hosts {
		if skip[h.Name] {
			continue
		}
		spec, diags := sel.Plan.ForHost(h, sel.Plan.Revision)
		if diags.HasErrors() {
			continue
		}
		conn, err := w.Connect(ctx, h)
		if err != nil {
			fmt.Fprintf(ios.Out, "%s: cannot check for run %s's lock: %v\n", h.Name, deadRun, err)
			continue
		}
		li, err := journal.ReadHostLock(ctx, conn, spec.StateDir, sel.Plan.Name)
		if err != nil || li == nil || li.RunID != deadRun {
			continue
		}
		if err := journal.BreakHostLock(ctx, conn, spec.StateDir, sel.Plan.Name); err != nil {
			fmt.Fprintf(ios.Out, "%s: cannot remove run %s's lock: %v\n", h.Name, deadRun, err)
			continue
		}
		fmt.Fprintf(ios.Out, "%s: removed the lock of dead run %s\n", h.Name, deadRun)
	}
}
