package plan

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/rollout-sh/rollout/internal/shell"
)

// Hook is a hook block: a command run once per run (or once per batch),
// never per host, at a point of the run.
type Hook struct {
	Name    string
	At      string        // one of HookAt
	Command string        // a shell command, as written (CommandAt evaluates ${revision})
	On      string        // an inventory host to run it on over SSH; "" = the controller, in the plan's directory
	Timeout time.Duration // how long it may run
	// DefRange and OnRange are where the block and its on attribute are
	// written, for the refusal of an on that names no host
	DefRange, OnRange hcl.Range

	command hcl.Expression
	plan    string
}

// CommandAt is the hook's command for a run of revision: ${plan.name} and
// ${revision} interpolated, each as one shell word (like every command).
func (h *Hook) CommandAt(revision string) (string, error) {
	if h.command == nil {
		return h.Command, nil
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"plan":     cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(shell.Quote(h.plan))}),
		"revision": cty.StringVal(shell.Quote(revision)),
	}}
	v, diags := h.command.Value(ctx)
	if diags.HasErrors() {
		return "", fmt.Errorf("hook %q: command: %s", h.Name, diags.Error())
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		return "", fmt.Errorf("hook %q: command is not a string", h.Name)
	}
	return s.AsString(), nil
}

// When a hook runs.
const (
	HookBeforeRun  = "before_run"  // after preflight, before the first drain
	HookAfterBatch = "after_batch" // after each batch in which every host succeeded
	HookAfterRun   = "after_run"   // after the last batch, when every batch succeeded
	HookOnFailure  = "on_failure"  // when the run failed or was stopped; best effort
)

// HookAt lists the values of a hook's at, in the order a run reaches them.
var HookAt = []string{HookBeforeRun, HookAfterBatch, HookAfterRun, HookOnFailure}

// DefaultHookTimeout bounds a hook that sets no timeout.
const DefaultHookTimeout = 10 * time.Minute

var hookSchema = &hcl.BodySchema{Attributes: attrs("at", "command", "on", "timeout")}

var hookRequired = [][2]string{{"at", `at = "before_run"`}, {"command", `command = "./migrate up"`}}

func (d *decoder) hook(p *Plan, b *hcl.Block, seen map[string]hcl.Range) *Hook {
	name := b.Labels[0]
	if first, dup := seen[name]; dup {
		d.errorf(b.LabelRanges[0], "Duplicate hook block", "Each hook block needs its own name; %q is already used at %s.", name, first)
		return nil
	}
	seen[name] = b.DefRange
	content, diags := b.Body.Content(hookSchema)
	d.add(diags)
	d.require(b, content.Attributes, hookRequired, diags)
	a := content.Attributes
	ctx := planContext(p.Name)
	h := &Hook{Name: name, Timeout: DefaultHookTimeout, DefRange: b.DefRange}
	if s, ok := d.planString(a["at"], ctx, `when the hook runs, such as "before_run"`); ok {
		known := false
		for _, at := range HookAt {
			known = known || s == at
		}
		if !known {
			d.errorf(a["at"].Expr.Range(), "Unknown hook time",
				`at must be "before_run" (after preflight, before the first drain), "after_batch" (after each batch that succeeded), "after_run" (after every batch succeeded) or "on_failure" (the run failed or was stopped); got %q.`, s)
		}
		h.At = s
	}
	if c := a["command"]; c != nil {
		// plan-wide, but a run's revision is known when it runs:
		// ${revision} is allowed, host.* is not
		ok := true
		for _, tr := range c.Expr.Variables() {
			if root := tr.RootName(); root == "host" {
				d.errorf(tr.SourceRange(), "Per-host value in a plan-wide attribute",
					"A hook's command is evaluated once for the run, not per host, so host.* is not available in it; ${plan.name} and ${revision} are.")
				ok = false
			}
		}
		rctx := planContext(p.Name)
		rctx.Variables["revision"] = cty.StringVal("0123456789abcdef0123456789abcdef01234567")
		if ok {
			if s, ok := d.nonEmpty(c, rctx, `a shell command such as "./migrate up"`); ok {
				h.Command = s
				h.command, h.plan = c.Expr, p.Name
			}
		}
	}
	if a["on"] != nil {
		if s, ok := d.planString(a["on"], ctx, `an inventory host such as "db1"`); ok {
			h.On, h.OnRange = s, a["on"].Expr.Range()
		}
	}
	if a["timeout"] != nil {
		if t, ok := d.duration(a["timeout"], ctx, true); ok {
			h.Timeout = t
		}
	}
	return h
}
