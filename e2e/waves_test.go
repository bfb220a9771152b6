package e2e

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 25 item 2: two waves on real hosts behind HAProxy under load, an
// approval before the second. Without a terminal the run stops at the gate
// with the first wave done and prints the command to go on; pasted, it
// (--auto-approve) finishes the second wave. Zero failed requests.
func TestTwoWavesWithAnApprovalBetween(t *testing.T) {
	t.Parallel()
	e := setup(t, 4, 1)
	e.extra = "  wave \"dc1\" { hosts = \"web1:web2\" }\n  wave \"dc2\" {\n    approve = true\n  }\n"
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.waitAllUp(t)
	l := startLoad(e.frontend(), 4)
	r := e.rollout("plan", "rollout.hcl", "--batch", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "wave dc1:") || !strings.Contains(r.stdout, "wave dc2 (a person approves first):") {
		dump(t, r)
		t.Fatal("plan does not show the waves")
	}
	r = e.rollout("apply", "rollout.hcl", "--batch", "1", "--yes", "--ui", "json")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("apply without a terminal: exit %d, want 1 at the gate", r.code)
	}
	evs := parseEvents(t, r.stdout)
	last := evs[len(evs)-1]
	if last.Counts[event.OutcomeOK] != 2 || last.Counts[event.OutcomeNotStarted] != 2 || !strings.Contains(last.Next, "--auto-approve") {
		t.Fatalf("run_done %+v: want dc1 done, dc2 not started, next with --auto-approve", last)
	}
	for _, ev := range evs {
		if ev.Event == event.BatchStart && ev.Wave != "dc1" {
			t.Errorf("a batch of wave %q started before the approval: %+v", ev.Wave, ev)
		}
	}
	args := strings.Fields(last.Next)
	if args[0] != "rollout" {
		t.Fatalf("next %q", last.Next)
	}
	r = e.rollout(append(args[1:], "--ui", "json")...)
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("the printed next (%s): exit %d", last.Next, r.code)
	}
	var waves []string
	approved := false
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.BatchStart {
			waves = append(waves, ev.Wave+":"+strings.Join(ev.Hosts, ","))
		}
		approved = approved || ev.Event == event.Approved && strings.Contains(ev.Message, "--auto-approve")
	}
	if strings.Join(waves, " ") != "dc2:web3 dc2:web4" || !approved {
		t.Errorf("second run: batches %v, approved %v; want dc2's two batches after an approval by --auto-approve", waves, approved)
	}
	if ok, failed, errs := l.Stop(); failed != 0 || ok == 0 {
		t.Errorf("load: %d ok, %d failed: %v", ok, failed, errs)
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q, want version=2", h.Name, v)
		}
	}
}
