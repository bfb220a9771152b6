package rollout

import (
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// on_failure = "rollback_all": web2 fails in batch 2 (after v1 is on every
// host, v2 goes out batch by batch); web2 rolls itself back, then web1 —
// changed by batch 1 — goes back to v1 too, after web2's batch; web3 never
// started. Every host ends on v1's files and records v1.
func TestRollbackAllReturnsEveryChangedHost(t *testing.T) {
	f := newFleet(t, 3, `batch = 1`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatalf("v1: %v", err)
	}
	f.writePlan("v2", "batch = 1\n  on_failure = \"rollback_all\"")
	f.failHealth("web2", 1, "not healthy") // v2 fails on web2; v1 is healthy again
	res := f.applyFails()
	want := map[string]event.Outcome{"web1": event.OutcomeRolledBack, "web2": event.OutcomeRolledBack, "web3": event.OutcomeNotStarted}
	for h, o := range want {
		if res.Outcomes[h] != o {
			t.Errorf("%s: %s, want %s", h, res.Outcomes[h], o)
		}
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if !strings.Contains(f.file(h), "version = 1") {
			t.Errorf("%s has %q, want v1's file", h, f.file(h))
		}
	}
	f.rec.mu.Lock()
	calls := append([]string(nil), f.rec.calls...)
	f.rec.mu.Unlock()
	// web1 goes back after web2's own rollback, drained and gated again
	if i, j := indexOf(calls, "health web2"), lastIndex(calls, "drain web1"); i < 0 || j < i {
		t.Errorf("web1 was not drained again after web2 failed: %v", calls)
	}
	var done []string
	for _, e := range f.rec.evs() {
		if e.Event == event.HostDone && e.Host == "web1" {
			done = append(done, e.Status+"@"+e.Revision)
		}
	}
	// (the recorder holds both runs: v1's, then v2's and its revert)
	if len(done) != 3 || done[1] != "ok@"+f.revs["v2"] || done[2] != "rolled_back@"+f.revs["v1"] {
		t.Errorf("web1's host_done events %v, want v1 ok, v2 ok, then rolled_back at v1", done)
	}
	// the state it records is v1 again: a re-run of v1 skips every host
	f.writePlan("v1", "batch = 1")
	res, err := f.apply(Request{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for h, o := range res.Outcomes {
		if o != event.OutcomeSkipped {
			t.Errorf("re-run of v1: %s %s, want skipped", h, o)
		}
	}
}

func lastIndex(calls []string, s string) int {
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i] == s {
			return i
		}
	}
	return -1
}
