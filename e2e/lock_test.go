package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// rcHostLock is what another run's lock on h looks like; the fleet's hosts
// share this filesystem, so it is written locally.
func rcHostLock(t *testing.T, h fleet.Host, info journal.LockInfo, now time.Time) {
	t.Helper()
	if err := journal.AcquireHostLock(context.Background(), localrun.Runner{}, h.Name, filepath.Join(h.Root, "state"), "demo", info, now); err != nil {
		t.Fatalf("locking %s: %v", h.Name, err)
	}
}

func rcReadHostLock(t *testing.T, h fleet.Host) *journal.LockInfo {
	t.Helper()
	li, err := journal.ReadHostLock(context.Background(), localrun.Runner{}, filepath.Join(h.Root, "state"), "demo")
	if err != nil {
		t.Fatalf("reading %s's lock: %v", h.Name, err)
	}
	return li
}

// A host lock held by another live run refuses apply (exit 2) naming the
// owner, its run and the host, with nothing touched; a lock past its TTL
// is taken over and released at the end of the run.
func TestHostLockHeldRefusesExpiredTakenOver(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v2"], "halt", "0s")
	locked := e.f.Hosts[1]
	other := journal.LockInfo{Owner: "alice@ci-7", PID: 4242, RunID: "r-20260101-000000-a11ce0", TTL: 2 * time.Minute}
	rcHostLock(t, locked, other, time.Now())

	snap := e.snapshot(t)
	r := e.rcRun(2, "apply", "--batch", "1", "--yes", "--ui", "plain")
	for _, want := range []string{"alice@ci-7", other.RunID, "pid 4242", locked.Name, "rollout unlock"} {
		if !strings.Contains(r.stderr, want) {
			dump(t, r)
			t.Errorf("lock refusal does not mention %q", want)
		}
	}
	for name, s := range snap {
		if s.revision != nil {
			t.Fatalf("%s had a current.json before the refused apply", name)
		}
	}
	e.untouched(t, snap, "a refused apply")
	e.waitAllUp(t)
	if li := rcReadHostLock(t, e.f.Hosts[0]); li != nil {
		t.Errorf("the refused run left its lock on %s: %+v", e.f.Hosts[0].Name, li)
	}
	if li := rcReadHostLock(t, locked); li == nil || li.RunID != other.RunID {
		t.Errorf("the refused run touched the other run's lock on %s: %+v", locked.Name, li)
	}
	if row := e.rcStatus(t)[locked.Name]; !strings.Contains(row.Lock, "alice@ci-7") {
		t.Errorf("status does not show %s's lock: %+v", locked.Name, row)
	}

	// the same run, dead for an hour with a one-minute TTL: taken over
	if err := journal.BreakHostLock(context.Background(), localrun.Runner{}, filepath.Join(locked.Root, "state"), "demo"); err != nil {
		t.Fatal(err)
	}
	other.TTL = time.Minute
	rcHostLock(t, locked, other, time.Now().Add(-time.Hour))
	r = e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "json")
	if _, last := rcDone(t, parseEvents(t, r.stdout)); last.Counts[event.OutcomeOK] != 2 {
		t.Errorf("apply over an expired lock: %+v, want 2 ok", last.Counts)
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v2"], e.rcRender(t, "v2", h), "version=2")
		if li := rcReadHostLock(t, h); li != nil {
			t.Errorf("%s still locked after the run: %+v", h.Name, li)
		}
	}
}

// `rollout repair` while a run is alive must not touch that run's hosts:
// it is refused (exit 2) naming the run that holds the plan's lock, and the
// live run completes undisturbed.
func TestRepairRefusedWhileRunIsAlive(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v2"], "halt", "4s")
	bg := e.rcStart(t, "apply", "--batch", "1", "--yes", "--ui", "json")
	ev := bg.waitFor(t, "the canary in its health window", func(ev event.Event) bool {
		return ev.Event == event.HostPhase && ev.Phase == event.PhaseHealth && ev.Status == event.StatusRunning
	})
	r := e.rcRun(2, "repair", "--yes")
	if !strings.Contains(r.stderr, ev.Run) || !strings.Contains(r.stderr, rcOwner(t)) {
		dump(t, r)
		t.Errorf("repair refusal does not name the live run %s and its owner", ev.Run)
	}
	var last event.Event
	for ev := range bg.events {
		if ev.Event == event.RunDone {
			last = ev
		}
	}
	<-bg.done
	if code := bg.cmd.ProcessState.ExitCode(); code != 0 || last.Counts[event.OutcomeOK] != 2 {
		t.Fatalf("the live run ended with exit %d, %+v; want 0 with 2 ok", code, last.Counts)
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v2"], e.rcRender(t, "v2", h), "version=2")
	}
	e.waitAllUp(t)
}

// A host's lock directory removed while a run holds it (by hand, or by
// another operator's unlock) stops the run safely: the host in flight
// finishes its step, no other host starts, nothing is left drained, and
// the run exits 1 saying that the lock of that host was lost.
func TestLostHostLockStopsTheRunSafely(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v2"], "halt", "6s")
	bg := e.startRollout("apply", "--yes", "--batch", "1", "--ui", "json", "--lock-ttl", "3s")
	ev, ok := bg.waitEvent(60*time.Second, isPhase(event.PhaseHealth))
	if !ok {
		dump(t, bg.wait(time.Minute))
		t.Fatal("no health window")
	}
	var canary fleet.Host
	for _, h := range e.f.Hosts {
		if h.Name == ev.Host {
			canary = h
		}
	}
	dir, err := journal.PlanDir(filepath.Join(canary.Root, "state"), "demo")
	if err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, journal.LockDir)
	if _, err := os.Stat(lockDir); err != nil {
		t.Fatalf("the run holds no lock on %s: %v", canary.Name, err)
	}
	if err := os.RemoveAll(lockDir); err != nil {
		t.Fatal(err)
	}
	e.checkStoppedForLostLock(t, bg.wait(2*time.Minute), canary.Name, canary.Name)
}

// checkStoppedForLostLock checks how a run that lost a lock ended: exit 1
// with run_done saying the lock was lost (and naming mention), the host in
// flight finished ok, no other host started, nothing is left drained.
func (e *env) checkStoppedForLostLock(t *testing.T, r result, inFlight, mention string) {
	t.Helper()
	why := runDoneMessage(parseEvents(t, r.stdout))
	if r.code != 1 || !strings.Contains(why, "lock was lost") || !strings.Contains(why, mention) {
		dump(t, r)
		t.Fatalf("the run whose lock was taken away: exit %d, run_done %q; want exit 1 saying the lock was lost (%s)", r.code, why, mention)
	}
	done := hostDone(parseEvents(t, r.stdout))
	if done[inFlight].Status != string(event.OutcomeOK) {
		t.Errorf("%s (in flight) ended %s, want ok: the step in flight finishes", inFlight, done[inFlight].Status)
	}
	for _, h := range e.f.Hosts {
		if h.Name != inFlight && done[h.Name].Status != string(event.OutcomeNotStarted) {
			t.Errorf("%s ended %s after the lock was lost, want not_started", h.Name, done[h.Name].Status)
		}
	}
	e.checkNoneDrained(t, nil)
}
