package validate

import (
	"fmt"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
)

// Rule names a safety rule that needs no host.
type Rule string

const (
	// RuleScope: a run needs a batch size or a --limit; all hosts at once
	// is refused.
	RuleScope Rule = "scope"
	// RuleDrain: a plan says how a host leaves its load balancer (drain
	// "none" included), or it is refused.
	RuleDrain Rule = "drain"
	// RulePoolOfOne: a pool of one host cannot be rolled without downtime
	// unless allow_downtime = true.
	RulePoolOfOne Rule = "pool-of-one"
)

// A Problem is a safety rule a plan breaks, in the one wording every
// command uses: Text says what and why, Fix how to go on (commands or
// edits, one per line).
type Problem struct {
	Rule Rule
	Text string
	Fix  []string
}

// Scope is what a command was asked to do with a plan, for Safety.
type Scope struct {
	Command  string            // "apply" or "rollback": the command the fixes name
	PlanFile string            // as the user gave it
	Pool     []*inventory.Host // the hosts the plan's pattern selects (before --limit)
	Limited  bool              // --limit given
	Limit    string            // the --limit as given, for the refusal
	Selected int               // the hosts --limit leaves (0 = not known)
	Batched  bool              // a batch size, the plan's or --batch
}

// Safety returns the rules apply and rollback enforce before touching any
// host that plan p breaks for scope s; validate reports the same ones.
func Safety(p *plan.Plan, s Scope) []Problem {
	var out []Problem
	// a limit that leaves every host of the pattern (--limit all, a group
	// that holds them all) is no limit: all of them would change at once
	whole := s.Limited && s.Selected > 1 && s.Selected >= len(s.Pool)
	if (!s.Limited || whole) && !s.Batched {
		first := "HOST"
		if len(s.Pool) > 0 {
			first = s.Pool[0].Name
		}
		text := fmt.Sprintf("no scope: plan %q sets no batch and no --limit was given, so this would change all %d hosts of %q at once; rollout refuses to run without an explicit host limit or batch size",
			p.Name, len(s.Pool), p.Hosts)
		if whole {
			text = fmt.Sprintf("no scope: plan %q sets no batch and --limit %q selects every host of %q (all %d), so this would change them all at once; a limit that selects the whole pattern is no limit: rollout refuses to run without an explicit host limit or batch size",
				p.Name, s.Limit, p.Hosts, len(s.Pool))
		}
		out = append(out, Problem{Rule: RuleScope,
			Text: text,
			Fix: []string{
				fmt.Sprintf("rollout %s %s --batch 1", s.Command, s.PlanFile),
				fmt.Sprintf(`rollout %s %s --limit %s  # or set batch = [1, "25%%"] in the plan`, s.Command, s.PlanFile, first),
			}})
	}
	if !p.HasDrain {
		out = append(out, Problem{Rule: RuleDrain,
			Text: fmt.Sprintf("plan %q has no drain block: rollout will not change a host that may be serving traffic without saying how it leaves the load balancer", p.Name),
			Fix:  []string{"rollout validate " + s.PlanFile + `  # after adding drain "haproxy" { ... }, drain "command" { ... }, or drain "none" { reason = "..." } to the plan`}})
	}
	if len(s.Pool) == 1 && !p.AllowDowntime {
		out = append(out, Problem{Rule: RulePoolOfOne,
			Text: fmt.Sprintf("plan %q: hosts = %q selects a single host (%s): a pool of one cannot be rolled without downtime", p.Name, p.Hosts, s.Pool[0].Name),
			Fix:  []string{"rollout validate " + s.PlanFile + "  # after adding allow_downtime = true to the plan, if downtime is accepted"}})
	}
	return out
}
