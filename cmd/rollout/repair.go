package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

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
	store, err := openStore(ctx, o.GlobalOptions, o.PlanFile, sel.Plan)
	if err != nil {
		return err
	}
	defer store.Close()
	events, err := store.Events(ctx, sel.Plan.Name)
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
	todo := repairTargets(runs, in)
	if len(todo) == 0 {
		fmt.Fprintln(ios.Out, "no run left a selected host drained or in an unknown state: nothing to repair")
		return nil
	}
	var names []string
	for _, t := range todo {
		state := "finished"
		if !t.run.Finished {
			state = "did not finish"
		}
		fmt.Fprintf(ios.Out, "%s: %s by run %s (which %s)\n", t.host, t.outcome, t.run.ID, state)
		names = append(names, t.host)
	}
	if !o.Yes {
		if !ios.CanPrompt() {
			return &rollout.Refusal{Problem: "repair needs a confirmation, but stdin is not a terminal", Next: "rollout repair " + o.PlanFile + " --yes"}
		}
		if !confirm(ios, "put them back to their state before that run and into the load balancer? [y/N] ") {
			return exitError{rollout.ErrRefused}
		}
	}
	w, err := wire.New(sel.Inventory, wireOptions(o.GlobalOptions))
	if err != nil {
		return err
	}
	defer w.Close()
	release, err := lockForRepair(ctx, ios, o, sel, w, store, names)
	if err != nil {
		return err
	}
	defer release()
	// every host at once (up to --forks), reported in order
	results := make([]rollout.RepairResult, len(todo))
	g := new(errgroup.Group)
	g.SetLimit(forks(o.GlobalOptions))
	for i, t := range todo {
		g.Go(func() error {
			results[i] = rollout.Repair(ctx, sel.Plan, sel.Inventory.Host(t.host), w.Env(nil), t.run.ID)
			return nil
		})
	}
	_ = g.Wait()
	failed := 0
	for i, t := range todo {
		name := t.host
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
	if failed > 0 {
		return exitError{errReported}
	}
	fmt.Fprintf(ios.Out, "repaired; check with: rollout status %s\n", o.PlanFile)
	return nil
}

type repairTarget struct {
	host    string
	outcome event.Outcome
	run     journal.RunSummary
}

// repairTargets picks, for each selected host, the last run that touched it
// (entered a pipeline phase): a later run that was refused, skipped it, or
// was limited to other hosts changed nothing on it and must not hide what
// an earlier run left behind. Hosts that run left drained or in an unknown
// state are the ones to repair.
func repairTargets(runs []journal.RunSummary, in map[string]bool) []repairTarget {
	last := map[string]repairTarget{}
	var order []string
	for _, r := range runs {
		for _, h := range r.Hosts {
			if !in[h.Host] || h.Phase == "" {
				continue
			}
			if _, seen := last[h.Host]; !seen {
				order = append(order, h.Host)
			}
			last[h.Host] = repairTarget{host: h.Host, outcome: h.Outcome, run: r}
		}
	}
	var out []repairTarget
	for _, name := range order {
		t := last[name]
		if t.outcome == event.OutcomeDrained || t.outcome == event.OutcomeUnknown {
			out = append(out, t)
		}
	}
	return out
}

// forks is --forks, or the default when it is not positive.
func forks(g *GlobalOptions) int {
	if g.Forks > 0 {
		return g.Forks
	}
	return rollout.DefaultForks
}
