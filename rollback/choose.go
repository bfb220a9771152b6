// Package rollback chooses the revision to go back to. Rollback never
// writes to the repository: it deploys an earlier commit through the same
// pipeline as apply.
package rollback

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

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
