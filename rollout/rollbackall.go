package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// rollbackAll is on_failure = "rollback_all" once the run halted on a
// failure: every host this run changed and recorded goes back to the
// revision it had, batch by batch in reverse order, through the same
// pipeline (drain, sessions, stage, validate, install, check, restart,
// health, undrain, record), each batch fitted to the capacity floor. The
// failed hosts themselves already rolled back in their own pipelines. A
// host with no previous revision recorded, or one the floor, a stop or a
// lost lock keeps from going back, is named in the log and keeps its
// outcome.
func (r *run) rollbackAll(ctx context.Context) {
	r.log("warn", "on_failure = rollback_all: every host this run changed goes back to the revision it had, batch by batch in reverse order")
	r.bake = 0
	var stay []string
	for i := len(r.ran) - 1; i >= 0; i-- {
		var back []string
		for _, name := range r.ran[i] {
			if r.outcomeOf(name) != event.OutcomeOK {
				continue
			}
			h := r.hosts[name]
			if h.prev == nil || h.old == nil || h.old.Revision == "" {
				stay = append(stay, name+" (no previous revision recorded)")
				continue
			}
			back = append(back, name)
		}
		for len(back) > 0 {
			if ctx.Err() != nil || r.ctl.isStopping() || r.lostCause() != nil {
				for _, n := range back {
					stay = append(stay, n+" (the run is stopping)")
				}
				back = nil
				break
			}
			members, err := r.pool(ctx, back)
			floor := 0
			if !r.pr.Plan.AllowDowntime && err == nil {
				floor = r.pr.Plan.MinServing(len(members))
			}
			var now, later []string
			reason := ""
			if err != nil {
				reason = fmt.Sprintf("cannot read the load balancer pool: %v", err)
			} else {
				now, later, reason = FitBatch(back, members, floor)
			}
			if reason != "" {
				for _, n := range back {
					stay = append(stay, n+" ("+reason+")")
				}
				back = nil
				break
			}
			r.revertBatch(ctx, i+1, now)
			back = later
		}
	}
	if len(stay) > 0 {
		r.log("warn", "rollback_all: still at %s: %s", plan.ShortRev(r.pr.Revision), strings.Join(stay, "; "))
	}
}

// revertBatch takes the hosts of batch n back, in parallel.
func (r *run) revertBatch(ctx context.Context, n int, names []string) {
	r.emit(event.Event{Event: event.BatchStart, Batch: n, Hosts: names, Message: "rollback_all: back to the revision each host had"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	status := event.StatusOK
	for _, name := range names {
		h := r.hosts[name]
		live := map[string]string{}
		for _, f := range h.t.Files {
			live[f.Dest] = f.SHA256
		}
		now := &journal.HostState{Plan: r.pr.Plan.Name, Revision: r.pr.Revision, PreviousRevision: h.old.Revision}
		back := &hostInfo{t: h.prev, conn: h.conn, drainer: h.drainer, old: now, live: live, revert: true, rev: h.old.Revision}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o := r.runHost(ctx, n, back); o != event.OutcomeOK {
				mu.Lock()
				status = event.StatusFailed
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.emit(event.Event{Event: event.BatchDone, Batch: n, Status: status})
}
