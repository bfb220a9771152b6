package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout"
)

type unlockOptions struct {
	*GlobalOptions
	PlanFile string
	Limit    string
}

func newUnlockCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &unlockOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "unlock [PLAN]",
		Short: "Remove a stale lock left by a dead run (asks; --yes in CI)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return unlockRun(cmd.Context(), ios, o)
		},
	}
	cmd.Flags().StringVarP(&o.Limit, "limit", "l", "", "only these hosts")
	return cmd
}

func unlockRun(ctx context.Context, ios *IOStreams, o *unlockOptions) error {
	sel, err := rollout.Select(rollout.Request{PlanFile: o.PlanFile, Limit: o.Limit})
	if err != nil {
		return err
	}
	store, err := openStore(ctx, o.GlobalOptions, o.PlanFile, sel.Plan)
	if err != nil {
		return err
	}
	defer store.Close()
	name := sel.Plan.Name
	type held struct {
		where string
		info  *journal.LockInfo
		brk   func() error
	}
	var locks []held
	if li, err := store.ReadLock(ctx, name); err != nil {
		return err
	} else if li != nil {
		locks = append(locks, held{store.Describe(), li, func() error { return store.BreakLock(ctx, name) }})
	}
	w, err := wire.New(sel.Inventory, wireOptions(o.GlobalOptions))
	if err != nil {
		return err
	}
	defer w.Close()
	env := w.Env(nil)
	for _, h := range sel.Hosts {
		spec, diags := sel.Plan.ForHost(h, sel.Plan.Revision)
		if diags.HasErrors() {
			return &rollout.DiagError{Diags: diags, Sources: sel.Sources}
		}
		conn, err := env.Connect(ctx, h)
		if err != nil {
			fmt.Fprintf(ios.Err, "%s: cannot check its lock: %v\n", h.Name, err)
			continue
		}
		li, err := journal.ReadHostLock(ctx, conn, spec.StateDir, name)
		if err != nil {
			fmt.Fprintf(ios.Err, "%s: %v\n", h.Name, err)
			continue
		}
		if li != nil {
			locks = append(locks, held{h.Name, li, func() error { return journal.BreakHostLock(ctx, conn, spec.StateDir, name) }})
		}
	}
	if len(locks) == 0 {
		fmt.Fprintf(ios.Out, "plan %q is not locked\n", name)
		return nil
	}
	for _, l := range locks {
		fmt.Fprintf(ios.Out, "%s: held by %s (run %s, pid %d) since %s, renewed %s\n", l.where, l.info.Owner, l.info.RunID, l.info.PID,
			l.info.Acquired.Local().Format("15:04:05"), l.info.Renewed.Local().Format("15:04:05"))
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
		if err := l.brk(); err != nil {
			return fmt.Errorf("%s: %w", l.where, err)
		}
		fmt.Fprintf(ios.Out, "%s: unlocked\n", l.where)
	}
	return nil
}
