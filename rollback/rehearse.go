package rollback

import (
	"fmt"
	"strings"

	"github.com/rollout-sh/rollout/plan"
)

// Host is a host a run is about to change: its name and the revision its
// state marker records ("" when it records none).
type Host struct {
	Name string
	At   string
}

// RehearseNext is what to do when the rollback cannot be rehearsed.
const RehearseNext = `git fetch --all --tags  # makes the previous revision's commit available again (in the plan's repo); or set on_failure = "halt" to run without a way back`

// Rehearse renders, before anything is touched, the way back of every host
// for a run to target: the revision each host records, when it is an
// earlier one. A host that records nothing (a first deploy) or already
// records target (a resumed run) goes back to the files it had before,
// which install keeps beside them: nothing to render. It returns the
// rendered previous revisions by host name, or a *Refusal naming every
// host whose previous revision cannot be rendered.
func Rehearse[T any](hosts []Host, target string, render func(host, rev string) (T, error)) (map[string]T, error) {
	prev := map[string]T{}
	var problems []string
	for _, h := range hosts {
		if h.At == "" || h.At == target {
			continue
		}
		t, err := render(h.Name, h.At)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: previous revision %s: %v", h.Name, plan.ShortRev(h.At), err))
			continue
		}
		prev[h.Name] = t
	}
	if len(problems) > 0 {
		return nil, &Refusal{Problem: "on_failure = \"rollback\", but the rollback cannot be rehearsed: " + strings.Join(problems, "; "), Next: RehearseNext}
	}
	return prev, nil
}
