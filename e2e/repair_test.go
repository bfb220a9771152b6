package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// on_failure = "halt" with a crash-looping release: the flap guard fails
// the canary, which is left drained with diagnostics; nobody else is
// touched. `rollout repair` then puts the canary's previous files back,
// restarts it and returns it to the load balancer.
func TestHaltLeavesCanaryDrainedAndRepairRestores(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.extra = `  diagnostics = ["echo diag-for-${host.name}"]`
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	v2 := e.rcConfigs()
	pids := e.rcPIDs()

	e.writePlan(e.tags["crashloop"], "halt", "3s")
	r := e.rcRun(1, "apply", "--batch", "1", "--yes", "--ui", "json")
	evs := parseEvents(t, r.stdout)
	done, last := rcDone(t, evs)
	if last.ExitCode == nil || *last.ExitCode != 1 {
		t.Errorf("run_done = %+v, want exit_code 1", last)
	}
	canary := ""
	for _, ev := range evs {
		if ev.Event == event.BatchStart && ev.Batch == 1 && len(ev.Hosts) == 1 {
			canary = ev.Hosts[0]
		}
	}
	if canary == "" {
		dump(t, r)
		t.Fatal("no canary batch")
	}
	cd := done[canary]
	if cd.Status != string(event.OutcomeDrained) {
		dump(t, r)
		t.Fatalf("canary %s host_done = %+v, want drained", canary, cd)
	}
	if !strings.Contains(cd.Message, "pid") && !strings.Contains(cd.Message, "flap") {
		t.Errorf("canary failure does not name the flap: %q", cd.Message)
	}
	if !strings.Contains(cd.Diagnostics, "diag-for-"+canary) {
		t.Errorf("canary diagnostics lack the plan's diagnostics command output: %q", cd.Diagnostics)
	}
	e.rcAssertOutOfRotation(t, canary)
	if c := e.liveConfig(e.rcHost(canary)); !strings.Contains(c, "exit_after") {
		t.Errorf("halted canary's files are not the failed release's (left for inspection):\n%s", c)
	}
	for _, h := range e.f.Hosts {
		if h.Name == canary {
			continue
		}
		if _, ok := done[h.Name]; ok && done[h.Name].Status != string(event.OutcomeNotStarted) {
			t.Errorf("%s: %+v, want not_started or absent", h.Name, done[h.Name])
		}
		e.rcAssertAt(t, h, e.tags["v2"], v2[h.Name], "version=2")
		if pid, _ := e.f.AppPID(h); pid != pids[h.Name] {
			t.Errorf("%s was restarted (pid %d → %d)", h.Name, pids[h.Name], pid)
		}
		e.rcWaitLB(t, h.Name, "UP")
	}
	// the journal keeps the diagnostics too
	found := false
	for _, ev := range e.rcJournal(t) {
		if ev.Event == event.HostDone && ev.Run == cd.Run && ev.Host == canary && strings.Contains(ev.Diagnostics, "diag-for-") {
			found = true
		}
	}
	if !found {
		t.Error("the journal has no host_done with the canary's diagnostics")
	}

	r = e.rcRun(0, "repair", "--yes")
	if !strings.Contains(r.stdout, canary) {
		t.Errorf("repair output does not name %s:\n%s", canary, r.stdout)
	}
	e.rcWaitLB(t, canary, "UP")
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v2"], v2[h.Name], "version=2")
	}
	for name, row := range e.rcStatus(t) {
		if len(row.Drift) != 0 || row.Revision != e.tags["v2"] || row.Lock != "" {
			t.Errorf("status after repair: %s = %+v, want v2, no drift, no lock", name, row)
		}
	}
}

