package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/backend"
	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout"
)

// repairOptions: the plan file and --limit (planHosts).
type repairOptions struct{ planHosts }

func newRepairCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &repairOptions{planHosts{GlobalOptions: g}}
	return o.command("repair [PLAN]", "Put hosts a dead or failed run left drained or half-done back to their state before it", func(ctx context.Context, sel *rollout.Selection, store backend.Store) error {
		return repairRun(ctx, ios, o, sel, store)
	})
}

func repairRun(ctx context.Context, ios *IOStreams, o *repairOptions, sel *rollout.Selection, store backend.Store) error {
	events, err := store.Events(ctx, sel.Plan.Name)
	if err != nil {
		return err
	}
	runs := journal.Runs(events)
	in := map[string]bool{}
	for _, h := range sel.Hosts {
		in[h.Name] = true
	}
	// Even with nothing to put back, repair takes the plan's locks: a run
	// that died before it touched a host (in preflight, say) still holds
	// them, and repair is the command its lock refusal names.
	todo := rollout.RepairTargets(runs, in)
	var names []string
	for _, t := range todo {
		state := "finished"
		if !t.Run.Finished {
			state = "did not finish"
		}
		fmt.Fprintf(ios.Out, "%s: %s by run %s (which %s)\n", t.Host, t.Outcome, t.Run.ID, state)
		names = append(names, t.Host)
	}
	if len(todo) > 0 && !o.Yes {
		if !ios.CanPrompt() {
			return &rollout.Refusal{Problem: "repair needs a confirmation, but stdin is not a terminal", Next: "rollout repair " + o.PlanFile + " --yes"}
		}
		if !confirm(ios, "put them back to their state before that run and into the load balancer? [y/N] ") {
			return exitError{rollout.ErrRefused}
		}
	}
	w, err := wire.New(sel.Inventory, wireOptions(o.GlobalOptions, sel.Plan))
	if err != nil {
		return err
	}
	defer w.Close()
	env := w.Env(nil)
	runID := newRunID(time.Now())
	tookOver := false // repair said it took a dead run's lock over, or removed one
	var lostMu sync.Mutex
	var lost error
	locks, err := rollout.LockForRepair(ctx, rollout.RepairLock{Sel: sel, PlanFile: o.PlanFile, Store: store, Env: env,
		Info: journal.LockInfo{Owner: owner(), PID: os.Getpid(), RunID: runID}, Forks: forks(o.GlobalOptions), Hosts: names,
		Say: func(msg string) {
			if strings.Contains(msg, "took over the lock") || strings.Contains(msg, "removed the lock") {
				tookOver = true
			}
			fmt.Fprintln(ios.Out, msg)
		},
		Lost: func(err error) {
			lostMu.Lock()
			defer lostMu.Unlock()
			if lost == nil {
				lost = err
			}
		}})
	if err != nil {
		return err
	}
	defer locks.Release(ctx)
	if len(todo) == 0 {
		what := "no run left a selected host drained or in an unknown state: nothing to put back"
		if len(runs) == 0 {
			what = "the journal records no run: nothing to put back"
		}
		if tookOver {
			what += "; the dead run's locks are gone: the plan is free"
		}
		fmt.Fprintln(ios.Out, what)
		return nil
	}
	// a repair is a run of its own in the journal: history lists it, and
	// status attributes the hosts' state to it
	rj := &rollout.RepairJournal{Store: store, Plan: sel.Plan.Name, RunID: runID, Owner: owner(), Operator: o.operator()}
	if err := rj.Start(ctx, todo); err != nil {
		return fmt.Errorf("repair: nothing was touched: %w", err)
	}
	results := rollout.RepairAll(ctx, sel, todo, env, forks(o.GlobalOptions))
	failed := 0
	for i, t := range todo {
		name := t.Host
		r := results[i]
		switch {
		case r.Err != nil:
			failed++
			fmt.Fprintf(ios.Out, "%s: cannot fix: %v\n", name, r.Err)
		case len(r.Restored) > 0:
			fmt.Fprintf(ios.Out, "%s: restored %s, restarted, healthy, back in the load balancer\n", name, strings.Join(r.Restored, ", "))
		default:
			fmt.Fprintf(ios.Out, "%s: files as recorded; back in the load balancer\n", name)
		}
	}
	lostMu.Lock()
	defer lostMu.Unlock()
	check := withFlags("rollout status "+shellWord(o.PlanFile), o.hintFlags())
	record := func(code int, message, next string) {
		if err := rj.Done(ctx, todo, results, code, message, next); err != nil {
			fmt.Fprintf(ios.Err, "warning: repair %s could not journal how it ended: %v\n", runID, err)
		}
	}
	if lost != nil {
		// another run may have started on these hosts meanwhile
		msg := fmt.Sprintf("repair: %v", lost)
		record(rollout.ExitFailed, msg, check)
		fmt.Fprintf(ios.Out, "%s; look before anything else: %s\n", msg, check)
		return exitError{errReported}
	}
	if failed > 0 {
		record(rollout.ExitFailed, fmt.Sprintf("%d host(s) could not be fixed", failed), withFlags("rollout repair "+shellWord(o.PlanFile), o.hintFlags()))
		return exitError{errReported}
	}
	record(rollout.ExitOK, "repaired", check)
	fmt.Fprintf(ios.Out, "repaired (run %s); check with: %s\n", runID, check)
	return nil
}

// forks is --forks, or the default when it is not positive.
func forks(g *GlobalOptions) int {
	if g.Forks > 0 {
		return g.Forks
	}
	return rollout.DefaultForks
}
