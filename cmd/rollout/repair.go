package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
)

type repairOptions struct {
	*GlobalOptions
	PlanFile string
	Limit    string
}

func newRepairCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &repairOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "repair [PLAN]",
		Short: "Put hosts a dead or failed run left drained or half-done back to their state before it",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return repairRun(cmd.Context(), ios, o)
		},
	}
	cmd.Flags().StringVarP(&o.Limit, "limit", "l", "", "only these hosts")
	return cmd
}

func repairRun(ctx context.Context, ios *IOStreams, o *repairOptions) error {
	sel, err := rollout.Select(rollout.Request{PlanFile: o.PlanFile, Limit: o.Limit})
	if err != nil {
		return err
	}
	events, err := journal.Read(journalPath(o.GlobalOptions, o.PlanFile))
	if err != nil {
		return err
	}
	runs := journal.Runs(events)
	if len(runs) == 0 {
		fmt.Fprintln(ios.Out, "the journal records no run: nothing to repair")
		return nil
	}
	in := map[string]bool{}
	for _, h := range sel.Hosts {
		in[h.Name] = true
	}
	// the last run that touched a selected host: a later run that was
	// refused (say, by the dead run's lock) or skipped every host changed
	// nothing and must not hide it
	last := runs[len(runs)-1]
	for i := len(runs) - 1; i >= 0; i-- {
		if touchedAny(runs[i], in) {
			last = runs[i]
			break
		}
	}
	var todo []string
	for _, h := range last.Hosts {
		if in[h.Host] && (h.Outcome == event.OutcomeDrained || h.Outcome == event.OutcomeUnknown) {
			todo = append(todo, h.Host)
		}
	}
	state := "finished"
	if !last.Finished {
		state = "did not finish"
	}
	if len(todo) == 0 {
		fmt.Fprintf(ios.Out, "last run %s %s and left no host drained or in an unknown state: nothing to repair\n", last.ID, state)
		return nil
	}
	fmt.Fprintf(ios.Out, "last run %s %s; to repair: %s\n", last.ID, state, strings.Join(todo, ", "))
	if !o.Yes {
		if !ios.CanPrompt() {
			return &rollout.Refusal{Problem: "repair needs a confirmation, but stdin is not a terminal", Next: "rollout repair " + o.PlanFile + " --yes"}
		}
		if !confirm(ios, "put them back to their state before that run and into the load balancer? [y/N] ") {
			return exitError{code: rollout.ExitRefused}
		}
	}
	w, err := wire.New(sel.Inventory, wireOptions(o.GlobalOptions))
	if err != nil {
		return err
	}
	defer w.Close()
	release, err := lockForRepair(ctx, o, sel, w, todo)
	if err != nil {
		return err
	}
	defer release()
	failed := 0
	for _, name := range todo {
		h := sel.Inventory.Host(name)
		r := rollout.Repair(ctx, sel.Plan, h, w.Env(nil), last.ID)
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
	if failed > 0 {
		return exitError{code: rollout.ExitFailed}
	}
	fmt.Fprintf(ios.Out, "repaired; check with: rollout status %s\n", o.PlanFile)
	return nil
}

// touchedAny reports whether run entered a pipeline phase on a host in in.
func touchedAny(run journal.RunSummary, in map[string]bool) bool {
	for _, h := range run.Hosts {
		if in[h.Host] && h.Phase != "" {
			return true
		}
	}
	return false
}
