package e2e

// Issue 15: a team on one fleet through the etcd state backend. Real etcd
// (Debian's etcd-server) on loopback, the real binary, the real fleet.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/backend"
	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

func etcdBlock(endpoints []string) string {
	q := make([]string, len(endpoints))
	for i, ep := range endpoints {
		q[i] = fmt.Sprintf("%q", ep)
	}
	return fmt.Sprintf("  backend \"etcd\" {\n    endpoints = [%s]\n    prefix    = \"/team/\"\n  }\n", strings.Join(q, ", "))
}

// secondController is another operator's machine: its own working copy of
// the config repo, its own plan file and state dir, the same fleet.
func (e *env) secondController(t *testing.T, extra string) *env {
	t.Helper()
	b := *e
	b.dir = t.TempDir()
	b.repo = filepath.Join(b.dir, "repo")
	b.plan = filepath.Join(b.dir, "rollout.hcl")
	b.extra = extra
	if out, err := exec.Command("git", "clone", "-q", e.repo, b.repo).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	inv, err := os.ReadFile(filepath.Join(e.dir, "inventory.ini"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "inventory.ini"), inv, 0o644); err != nil {
		t.Fatal(err)
	}
	return &b
}

// etcdPair is a one-member etcd, a fleet of hosts, and two controllers
// whose plans (v2, halt, healthy_for) use it through their backend block.
func etcdPair(t *testing.T, hosts int, healthyFor string) (*fleet.Etcd, *env, *env) {
	t.Helper()
	cl := fleet.StartEtcdT(t, 1)
	a := setup(t, hosts, 1)
	a.extra = etcdBlock(cl.Endpoints())
	a.writePlan(a.tags["v2"], "halt", healthyFor)
	b := a.secondController(t, a.extra)
	b.writePlan(a.tags["v2"], "halt", healthyFor)
	return cl, a, b
}

// checkJournalsAgree: every run in etcd is, record for record, the run in
// the local cache of the controller that ran it, and every cached run is
// in etcd.
func checkJournalsAgree(t *testing.T, endpoints []string, controllers ...*env) {
	t.Helper()
	st := openTeamStore(t, endpoints)
	shared, err := st.Events(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	byRun := func(evs []event.Event) map[string][]string {
		m := map[string][]string{}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			m[ev.Run] = append(m[ev.Run], string(b))
		}
		return m
	}
	inEtcd := byRun(shared)
	cached := map[string][]string{}
	for _, c := range controllers {
		evs, err := journal.Read(filepath.Join(c.dir, ".rollout", journal.File))
		if err != nil {
			t.Fatal(err)
		}
		// a run's records are in the cache of each controller that wrote
		// some (repair notes in a dead run's journal that it removed its
		// locks), in the order the controllers are given
		for run, recs := range byRun(evs) {
			cached[run] = append(cached[run], recs...)
		}
	}
	if len(inEtcd) != len(cached) {
		t.Errorf("etcd holds %d runs, the local caches %d", len(inEtcd), len(cached))
	}
	for run, recs := range cached {
		got := inEtcd[run]
		if len(got) != len(recs) {
			t.Errorf("run %s: %d records in etcd, %d in the local cache", run, len(got), len(recs))
			continue
		}
		for i := range recs {
			if got[i] != recs[i] {
				t.Errorf("run %s record %d differs:\netcd  %s\ncache %s", run, i+1, got[i], recs[i])
				break
			}
		}
	}
}

