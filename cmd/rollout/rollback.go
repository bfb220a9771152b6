package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollback"
	"github.com/rollout-sh/rollout/rollout"
)

// rollbackTarget is --to, or the last revision that completed on every
// targeted host before the current one: the journal first, then the hosts'
// previous_revision.
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
	events, err := store.Events(ctx, sel.Plan.Name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the journal: %w", err)
	}
	cur, target, jerr := rollback.Choose(rollback.Completions(events), names)
	if jerr == nil {
		fmt.Fprintf(ios.Err, "rollback: hosts are at %s; going back to %s (the last revision every targeted host completed before it, from the journal)\n", plan.ShortRev(cur), plan.ShortRev(target))
		return target, nil
	}
	// the hosts' own record
	states, err := readStates(ctx, o.GlobalOptions, o.PlanFile, o.Scope.Limit)
	if err != nil {
		return "", err
	}
	prev := ""
	for _, hs := range states {
		if hs.State == nil || hs.State.PreviousRevision == "" {
			return "", &rollout.Refusal{Problem: fmt.Sprintf("rollback: %v, and %s records no previous revision", jerr, hs.Name),
				Next: fmt.Sprintf("name the revision: rollout rollback %s --to TAG-OR-SHA", o.PlanFile)}
		}
		if prev != "" && prev != hs.State.PreviousRevision {
			return "", &rollout.Refusal{Problem: fmt.Sprintf("rollback: hosts record different previous revisions (%s on one, %s on %s)", plan.ShortRev(prev), plan.ShortRev(hs.State.PreviousRevision), hs.Name),
				Next: fmt.Sprintf("name the revision: rollout rollback %s --to TAG-OR-SHA, or narrow with --limit", o.PlanFile)}
		}
		prev = hs.State.PreviousRevision
	}
	fmt.Fprintf(ios.Err, "rollback: going back to %s (the hosts' recorded previous revision)\n", plan.ShortRev(prev))
	return prev, nil
}
