// Package datacenters_test checks the two-datacenter example: the plan
// parses, its waves divide the plan's hosts without overlap and in order,
// and the hooks are where the README says.
package datacenters_test

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
)

func TestWavesDivideTheFleet(t *testing.T) {
	p, diags := plan.Load("rollout.hcl")
	if diags.HasErrors() {
		t.Fatalf("rollout.hcl: %v", diags)
	}
	inv, err := inventory.Load("inventory.ini")
	if err != nil {
		t.Fatal(err)
	}
	all, err := inv.Select(p.Hosts)
	if err != nil || len(all) != 5 {
		t.Fatalf("hosts = %v, %v", all, err)
	}
	seen := map[string]string{}
	var order []string
	for _, w := range p.Waves {
		hosts, err := inv.Select(w.Hosts)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if prev, dup := seen[h.Name]; dup {
				t.Errorf("%s in waves %s and %s", h.Name, prev, w.Name)
			}
			seen[h.Name] = w.Name
			order = append(order, w.Name+":"+h.Name)
		}
	}
	if got := strings.Join(order, " "); got != "dc1:web1 dc1:web2 dc2:web3 dc2:web4 dc2:web5" {
		t.Errorf("waves: %s", got)
	}
	if len(seen) != len(all) {
		t.Errorf("the waves hold %d of the %d hosts", len(seen), len(all))
	}
	dc2 := p.Waves[1]
	if !dc2.Approve || dc2.Pause.String() != "10m0s" || len(dc2.Batch) != 1 || !dc2.Batch[0].Percent {
		t.Errorf("wave dc2: %+v", dc2)
	}
	if p.OnFailure != "rollback_all" || len(p.Hooks) != 2 || p.Hooks[0].On != "db1" || p.Hooks[0].At != plan.HookBeforeRun || p.Hooks[1].At != plan.HookAfterBatch {
		t.Errorf("on_failure %q, hooks %+v", p.OnFailure, p.Hooks)
	}
	cmd, err := p.Hooks[0].CommandAt("9fceb02d0ae598e95dc970b74767f19372d61af8")
	if err != nil || cmd != "/usr/local/bin/app-migrate --to 9fceb02d0ae598e95dc970b74767f19372d61af8" {
		t.Errorf("migrate command %q, %v", cmd, err)
	}
}