// openTeamStore opens the tests' etcd backend (prefix /team/, plan demo);
// it is closed when the test ends.
func openTeamStore(t *testing.T, endpoints []string) *backend.Etcd {
	t.Helper()
	st, err := backend.OpenEtcd(context.Background(), backend.Config{Kind: "etcd", Endpoints: endpoints, Prefix: "/team/"}, "demo", journal.NewLocal(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func etcdLock(t *testing.T, st *backend.Etcd) *journal.LockInfo {
	t.Helper()
	li, err := st.ReadLock(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return li
}

// runDoneMessage is the message of the last run_done: with --ui json, the
// place a run says why it stopped.
func runDoneMessage(evs []event.Event) string {
	msg := ""
	for _, ev := range evs {
		if ev.Event == event.RunDone {
			msg = ev.Message
		}
	}
	return msg
}

func runEvents(evs []event.Event, run string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Run == run {
			out = append(out, fmt.Sprintf("%s %s %s %s %s", ev.Time.Format(time.RFC3339Nano), ev.Event, ev.Host, ev.Phase, ev.Status))
		}
	}
	return out
}

// Two controllers on one fleet: the second is refused naming the first's
// run and owner, follows its run live, and afterwards rolls back to the
// revision before the one the first deployed, read from the shared
// journal (its own local journal is empty).
func TestEtcdTwoControllersShareOneFleet(t *testing.T) {
	cl := fleet.StartEtcdT(t, 1)
	a := setup(t, 3, 1)
	a.extra = etcdBlock(cl.Endpoints())
	a.writePlan(a.tags["v1"], "halt", "1s")
	if r := a.rollout("apply", "--yes", "--batch", "1", "--ui", "json"); r.code != 0 {
		dump(t, r)
		t.Fatalf("baseline apply v1: exit %d", r.code)
	}
	// the second machine selects etcd through the environment only
	b := a.secondController(t, "")
	b.writePlan(a.tags["v2"], "halt", "1s")
	t.Setenv(backend.EnvKind, "etcd")
	t.Setenv(backend.EnvEndpoints, strings.Join(cl.Endpoints(), ","))
	t.Setenv(backend.EnvPrefix, "/team/")

	a.writePlan(a.tags["v2"], "halt", "2s")
	bgA := a.startRollout("apply", "--yes", "--batch", "1", "--ui", "json")
	first, ok := bgA.waitEvent(60*time.Second, isPhase(event.PhaseDrain))
	if !ok {
		dump(t, bgA.wait(time.Minute))
		t.Fatal("the first controller's run never drained a host")
	}
	runA := first.Run

	r := b.rollout("apply", "--yes", "--batch", "1")
	if r.code != 2 || !strings.Contains(r.stderr, runA) || !strings.Contains(r.stderr, rcOwner(t)) || !strings.Contains(r.stderr, cl.Endpoints()[0]) {
		dump(t, r)
		t.Fatalf("second controller: exit %d, want 2 naming run %s, its owner %s and the etcd endpoint", r.code, runA, rcOwner(t))
	}

	follow := b.startRollout("history", "--follow", "--ui", "json")
	ra := bgA.wait(2 * time.Minute)
	if ra.code != 0 {
		dump(t, ra)
		t.Fatalf("first controller: exit %d", ra.code)
	}
	rf := follow.wait(time.Minute)
	if rf.code != 0 {
		dump(t, rf)
		t.Fatalf("history --follow: exit %d", rf.code)
	}
	want := runEvents(parseEvents(t, ra.stdout), runA)
	got := runEvents(parseEvents(t, rf.stdout), runA)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history --follow on the second machine showed %d events of run %s, the run itself %d:\nfollow:\n%s\nrun:\n%s",
			len(got), runA, len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// the second machine's history lists the first's runs
	if r := b.rollout("history"); r.code != 0 || !strings.Contains(r.stdout, runA) {
		dump(t, r)
		t.Fatalf("history on the second machine does not list run %s", runA)
	}
	// and rolls back to v1, chosen from the shared journal
	r = b.rollout("rollback", "--yes", "--batch", "1", "--ui", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "going back to "+a.tags["v1"][:7]) || !strings.Contains(r.stderr, "from the journal") {
		dump(t, r)
		t.Fatalf("rollback from the second machine: exit %d, want 0 going back to v1 from the (shared) journal", r.code)
	}
	a.checkAtRevision(t, a.tags["v1"], "version=1")
	a.checkNoneDrained(t, nil)
	checkJournalsAgree(t, cl.Endpoints(), a, b)
}

// A controller SIGKILLed mid-run: its lease expires after the lock TTL,
// and `repair` on the other machine knows from the shared journal which
// host it left in flight, and puts it back.
func TestEtcdKilledControllerRepairedFromAnotherMachine(t *testing.T) {
	cl, a, b := etcdPair(t, 2, "15s")
	b.writePlan(a.tags["v2"], "halt", "1s") // repair's own health window

	bgA := a.startRollout("apply", "--yes", "--batch", "1", "--ui", "json", "--lock-ttl", "4s")
	ev, ok := bgA.waitEvent(60*time.Second, isPhase(event.PhaseHealth))
	if !ok {
		dump(t, bgA.wait(time.Minute))
		t.Fatal("the run never reached a health window")
	}
	if err := syscall.Kill(bgA.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bgA.wait(30 * time.Second)
	st := openTeamStore(t, cl.Endpoints())
	if li := etcdLock(t, st); li == nil || li.RunID != ev.Run {
		t.Fatalf("right after the kill the lock is %+v, want run %s's", li, ev.Run)
	}
	// the lease expires after the TTL (no one unlocks)
	deadline := time.Now().Add(30 * time.Second)
	for etcdLock(t, st) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the dead controller's lock did not expire")
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := b.rollout("repair", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, ev.Host+": unknown by run "+ev.Run) || !strings.Contains(r.stdout, "repaired") {
		dump(t, r)
		t.Fatalf("repair from the other machine: exit %d, want it to name %s left by run %s", r.code, ev.Host, ev.Run)
	}
	a.checkNoneDrained(t, nil)
	// a record written to the cache and not to etcd when the process died
	// is copied by migrate from the dead controller's working copy
	if r := a.rollout("backend", "migrate"); r.code != 0 {
		dump(t, r)
		t.Fatalf("backend migrate: exit %d", r.code)
	}
	checkJournalsAgree(t, cl.Endpoints(), a, b)
}

// One member of three killed mid-run: the run goes on. Two killed (no
// quorum): the run stops safely at its next journal write, exit 1, saying
// why, with no host left drained.
func TestEtcdMemberLossAndQuorumLoss(t *testing.T) {
	cl := fleet.StartEtcdT(t, 3)
	a := setup(t, 3, 1)
	a.extra = etcdBlock(cl.Endpoints())
	a.writePlan(a.tags["v2"], "halt", "2s")

	bg := a.startRollout("apply", "--yes", "--batch", "1", "--ui", "json")
	if _, ok := bg.waitEvent(60*time.Second, isPhase(event.PhaseDrain)); !ok {
		dump(t, bg.wait(time.Minute))
		t.Fatal("no drain")
	}
	if err := cl.Kill(2); err != nil {
		t.Fatal(err)
	}
	r := bg.wait(2 * time.Minute)
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("with one member of three down the run must go on: exit %d", r.code)
	}
	a.checkAtRevision(t, a.tags["v2"], "version=2")

	a.writePlan(a.tags["v1"], "halt", "2s")
	bg = a.startRollout("apply", "--yes", "--batch", "1", "--ui", "json")
	ev, ok := bg.waitEvent(60*time.Second, isPhase(event.PhaseHealth))
	if !ok {
		dump(t, bg.wait(time.Minute))
		t.Fatal("no health window")
	}
	if err := cl.Kill(1); err != nil {
		t.Fatal(err)
	}
	r = bg.wait(2 * time.Minute)
	evs := parseEvents(t, r.stdout)
	if why := runDoneMessage(evs); r.code != 1 || !strings.Contains(why, "journal cannot be written") || !strings.Contains(why, "etcd") {
		dump(t, r)
		t.Fatalf("quorum lost: exit %d, run_done %q; want exit 1 saying the journal cannot be written to etcd", r.code, why)
	}
	done := hostDone(evs)
	drained := map[string]bool{}
	for h, d := range done {
		if d.Status == string(event.OutcomeDrained) || d.Status == string(event.OutcomeUnknown) {
			drained[h] = true
		}
	}
	for _, h := range a.f.Hosts {
		if _, ok := done[h.Name]; !ok {
			t.Errorf("%s has no host_done: its state is not reported", h.Name)
		}
	}
	if done[ev.Host].Status != string(event.OutcomeOK) {
		t.Errorf("%s (in flight when quorum was lost) ended %s, want ok: the step in flight finishes", ev.Host, done[ev.Host].Status)
	}
	for h, d := range done {
		if h != ev.Host && d.Status != string(event.OutcomeNotStarted) {
			t.Errorf("%s ended %s after the journal stopped working, want not_started", h, d.Status)
		}
	}
	a.checkNoneDrained(t, drained)

	// quorum back: the records kept in the cache reach etcd with migrate
	for _, i := range []int{1, 2} {
		if err := cl.Restart(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	if r := a.rollout("backend", "migrate"); r.code != 0 {
		dump(t, r)
		t.Fatalf("backend migrate: exit %d", r.code)
	}
	checkJournalsAgree(t, cl.Endpoints(), a)
}

// An unreachable backend refuses the run (exit 2) naming the endpoint;
// nothing is touched and nothing falls back to the local journal.
func TestEtcdUnreachableRefuses(t *testing.T) {
	a := setup(t, 2, 1)
	a.extra = etcdBlock([]string{"http://127.0.0.1:9"})
	a.writePlan(a.tags["v2"], "halt", "1s")
	snap := a.snapshot(t)
	r := a.rollout("apply", "--yes", "--batch", "1")
	if r.code != 2 || !strings.Contains(r.stderr, "http://127.0.0.1:9") || !strings.Contains(r.stderr, "unreachable") {
		dump(t, r)
		t.Fatalf("exit %d, want 2 naming the unreachable endpoint", r.code)
	}
	a.untouched(t, snap, "an apply refused for an unreachable backend")
	if _, err := os.Stat(filepath.Join(a.dir, ".rollout", journal.File)); err == nil {
		t.Fatal("the refused run wrote a local journal (a silent fallback)")
	}
}

// `rollout unlock` from another machine revokes the run's lease: the run
// notices its lost lock and stops safely (exit 1, saying why) instead of
// only warning.
func TestEtcdUnlockStopsTheLiveRunSafely(t *testing.T) {
	cl, a, b := etcdPair(t, 3, "4s")

	bg := a.startRollout("apply", "--yes", "--batch", "1", "--ui", "json", "--lock-ttl", "6s")
	ev, ok := bg.waitEvent(60*time.Second, isPhase(event.PhaseHealth))
	if !ok {
		dump(t, bg.wait(time.Minute))
		t.Fatal("no health window")
	}
	if r := b.rollout("unlock", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "etcd "+cl.Endpoints()[0]) {
		dump(t, r)
		t.Fatalf("unlock from the other machine: exit %d, want 0 naming the etcd lock", r.code)
	}
	a.checkStoppedForLostLock(t, bg.wait(2*time.Minute), ev.Host, "lock was lost")
	checkJournalsAgree(t, cl.Endpoints(), a, b)
}
