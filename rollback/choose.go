// Package rollback is where going back is decided: which revision
// `rollout rollback` deploys (Target: the journal, then the hosts' own
// records), and, before a run with on_failure = "rollback" touches
// anything, that every host's way back can be rendered (Rehearse).
// Rollback never writes to the repository: it deploys an earlier commit
// through the same pipeline as apply, and a host that fails after restart
// goes back through the rollback states of that pipeline
// (rollout/decide.go, NextStep).
package rollback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Refusal is why rollback cannot go ahead, before any host was touched,
// and the command to run next. The engine and the CLI show it as their
// refusal (exit 2).
type Refusal struct {
	Problem string
	Next    string
}

func (r *Refusal) Error() string { return r.Problem + "\n  next: " + r.Next }

// ErrNoEarlier is returned when no earlier revision completed on every
// targeted host.
var ErrNoEarlier = errors.New("no earlier revision completed on every targeted host")

// Completion is a host that finished a run on a revision.
type Completion struct {
	Host     string
	Revision string
	Time     time.Time
}

// Completions extracts, from journal events, every time a host ended up
// serving a revision: host_done ok or skipped (already there).
func Completions(events []event.Event) []Completion {
	var out []Completion
	for _, e := range events {
		if e.Event != event.HostDone || e.Revision == "" {
			continue
		}
		switch event.Outcome(e.Status) {
		case event.OutcomeOK, event.OutcomeSkipped:
			out = append(out, Completion{Host: e.Host, Revision: e.Revision, Time: e.Time})
		}
	}
	return out
}

// Choose returns the last revision, before the current one, that completed
// on every one of hosts. The current revision is the one most recently
// completed on any of them.
func Choose(cs []Completion, hosts []string) (current, target string, err error) {
	in := map[string]bool{}
	for _, h := range hosts {
		in[h] = true
	}
	var mine []Completion
	for _, c := range cs {
		if in[c.Host] {
			mine = append(mine, c)
		}
	}
	if len(mine) == 0 {
		return "", "", fmt.Errorf("%w: the journal has no completed run for these hosts", ErrNoEarlier)
	}
	sort.SliceStable(mine, func(i, j int) bool { return mine[i].Time.Before(mine[j].Time) })
	current = mine[len(mine)-1].Revision
	done := map[string]map[string]bool{} // revision → hosts
	for _, c := range mine {
		if done[c.Revision] == nil {
			done[c.Revision] = map[string]bool{}
		}
		done[c.Revision][c.Host] = true
	}
	seen := map[string]bool{}
	for i := len(mine) - 1; i >= 0; i-- {
		rev := mine[i].Revision
		if rev == current || seen[rev] {
			continue
		}
		seen[rev] = true
		all := true
		for _, h := range hosts {
			if !done[rev][h] {
				all = false
				break
			}
		}
		if all {
			return current, rev, nil
		}
	}
	return current, "", fmt.Errorf("%w (current: %.7s)", ErrNoEarlier, current)
}

// Record is one host's own record of where it was: the revision its state
// marker names as the one before its current one. Previous is "" when the
// host records none (or could not be read).
type Record struct {
	Host     string
	Previous string
}

// Sources are where Target looks, in order.
type Sources struct {
	// Events reads the plan's journal; a journal that does not exist yet
	// (os.ErrNotExist) has no events.
	Events func(ctx context.Context) ([]event.Event, error)
	// Records reads the hosts' own records; it is asked only when the
	// journal cannot choose.
	Records func(ctx context.Context) ([]Record, error)
}

// Choice is the revision rollback deploys, and where it came from.
type Choice struct {
	Revision string
	// Current is the revision the hosts are at, as the journal knows it;
	// "" when the choice came from the hosts' records.
	Current string
}

// Why says how the revision was chosen, for the operator.
func (c Choice) Why() string {
	if c.Current != "" {
		return fmt.Sprintf("rollback: hosts are at %s; going back to %s (the last revision every targeted host completed before it, from the journal)",
			plan.ShortRev(c.Current), plan.ShortRev(c.Revision))
	}
	return fmt.Sprintf("rollback: going back to %s (the hosts' recorded previous revision)", plan.ShortRev(c.Revision))
}

// Target chooses the revision to go back to for hosts (the targeted hosts
// of planFile): the last revision that completed on every one of them
// before the current one, from the journal; failing that, the previous
// revision every host records, when they all record the same one. Anything
// else is a *Refusal asking for --to.
func Target(ctx context.Context, planFile string, hosts []string, src Sources) (Choice, error) {
	events, err := src.Events(ctx)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Choice{}, fmt.Errorf("reading the journal: %w", err)
	}
	cur, target, jerr := Choose(Completions(events), hosts)
	if jerr == nil {
		return Choice{Revision: target, Current: cur}, nil
	}
	recs, err := src.Records(ctx)
	if err != nil {
		return Choice{}, err
	}
	prev, err := Agreed(recs, jerr, planFile)
	if err != nil {
		return Choice{}, err
	}
	return Choice{Revision: prev}, nil
}

// Agreed is the previous revision every host records, or a *Refusal naming
// the first host that records none (after why, the journal's reason) or
// that records a different one.
func Agreed(recs []Record, why error, planFile string) (string, error) {
	prev := ""
	for _, r := range recs {
		if r.Previous == "" {
			return "", &Refusal{Problem: fmt.Sprintf("rollback: %v, and %s records no previous revision", why, r.Host),
				Next: fmt.Sprintf("rollout history %s  # shows the revisions of past runs; then name one: rollout rollback %s --to TAG-OR-SHA", planFile, planFile)}
		}
		if prev != "" && prev != r.Previous {
			return "", &Refusal{Problem: fmt.Sprintf("rollback: hosts record different previous revisions (%s on one, %s on %s)", plan.ShortRev(prev), plan.ShortRev(r.Previous), r.Host),
				Next: fmt.Sprintf("rollout history %s  # shows the revisions of past runs; then name one: rollout rollback %s --to TAG-OR-SHA, or narrow with --limit", planFile, planFile)}
		}
		prev = r.Previous
	}
	return prev, nil
}
