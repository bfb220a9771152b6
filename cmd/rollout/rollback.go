package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/rollback"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
)

// newRollbackCmd is `rollout rollback`: apply's run (applyRun) of an
// earlier revision, --to or the one rollbackTarget chooses.
func newRollbackCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	cmd, o := newRunCmd(ios, g, "rollback")
	cmd.Short = "Deploy an earlier revision through the same safe pipeline (never a revert commit)"
	// --revision names the revision a command deploys or looks at, as for
	// apply and plan; --to is the same
	cmd.Flags().StringVar(&o.To, "revision", "", "the revision to go back to: a full SHA or a tag (default: the last revision that completed on every targeted host before the current one)")
	cmd.Flags().StringVar(&o.To, "to", "", "same as --revision")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why you roll back; kept in the journal and in each host's marker, and shown by status and by the apply it refuses")
	o.Scope.bind(cmd, "")
	return cmd
}

// rollbackTarget is --to, or the revision rollback.Target chooses for the
// targeted hosts from the plan's journal and, failing that, the hosts' own
// records (read over SSH only then).
func rollbackTarget(ctx context.Context, ios *IOStreams, o *applyOptions) (string, error) {
	if o.To != "" {
		return o.To, nil
	}
	sel, err := rollout.Select(rollout.Request{PlanFile: o.PlanFile, Limit: o.Scope.Limit})
	if err != nil {
		return "", err
	}
	var names []string
	for _, h := range sel.Hosts {
		names = append(names, h.Name)
	}
	store, err := openStore(ctx, o.GlobalOptions, o.PlanFile, sel.Plan)
	if err != nil {
		return "", err
	}
	defer store.Close()
	c, err := rollback.Target(ctx, o.PlanFile, names, rollback.Sources{
		Events: func(ctx context.Context) ([]event.Event, error) { return store.Events(ctx, sel.Plan.Name) },
		Records: func(ctx context.Context) ([]rollback.Record, error) {
			states, err := readStates(ctx, o.GlobalOptions, o.PlanFile, o.Scope.Limit)
			if err != nil {
				return nil, err
			}
			var recs []rollback.Record
			for _, hs := range states {
				r := rollback.Record{Host: hs.Name}
				if hs.State != nil {
					r.Previous = hs.State.PreviousRevision
				}
				recs = append(recs, r)
			}
			return recs, nil
		},
	})
	if err != nil {
		return "", rollout.AsRefusal(err)
	}
	fmt.Fprintln(ios.Err, c.Why())
	return c.Revision, nil
}
