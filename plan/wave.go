package plan

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Wave is a wave block: a part of the plan's hosts that rolls, batch by
// batch, before the next wave starts (a datacenter, a tier). Waves run in
// the order written.
type Wave struct {
	Name string
	// Hosts is a host pattern, intersected with the plan's hosts; "" (only
	// the last wave may leave it out) takes every host no other wave has.
	Hosts   string
	Batch   []Quantity    // nil: the plan's batch (or --batch)
	Pause   time.Duration // wait this long after the previous wave before this one starts
	Approve bool          // a person approves before this wave starts
	// DefRange is where the block is written, HostsRange its hosts.
	DefRange, HostsRange hcl.Range
}

var waveSchema = &hcl.BodySchema{Attributes: attrs("hosts", "batch", "pause", "approve")}

func (d *decoder) wave(p *Plan, b *hcl.Block, seen map[string]hcl.Range) *Wave {
	name := b.Labels[0]
	if first, dup := seen[name]; dup {
		d.errorf(b.LabelRanges[0], "Duplicate wave block", "Each wave block needs its own name; %q is already used at %s.", name, first)
		return nil
	}
	seen[name] = b.DefRange
	content, diags := b.Body.Content(waveSchema)
	d.add(diags)
	a := content.Attributes
	ctx := planContext(p.Name)
	w := &Wave{Name: name, DefRange: b.DefRange}
	if a["hosts"] != nil {
		if s, ok := d.nonEmpty(a["hosts"], ctx, `a host pattern such as "dc1"`); ok {
			w.Hosts, w.HostsRange = s, a["hosts"].Expr.Range()
		}
	}
	if a["batch"] != nil {
		if qs, ok := d.batch(a["batch"], ctx); ok {
			w.Batch = qs
		}
	}
	if a["pause"] != nil {
		if t, ok := d.duration(a["pause"], ctx, false); ok {
			w.Pause = t
		}
	}
	if a["approve"] != nil {
		if v, ok := d.boolean(a["approve"], ctx); ok {
			w.Approve = v
		}
	}
	return w
}

// checkWaves: only the last wave may leave hosts out (it takes the rest).
func (d *decoder) checkWaves(waves []*Wave) {
	for i, w := range waves {
		if w.Hosts == "" && i < len(waves)-1 {
			d.errorf(w.DefRange, "Wave without hosts",
				"wave %q sets no hosts. Only the last wave may leave hosts out (it then takes every host no other wave has); give this one a host pattern such as hosts = \"dc1\".", w.Name)
		}
	}
}
