package rollout

import (
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

func TestRepairTargetsPerHost(t *testing.T) {
	runs := []journal.RunSummary{
		{ID: "r1", Hosts: []journal.HostResult{
			{Host: "web1", Outcome: event.OutcomeDrained, Phase: event.PhaseHealth},
			{Host: "web2", Outcome: event.OutcomeNotStarted},
		}},
		// limited to web2: must not hide web1
		{ID: "r2", Hosts: []journal.HostResult{{Host: "web2", Outcome: event.OutcomeOK, Phase: event.PhaseRecord}}},
		// refused: touched nothing
		{ID: "r3", Hosts: []journal.HostResult{{Host: "web1", Outcome: event.OutcomeNotStarted}, {Host: "web3", Outcome: event.OutcomeNotStarted}}},
		{ID: "r4", Hosts: []journal.HostResult{{Host: "web3", Outcome: event.OutcomeUnknown, Phase: event.PhaseRestart}}},
		{ID: "r5", Hosts: []journal.HostResult{{Host: "web4", Outcome: event.OutcomeDrained, Phase: event.PhaseHealth}}},
		{ID: "r6", Hosts: []journal.HostResult{{Host: "web4", Outcome: event.OutcomeOK, Phase: event.PhaseRecord}}},
	}
	in := map[string]bool{"web1": true, "web2": true, "web3": true, "web4": true}
	got := RepairTargets(runs, in)
	if len(got) != 2 || got[0].Host != "web1" || got[0].Run.ID != "r1" || got[1].Host != "web3" || got[1].Run.ID != "r4" {
		t.Fatalf("repairTargets = %+v, want web1 from r1 and web3 from r4 (web4 was fixed by r6)", got)
	}
	if got := RepairTargets(runs, map[string]bool{"web2": true}); len(got) != 0 {
		t.Fatalf("web2 alone: %+v, want nothing", got)
	}
}
