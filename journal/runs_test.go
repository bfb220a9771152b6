package journal

import (
	"reflect"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

func TestRuns(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	events := []event.Event{
		{Time: at(0), Run: "r1", Event: event.RunStart, Plan: "web", Revision: "aaa", Message: KindApply, Batches: [][]string{{"web1"}, {"web2", "web3"}}},
		{Time: at(1), Run: "r1", Event: event.HostPhase, Host: "web1", Batch: 1, Phase: event.PhaseDrain, Status: "running"},
		{Time: at(2), Run: "r1", Event: event.HostDone, Host: "web1", Batch: 1, Status: string(event.OutcomeOK), Revision: "aaa"},
		{Time: at(3), Run: "r1", Event: event.HostPhase, Host: "web2", Batch: 2, Phase: event.PhaseHealth, Status: "running"},
		{Time: at(4), Run: "r1", Event: event.HostDone, Host: "web2", Batch: 2, Status: string(event.OutcomeDrained), Revision: "aaa", Message: "unstable", Diagnostics: "log"},
		{Time: at(5), Run: "r1", Event: event.RunDone, Status: "failed", ExitCode: event.Int(1), Message: "rollout rollback"},
		// r2 dies with web2 in flight; web3 never started.
		{Time: at(10), Run: "r2", Event: event.RunStart, Plan: "web", Revision: "bbb", Message: KindRollback},
		{Time: at(11), Run: "r2", Event: event.BatchStart, Batch: 1, Hosts: []string{"web2", "web3"}},
		// An event of another run interleaved.
		{Time: at(12), Run: "r3", Event: event.Log, Message: "hello"},
		{Time: at(13), Run: "r2", Event: event.HostPhase, Host: "web2", Batch: 1, Phase: event.PhaseDrain, Status: "running"},
		{Time: at(14), Run: "r2", Event: event.HostPhase, Host: "web2", Batch: 1, Phase: event.PhaseRestart, Status: "running"},
	}
	runs := Runs(events)
	if len(runs) != 3 {
		t.Fatalf("got %d runs, want 3", len(runs))
	}
	type row struct {
		ID, Plan, Revision, Kind string
		Start, End               time.Time
		Finished                 bool
		ExitCode                 int
		Status, Message          string
		Events                   int
	}
	wantRuns := []row{
		{"r1", "web", "aaa", KindApply, at(0), at(5), true, 1, "failed", "rollout rollback", 6},
		{"r2", "web", "bbb", KindRollback, at(10), at(14), false, 0, "", "", 4},
		{"r3", "", "", "", at(12), at(12), false, 0, "", "", 1},
	}
	for i, w := range wantRuns {
		r := runs[i]
		got := row{r.ID, r.Plan, r.Revision, r.Kind, r.Start, r.End, r.Finished, r.ExitCode, r.Status, r.Message, len(r.Events)}
		if got != w {
			t.Errorf("run %d = %+v, want %+v", i, got, w)
		}
	}
	wantHosts := [][]HostResult{
		{
			{Host: "web1", Outcome: event.OutcomeOK, Revision: "aaa", Batch: 1, Phase: event.PhaseDrain},
			{Host: "web2", Outcome: event.OutcomeDrained, Revision: "aaa", Batch: 2, Phase: event.PhaseHealth, Message: "unstable", Diagnostics: "log"},
			{Host: "web3", Outcome: event.OutcomeNotStarted},
		},
		{
			{Host: "web2", Outcome: event.OutcomeUnknown, Batch: 1, Phase: event.PhaseRestart},
			{Host: "web3", Outcome: event.OutcomeNotStarted},
		},
		nil,
	}
	for i, w := range wantHosts {
		if !reflect.DeepEqual(runs[i].Hosts, w) {
			t.Errorf("run %s hosts:\n got %+v\nwant %+v", runs[i].ID, runs[i].Hosts, w)
		}
	}
}

// A run's operator is its run_start's; a run whose run_start lacks one
// (an older journal, or a run refused first) takes run_done's.
func TestRunsOperator(t *testing.T) {
	url := "https://github.com/acme/web/actions/runs/42"
	runs := Runs([]event.Event{
		{Time: t0, Run: "r1", Event: event.RunStart, Message: KindApply, Operator: "octocat", OperatorURL: url},
		{Time: t0, Run: "r1", Event: event.RunDone, Status: "ok", ExitCode: event.Int(0), Operator: "someone-else"},
		{Time: t0, Run: "r2", Event: event.RunStart, Message: KindApply},
		{Time: t0, Run: "r2", Event: event.RunDone, Status: "ok", ExitCode: event.Int(0), Operator: "tanuki"},
		{Time: t0, Run: "r3", Event: event.RunStart, Message: KindApply},
	})
	want := [][2]string{{"octocat", url}, {"tanuki", ""}, {"", ""}}
	for i, w := range want {
		if got := [2]string{runs[i].Operator, runs[i].OperatorURL}; got != w {
			t.Errorf("run %s operator = %q, want %q", runs[i].ID, got, w)
		}
	}
}