// The controller is SIGKILLed while the canary is in its health window:
// the canary is left drained with the new files and the locks stay behind.
// Repair and apply are refused while the dead run's locks live (naming its
// owner and run). After `rollout unlock`, `rollout repair` puts the
// canary's files from before the run back (the run never recorded it),
// restarts it and returns it to the LB; a re-run then completes.
func TestKilledControllerRepairTakesOverDeadLock(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	v1 := e.rcConfigs()

	e.writePlan(e.tags["v2"], "halt", "4s")
	bg := e.rcStart(t, "apply", "--batch", "1", "--yes", "--ui", "json")
	ev := bg.waitFor(t, "the canary in its health window", func(ev event.Event) bool {
		return ev.Event == event.HostPhase && ev.Phase == event.PhaseHealth && ev.Status == event.StatusRunning
	})
	canary, runID := ev.Host, ev.Run
	bg.kill(t)
	if ws, ok := bg.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("rollout ended with %v, not by SIGKILL: the kill came too late", bg.cmd.ProcessState)
	}
	t.Logf("killed run %s with %s in health", runID, canary)

	// what the dead run left: the canary out of rotation on its new files
	e.rcAssertOutOfRotation(t, canary)
	ch := e.rcHost(canary)
	if got, want := e.liveConfig(ch), e.rcRender(t, "v2", ch); got != want {
		t.Fatalf("canary files at the kill:\n%s\nwant v2's:\n%s", got, want)
	}
	for _, h := range e.f.Hosts {
		if h.Name != canary {
			e.rcAssertAt(t, h, e.tags["v1"], v1[h.Name], "version=1")
		}
	}
	r := e.rcRun(0, "history")
	if !strings.Contains(r.stdout, runID) {
		t.Errorf("history does not show the killed run %s:\n%s", runID, r.stdout)
	}

	// status says what needs attention, with the command, and exits 4
	r = e.rcRun(4, "status", "--detailed-exitcode")
	for _, want := range []string{canary + " left drained by run " + runID + " (dead)", "rollout repair rollout.hcl --known-hosts"} {
		if !strings.Contains(r.stdout, want) {
			dump(t, r)
			t.Errorf("status --detailed-exitcode lacks %q", want)
		}
	}

	// the dead run's locks live on (TTL 2m), but its pid is gone from this
	// machine: apply is refused naming the run, its owner, that it is dead,
	// and `rollout repair`
	r = e.rcRun(2, "apply", "--batch", "1", "--yes", "--ui", "plain")
	for _, want := range []string{rcOwner(t), runID, "that run is dead", "not running on this machine", "rollout repair"} {
		if !strings.Contains(r.stderr, want) {
			dump(t, r)
			t.Errorf("apply: lock refusal lacks %q", want)
		}
	}
	e.rcAssertOutOfRotation(t, canary)
	if got, want := e.liveConfig(ch), e.rcRender(t, "v2", ch); got != want {
		t.Fatalf("a refused command changed the canary's files:\n%s", got)
	}

	// repair takes the dead run's locks over (says so, records it), and puts
	// the canary back to its state before the run (v1 files, restarted, UP)
	r = e.rcRun(0, "repair", "--yes")
	if !strings.Contains(r.stdout, canary) || !strings.Contains(r.stdout, runID) || !strings.Contains(r.stdout, "took over the lock") {
		t.Errorf("repair output does not name %s and run %s and the lock it took over:\n%s", canary, runID, r.stdout)
	}
	evs, err := journal.Read(filepath.Join(e.dir, ".rollout", "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recorded := false
	for _, ev := range evs {
		if ev.Run == runID && ev.Event == event.Log && strings.Contains(ev.Message, "took over the lock") {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("the journal does not record that repair took over run %s's lock", runID)
	}
	e.rcWaitLB(t, canary, "UP")
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v1"], v1[h.Name], "version=1")
		if li := rcReadHostLock(t, h); li != nil {
			t.Errorf("%s still locked after repair: %+v", h.Name, li)
		}
	}

	e.rcRun(0, "status", "--detailed-exitcode") // nothing needs attention now

	// the re-run completes
	e.writePlan(e.tags["v2"], "halt", "0s")
	r = e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "json")
	if _, last := rcDone(t, parseEvents(t, r.stdout)); last.Counts[event.OutcomeOK] != 2 {
		t.Errorf("resumed apply: %+v, want 2 ok", last.Counts)
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v2"], e.rcRender(t, "v2", h), "version=2")
	}
	e.waitAllUp(t)
}
