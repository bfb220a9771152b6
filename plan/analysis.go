package plan

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of the analysis block.
const (
	DefaultAnalysisInterval    = 10 * time.Second
	DefaultAnalysisDeadline    = 2 * time.Minute
	DefaultAnalysisMinRequests = 50
)

// Analysis is the plan's optional canary analysis: during every ramp step
// and the bake pause, the host just changed is compared with the servers
// not yet changed, from the load balancer's own counters (kind "haproxy",
// through the drain "haproxy" block's endpoints and backend) or from a
// command's output (kind "command"). Rates are fractions (0.01 = 1%); a nil
// limit is not judged.
type Analysis struct {
	Kind    string // "haproxy" or "command"
	Command string // command: run on the controller (or Via), prints counters
	Via     string // command: run on this inventory host over SSH instead

	MaxErrorRate            *float64
	MaxErrorRateIncrease    *float64
	MaxResponseTimeIncrease *float64
	MinRequests             int
	Interval                time.Duration // how often the verdict is taken
	Deadline                time.Duration // how long a step may hold for traffic

	Def hcl.Range // where the block is, for messages
}

var analysisCommon = []string{"max_error_rate", "max_error_rate_increase", "max_response_time_increase", "min_requests", "interval", "deadline"}

var analysisSchemas = map[string]*hcl.BodySchema{
	"haproxy": {Attributes: attrs(analysisCommon...)},
	"command": {Attributes: attrs(append([]string{"command", "via"}, analysisCommon...)...)},
}

var analysisRequired = map[string][][2]string{
	"command": {{"command", `command = "metrics-query --cumulative web"`}},
}

// analysis decodes the analysis block (plan-wide: no host.* in it).
func (d *decoder) analysis(b *hcl.Block, ctx *hcl.EvalContext, drain *block) *Analysis {
	blk := d.labelled(b, analysisSchemas, analysisRequired, "analysis")
	if blk == nil {
		return nil
	}
	a := &Analysis{Kind: blk.label, MinRequests: DefaultAnalysisMinRequests,
		Interval: DefaultAnalysisInterval, Deadline: DefaultAnalysisDeadline, Def: b.DefRange}
	at := blk.attrs
	if a.Kind == "haproxy" && (drain == nil || drain.label != "haproxy") {
		d.errorf(b.DefRange, "Analysis needs an haproxy drain",
			`analysis "haproxy" reads the servers' counters from the load balancers named in a drain "haproxy" block (endpoints, backend), and this plan has none; use analysis "command" for another source.`)
	}
	if s, ok := d.planString(at["command"], ctx, "a command that prints SERVER REQUESTS ERRORS [RTIME_MS_SUM] lines"); ok {
		a.Command = s
	}
	if s, ok := d.planString(at["via"], ctx, "an inventory host name"); ok {
		a.Via = s
	}
	a.MaxErrorRate = d.rate(at["max_error_rate"], ctx, 100)
	a.MaxErrorRateIncrease = d.rate(at["max_error_rate_increase"], ctx, 100)
	a.MaxResponseTimeIncrease = d.rate(at["max_response_time_increase"], ctx, 1000)
	if d.planWide(at["min_requests"]) {
		if n, ok := d.integer(at["min_requests"], ctx, 1, maxQuantity, "a whole number of requests of at least 1"); ok {
			a.MinRequests = n
		}
	}
	if d.planWide(at["interval"]) {
		if dur, ok := d.duration(at["interval"], ctx, true); ok {
			a.Interval = dur
		}
	}
	if d.planWide(at["deadline"]) {
		if dur, ok := d.duration(at["deadline"], ctx, true); ok {
			a.Deadline = dur
		}
	}
	if a.Deadline < a.Interval {
		rng := b.DefRange
		if at["deadline"] != nil {
			rng = at["deadline"].Expr.Range()
		}
		d.errorf(rng, "Invalid deadline", "deadline (%s) must be at least interval (%s): a step holds for at least one interval before its first verdict.", a.Deadline, a.Interval)
	}
	if at["max_error_rate"] == nil && at["max_error_rate_increase"] == nil && at["max_response_time_increase"] == nil {
		d.errorf(b.DefRange, "Analysis without limits",
			`analysis %q judges nothing: set at least one of max_error_rate (e.g. "1%%"), max_error_rate_increase (e.g. "0.5%%") or max_response_time_increase (e.g. "25%%").`, a.Kind)
	}
	return a
}

// rate decodes a percentage string such as "1%" or "0.5%" into a fraction,
// at most maxPct percent.
func (d *decoder) rate(attr *hcl.Attribute, ctx *hcl.EvalContext, maxPct float64) *float64 {
	if !d.planWide(attr) {
		return nil
	}
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil
	}
	const what = `a percentage string such as "1%" or "0.5%"`
	if v.Type() != cty.String {
		d.typeError(attr, attr.Expr.Range(), what, v)
		return nil
	}
	s := strings.TrimSpace(v.AsString())
	num, isPct := strings.CutSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !isPct || err != nil || f < 0 || f > maxPct {
		d.errorf(attr.Expr.Range(), "Invalid "+attr.Name, "%s must be %s from 0%% to %s%%; got %q.", attr.Name, what, strconv.FormatFloat(maxPct, 'f', -1, 64), s)
		return nil
	}
	f /= 100
	return &f
}
