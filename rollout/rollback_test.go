package rollout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// phases returns the phases announced (host_phase running) for host, in
// order, and its host_done event.
func (r *recorder) phases(host string) (ps []event.Phase, done event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Host != host {
			continue
		}
		switch {
		case e.Event == event.HostPhase && e.Status == event.StatusRunning:
			ps = append(ps, e.Phase)
		case e.Event == event.HostDone:
			done = e
		}
	}
	return ps, done
}

// A host deployed for the first time has no previous revision: its way
// back (the rollback states of the pipeline) puts back the files it had
// before, restarts it, and passes the health gate before it serves again.
func TestEngineRollbackOfAFirstDeployPutsBackTheFilesBefore(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	const before = "written by hand before rollout\n"
	must(t, os.WriteFile(filepath.Join(f.dir, "hosts", "web1", "app.conf"), []byte(before), 0o644))
	f.writePlan("v1", `batch = [1]
  on_failure = "rollback"`)
	f.failHealth("web1", 1, "pid 4121 → 4188")
	res := f.applyFails()
	if res.Outcomes["web1"] != event.OutcomeRolledBack {
		t.Fatalf("web1 outcome %s", res.Outcomes["web1"])
	}
	if got := f.file("web1"); got != before {
		t.Fatalf("web1 app.conf = %q, want the file it had before", got)
	}
	if n := f.restarts("web1"); n != 2 {
		t.Fatalf("web1 restarted %d times, want 2 (the new files, then the old)", n)
	}
	if n := f.rec.count("health web1"); n != 2 {
		t.Fatalf("web1's health gate ran %d times, want 2", n)
	}
	if d := f.anyDrained(); len(d) != 0 {
		t.Fatalf("left drained: %v", d)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "hosts", "web1", ".app.conf.rollout-prev")); !os.IsNotExist(err) {
		t.Fatalf("the backup is still there: %v", err)
	}
	ps, done := f.rec.phases("web1")
	want := []event.Phase{event.PhaseDrain, event.PhaseStage, event.PhaseValidate, event.PhaseInstall, event.PhaseCheck,
		event.PhaseRestart, event.PhaseHealth, event.PhaseRollback, event.PhaseUndrain}
	if len(ps) != len(want) {
		t.Fatalf("web1 phases %v, want %v", ps, want)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Fatalf("web1 phases %v, want %v", ps, want)
		}
	}
	if !strings.Contains(done.Message, "rolled back to the files it had before and serving") || done.Revision != "" {
		t.Fatalf("web1 host_done = %+v", done)
	}
	if res.Outcomes["web2"] != event.OutcomeNotStarted {
		t.Fatalf("web2 outcome %s", res.Outcomes["web2"])
	}
}

// When the previous revision fails its health gate too, the way back stops
// there: the host is left drained for a person, with diagnostics, on the
// previous revision's files, and nothing records the new revision.
func TestEngineRollbackThatFailsItsHealthGateLeavesDrained(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	v1 := f.file("web1")
	f.writePlan("v2", `batch = [1]
  on_failure = "rollback"`)
	f.failHealth("web1", -1, "connection refused")
	res := f.applyFails()
	if res.Outcomes["web1"] != event.OutcomeDrained {
		t.Fatalf("web1 outcome %s", res.Outcomes["web1"])
	}
	if d := f.anyDrained(); len(d) != 1 || d[0] != "web1" {
		t.Fatalf("drained = %v, want web1", d)
	}
	if f.file("web1") != v1 {
		t.Fatalf("web1 app.conf = %q, want v1's", f.file("web1"))
	}
	if n := f.restarts("web1"); n != 3 {
		t.Fatalf("web1 restarted %d times, want 3 (v1, v2, v1 again)", n)
	}
	_, done := f.rec.phases("web1")
	if !strings.Contains(done.Message, "health") || !strings.Contains(done.Message, "left drained for inspection") ||
		!strings.Contains(done.Diagnostics, "last health result: connection refused") {
		t.Fatalf("web1 host_done = %+v", done)
	}
	var failed []string
	f.rec.mu.Lock()
	for _, e := range f.rec.events {
		if e.Host == "web1" && e.Event == event.HostPhase && e.Status == event.StatusFailed {
			failed = append(failed, string(e.Phase)+": "+e.Message)
		}
	}
	f.rec.mu.Unlock()
	if len(failed) != 2 || !strings.HasPrefix(failed[1], "rollback: previous revision is not healthy either: connection refused") {
		t.Fatalf("web1 failures %q, want health then the rollback's health", failed)
	}
	st, _ := journal.ReadState(context.Background(), localrun.Runner{}, filepath.Join(f.dir, "hosts", "web1", "state"), "web")
	if st == nil || st.Revision != f.revs["v1"] {
		t.Fatalf("web1 current.json = %+v, want v1", st)
	}
}
