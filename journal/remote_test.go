package journal

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// remote_output records (what the restart and validators printed) survive
// the journal, and reading runs is not misled by them: their phase is the
// step a command ran in, not the host's progress.
func TestJournalKeepsRemoteOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), Dir, File)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	events := []event.Event{
		{Time: at(0), Run: "r1", Event: event.RunStart, Plan: "web", Revision: "aaa", Message: KindApply, Batches: [][]string{{"web1"}}},
		{Time: at(1), Run: "r1", Event: event.RemoteOutput, Host: "web1", Phase: event.PhaseValidate, Status: "ok", Message: `file "app.conf" (preflight)`,
			Remote: event.NewRemote("appd -check -config x", 0, "config ok\n")},
		{Time: at(2), Run: "r1", Event: event.HostPhase, Host: "web1", Batch: 1, Phase: event.PhaseHealth, Status: "running"},
		{Time: at(3), Run: "r1", Event: event.HostDone, Host: "web1", Batch: 1, Status: string(event.OutcomeOK), Revision: "aaa"},
		{Time: at(3), Run: "r1", Event: event.RemoteOutput, Host: "web1", Batch: 1, Phase: event.PhaseRestart, Status: "failed",
			Remote: event.NewRemote("systemctl restart appd", 1, "Job failed")},
		{Time: at(4), Run: "r1", Event: event.RunDone, Status: "ok", ExitCode: event.Int(0)},
	}
	for _, e := range events {
		j.Emit(e)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[1].Remote, events[1].Remote) || !reflect.DeepEqual(got[4].Remote, events[4].Remote) {
		t.Errorf("remote output changed in the journal: %+v %+v", got[1].Remote, got[4].Remote)
	}
	runs := Runs(got)
	want := []HostResult{{Host: "web1", Outcome: event.OutcomeOK, Revision: "aaa", Batch: 1, Phase: event.PhaseHealth}}
	if len(runs) != 1 || !reflect.DeepEqual(runs[0].Hosts, want) || runs[0].Status != "ok" {
		t.Errorf("runs read with remote_output: %+v", runs)
	}
}
