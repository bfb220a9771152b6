package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/backend"
	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/rollout"
)

// unlockOptions: the plan file and --limit (planHosts).
type unlockOptions struct{ planHosts }

func newUnlockCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &unlockOptions{planHosts{GlobalOptions: g}}
	return o.command("unlock [PLAN]", "Remove a stale lock left by a dead run (asks; --yes in CI)", func(ctx context.Context, sel *rollout.Selection, store backend.Store) error {
		return unlockRun(ctx, ios, o, sel, store)
	})
}

func unlockRun(ctx context.Context, ios *IOStreams, o *unlockOptions, sel *rollout.Selection, store backend.Store) error {
	w, err := wire.New(sel.Inventory, wireOptions(o.GlobalOptions, sel.Plan))
	if err != nil {
		return err
	}
	defer w.Close()
	name := sel.Plan.Name
	locks, err := rollout.FindLocks(ctx, sel, store, w.Env(nil), func(host string, err error) {
		fmt.Fprintf(ios.Err, "%s: %v\n", host, err)
	})
	if err != nil {
		return err
	}
	if len(locks) == 0 {
		fmt.Fprintf(ios.Out, "plan %q is not locked\n", name)
		return nil
	}
	for _, l := range locks {
		fmt.Fprintf(ios.Out, "%s: held by %s (run %s, pid %d) since %s, renewed %s\n", l.Where, l.Info.Owner, l.Info.RunID, l.Info.PID,
			l.Info.Acquired.Local().Format("15:04:05"), l.Info.Renewed.Local().Format("15:04:05"))
	}
	if !o.Yes {
		if !ios.CanPrompt() {
			return &rollout.Refusal{Problem: "unlock needs a confirmation, but stdin is not a terminal", Next: "rollout unlock " + o.PlanFile + " --yes"}
		}
		if !confirm(ios, "remove these locks? Only do this if that run is dead. [y/N] ") {
			return exitError{rollout.ErrRefused}
		}
	}
	for _, l := range locks {
		if err := l.Break(ctx); err != nil {
			return fmt.Errorf("%s: %w", l.Where, err)
		}
		fmt.Fprintf(ios.Out, "%s: unlocked\n", l.Where)
	}
	// the run that held them may have left hosts drained
	fmt.Fprintf(ios.Out, "next: %s\n", withFlags("rollout repair "+shellWord(o.PlanFile)+" --yes  # puts back what that run left, if anything; then rerun your command", o.hintFlags()))
	return nil
}
