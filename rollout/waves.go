package rollout

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
)

// assignWaves puts every host of the pool in exactly one of the plan's
// waves: host → wave index. A host two waves match, or none (when no last
// wave takes the rest), is an error naming it and the waves.
func assignWaves(p *plan.Plan, inv *inventory.Inventory, pool []*inventory.Host) (map[string]int, hcl.Diagnostics) {
	if len(p.Waves) == 0 {
		return nil, nil
	}
	var diags hcl.Diagnostics
	inPool := map[string]bool{}
	for _, h := range pool {
		inPool[h.Name] = true
	}
	of := map[string]int{}
	rest := -1
	for i, w := range p.Waves {
		if w.Hosts == "" {
			rest = i
			continue
		}
		hosts, err := inv.Select(w.Hosts)
		if err != nil {
			rng := w.HostsRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid wave hosts", Subject: &rng,
				Detail: fmt.Sprintf("wave %q: hosts %q: %v.", w.Name, w.Hosts, err)})
			continue
		}
		for _, h := range hosts {
			if !inPool[h.Name] {
				continue // waves only divide the plan's hosts
			}
			if j, dup := of[h.Name]; dup {
				rng := w.HostsRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Host in two waves", Subject: &rng,
					Detail: fmt.Sprintf("%s is matched by wave %q (%s) and by wave %q (%s); every host must be in exactly one wave.", h.Name, p.Waves[j].Name, p.Waves[j].HostsRange, w.Name, w.HostsRange)})
				continue
			}
			of[h.Name] = i
		}
	}
	var none []string
	for _, h := range pool {
		if _, ok := of[h.Name]; ok {
			continue
		}
		if rest >= 0 {
			of[h.Name] = rest
			continue
		}
		none = append(none, h.Name)
	}
	if len(none) > 0 {
		rng := p.Waves[len(p.Waves)-1].DefRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Host in no wave", Subject: &rng,
			Detail: fmt.Sprintf("%s %s in none of the waves; every host must be in exactly one wave: add them to a wave's hosts, or leave hosts out of the last wave so that it takes the rest.", strings.Join(none, ", "), isAre(len(none)))})
	}
	return of, diags
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// Schedule is how a run's hosts go: batches in order, each in a wave.
type Schedule struct {
	Batches [][]string
	// Waves names each batch's wave ("" for a plan without waves).
	Waves []string
	// ApproveBefore: 0-based batch indexes a person approves before (the
	// first batch of a wave with approve = true); PauseBefore: how long to
	// wait before them (a wave's pause).
	ApproveBefore map[int]bool
	PauseBefore   map[int]time.Duration
}

// Schedule cuts hosts (in order, those to change) into batches: wave by
// wave when the plan has waves, each wave with its own batch or the run's.
func (pr *Prepared) Schedule(hosts []string) Schedule {
	s := Schedule{ApproveBefore: map[int]bool{}, PauseBefore: map[int]time.Duration{}}
	if len(pr.Plan.Waves) == 0 {
		s.Batches = plan.Batches(pr.BatchSpec, hosts)
		s.Waves = make([]string, len(s.Batches))
		return s
	}
	for i, w := range pr.Plan.Waves {
		var in []string
		for _, h := range hosts {
			if pr.waveOf[h] == i {
				in = append(in, h)
			}
		}
		if len(in) == 0 {
			continue // nothing to change there: its gate has nothing to guard
		}
		spec := pr.BatchSpec
		if w.Batch != nil && pr.Req.Batch == "" {
			spec = w.Batch
		}
		first := len(s.Batches)
		if w.Approve {
			s.ApproveBefore[first] = true
		}
		if w.Pause > 0 && first > 0 {
			s.PauseBefore[first] = w.Pause
		}
		for _, b := range plan.Batches(spec, in) {
			s.Batches = append(s.Batches, b)
			s.Waves = append(s.Waves, w.Name)
		}
	}
	return s
}

// WaveOf names the wave of a host ("" for a plan without waves).
func (pr *Prepared) WaveOf(host string) string {
	if len(pr.Plan.Waves) == 0 {
		return ""
	}
	return pr.Plan.Waves[pr.waveOf[host]].Name
}
