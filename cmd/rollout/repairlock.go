package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout"
)

// lockForRepair takes the plan's locks the way apply does (locally, and on
// every host to repair), so that repair never restores, restarts or
// undrains a host that a live run is working on: the last run in the
// journal may still be running. A lock left by a dead run refuses too,
// until it expires or `rollout unlock` removes it. The returned function
// releases what was taken.
func lockForRepair(ctx context.Context, o *repairOptions, sel *rollout.Selection, w *wire.Wiring, store rollout.Backend, hosts []string) (func(), error) {
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
	held, err := store.Lock(ctx, name, info)
	if err != nil {
		return nil, refusal(err)
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
	return release, nil
}
