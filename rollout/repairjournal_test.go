package rollout

import (
	"context"
	"errors"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

type memStore struct{ events []event.Event }

func (m *memStore) Record(_ context.Context, e event.Event) error {
	m.events = append(m.events, e)
	return nil
}

// A repair journals itself as a run: history sees kind "repair", the host
// it put back is ok (no longer a repair target), the one it could not fix
// is drained by the repair (the next repair picks it up again).
func TestRepairJournalIsARun(t *testing.T) {
	dead := []event.Event{
		{Run: "r1", Event: event.RunStart, Message: journal.KindApply, Plan: "web", Revision: "b"},
		{Run: "r1", Event: event.HostPhase, Host: "web1", Phase: event.PhaseHealth},
		{Run: "r1", Event: event.HostPhase, Host: "web2", Phase: event.PhaseRestart},
	}
	st := &memStore{events: append([]event.Event{}, dead...)}
	in := map[string]bool{"web1": true, "web2": true}
	todo := RepairTargets(journal.Runs(st.events), in)
	if len(todo) != 2 {
		t.Fatalf("targets %+v", todo)
	}
	rj := &RepairJournal{Store: st, Plan: "web", RunID: "r2", Owner: "a@b", Operator: Operator{Name: "tanuki", URL: "https://gitlab.example/j/7"}}
	must(t, rj.Start(context.Background(), todo))
	// died here: both hosts are in flight in the repair run
	if mid := RepairTargets(journal.Runs(st.events), in); len(mid) != 2 || mid[0].Run.ID != "r2" || mid[0].Outcome != event.OutcomeUnknown {
		t.Fatalf("a repair that died after its start: targets %+v", mid)
	}
	results := []RepairResult{{Host: "web1", Undrain: true, Revision: "a"}, {Host: "web2", Err: errors.New("connecting: refused")}}
	must(t, rj.Done(context.Background(), todo, results, ExitFailed, "1 host(s) could not be fixed", "rollout repair web.hcl"))
	runs := journal.Runs(st.events)
	r := runs[len(runs)-1]
	if r.ID != "r2" || r.Kind != journal.KindRepair || !r.Finished || r.ExitCode != ExitFailed || len(r.Hosts) != 2 ||
		r.Hosts[0].Outcome != event.OutcomeOK || r.Hosts[0].Revision != "a" || r.Hosts[1].Outcome != event.OutcomeDrained {
		t.Fatalf("repair run %+v", r)
	}
	if r.Operator != "tanuki" || r.OperatorURL != "https://gitlab.example/j/7" {
		t.Errorf("repair run operator %q (%q), want its operator", r.Operator, r.OperatorURL)
	}
	for _, e := range st.events {
		if e.Run == "r2" && e.Event == event.RunDone && e.Operator != "tanuki" {
			t.Errorf("repair run_done operator %q", e.Operator)
		}
	}
	again := RepairTargets(runs, in)
	if len(again) != 1 || again[0].Host != "web2" || again[0].Run.ID != "r2" {
		t.Fatalf("after the repair, targets %+v, want web2 (which it could not fix)", again)
	}
}
