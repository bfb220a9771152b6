package rollout

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
)

// RolledBack is what the hosts' markers say about a revision that a
// rollback took them back from.
type RolledBack struct {
	Mark  journal.RollbackMark // the latest mark naming the revision
	Hosts []string             // the hosts whose marker carries it
}

// RolledBackFrom finds, in the markers of the hosts (by name, in order;
// nil: nothing recorded), the hosts rolled back from rev. Nil when none is.
func RolledBackFrom(rev string, order []string, states map[string]*journal.HostState) *RolledBack {
	var rb *RolledBack
	for _, name := range order {
		st := states[name]
		if st == nil || st.RolledBackFrom == nil || rev == "" || st.RolledBackFrom.Revision != rev || st.Revision == rev {
			continue
		}
		if rb == nil {
			rb = &RolledBack{Mark: *st.RolledBackFrom}
		} else if st.RolledBackFrom.Time.After(rb.Mark.Time) {
			rb.Mark = *st.RolledBackFrom
		}
		rb.Hosts = append(rb.Hosts, name)
	}
	return rb
}

// Describe says who rolled back, when and in which run: "rolled back on
// 2026-12-07 23:40 UTC by alice@ci-7 (run r-…): the reason".
func (rb *RolledBack) Describe() string {
	s := fmt.Sprintf("rolled back on %s by %s (run %s)", rb.Mark.Time.UTC().Format("2006-01-02 15:04 UTC"), rb.Mark.By, rb.Mark.RunID)
	if rb.Mark.Reason != "" {
		s += ": " + rb.Mark.Reason
	}
	return s
}

// RevisionGroup is the hosts at one revision.
type RevisionGroup struct {
	Revision string // "" = nothing recorded
	Hosts    []string
}

// ByRevision groups the hosts by the revision their marker records, the
// largest group first (then by revision). Hosts that could not be read
// (absent from states) are left out.
func ByRevision(order []string, states map[string]*journal.HostState) []RevisionGroup {
	idx := map[string]int{}
	var out []RevisionGroup
	for _, name := range order {
		st, ok := states[name]
		if !ok {
			continue
		}
		rev := ""
		if st != nil {
			rev = st.Revision
		}
		i, seen := idx[rev]
		if !seen {
			i = len(out)
			idx[rev] = i
			out = append(out, RevisionGroup{Revision: rev})
		}
		out[i].Hosts = append(out[i].Hosts, name)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Hosts) > len(out[j].Hosts) })
	return out
}

// GroupsString is groups as one line: "1a2b3c4 (web1, web2), 9fceb02 (web3)".
func GroupsString(groups []RevisionGroup) string {
	var parts []string
	for _, g := range groups {
		rev := "nothing recorded"
		if g.Revision != "" {
			rev = plan.ShortRev(g.Revision)
		}
		parts = append(parts, rev+" ("+strings.Join(g.Hosts, ", ")+")")
	}
	return strings.Join(parts, ", ")
}

// RolledBackRefusal refuses an apply of rev when a targeted host's
// marker says a rollback took it back from rev: a CI re-run of the plan
// must not redeploy the release that was rolled back. The next: lines
// pass --retry (the user means it) or look again once the plan pins
// another revision.
func RolledBackRefusal(planFile, rev string, order []string, states map[string]*journal.HostState) error {
	rb := RolledBackFrom(rev, order, states)
	if rb == nil {
		return nil
	}
	var at []string
	for _, g := range ByRevision(order, states) {
		if g.Revision != rev && g.Revision != "" {
			at = append(at, plan.ShortRev(g.Revision))
		}
	}
	now := "hosts are at " + strings.Join(at, ", ")
	if len(at) == 0 {
		now = "no host is at it"
	}
	return &Refusal{
		Problem: fmt.Sprintf("revision %s was %s; %s on %s; nothing was touched: applying it again would redeploy what was rolled back",
			plan.ShortRev(rev), rb.Describe(), now, strings.Join(rb.Hosts, ", ")),
		Next: fmt.Sprintf("rollout apply %s --retry  # deploy %s again, on purpose", planFile, plan.ShortRev(rev)),
		More: []string{fmt.Sprintf("rollout plan %s  # once %s pins another revision (revision = a full SHA or a tag)", planFile, planFile)},
	}
}
