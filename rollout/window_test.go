package rollout

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// maxOut is the most hosts drained at once in the recorded calls.
func maxOut(calls []string) int {
	out, most := 0, 0
	for _, c := range calls {
		switch {
		case strings.HasPrefix(c, "drain "):
			out++
		case strings.HasPrefix(c, "undrain "):
			out--
		}
		most = max(most, out)
	}
	return most
}

func indexOf(calls []string, s string) int {
	for i, c := range calls {
		if c == s {
			return i
		}
	}
	return -1
}

// max_in_flight: a canary alone, then a rolling window — the next host
// starts as soon as one finishes, never more than N out, and a slow host
// holds only its own place (web2 finishes after web5 started).
func TestRollingWindowStartsTheNextHostAsOneFinishes(t *testing.T) {
	f := newFleet(t, 6, `max_in_flight = 2`)
	var once sync.Once
	released := make(chan struct{})
	f.unhealthy = func(h string) error {
		if h == "web2" {
			select {
			case <-released:
			case <-time.After(20 * time.Second):
				return errors.New("web5 never started while web2 was out: the window waits like a batch")
			}
		}
		if h == "web5" {
			once.Do(func() { close(released) })
		}
		return nil
	}
	res, err := f.apply(Request{}, Options{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for h, o := range res.Outcomes {
		if o != event.OutcomeOK {
			t.Errorf("%s: %s", h, o)
		}
	}
	f.rec.mu.Lock()
	calls := append([]string(nil), f.rec.calls...)
	f.rec.mu.Unlock()
	if n := maxOut(calls); n != 2 {
		t.Errorf("at most %d hosts were out at once, want 2 (max_in_flight): %v", n, calls)
	}
	if indexOf(calls, "undrain web1") > indexOf(calls, "drain web2") {
		t.Errorf("the window opened before the canary web1 finished: %v", calls)
	}
	if indexOf(calls, "undrain web2") < indexOf(calls, "drain web5") {
		t.Errorf("web5 did not start while the slow web2 was out: %v", calls)
	}
}

// A failure in the window starts no more hosts (max_failures 0): the hosts
// in flight finish, the rest are not started, the run fails.
func TestRollingWindowStopsOnAFailure(t *testing.T) {
	f := newFleet(t, 6, `max_in_flight = 2`)
	f.failHealth("web3", -1, "not healthy")
	res := f.applyFails()
	if res.Outcomes["web3"] != event.OutcomeDrained {
		t.Errorf("web3: %s, want drained", res.Outcomes["web3"])
	}
	started := 0
	for _, h := range []string{"web4", "web5", "web6"} {
		if res.Outcomes[h] == event.OutcomeNotStarted {
			continue
		}
		started++
	}
	// web4 may have started beside web3 before it failed; nothing after
	if started > 1 || res.Outcomes["web6"] != event.OutcomeNotStarted {
		t.Errorf("hosts started after the failure: %v", res.Outcomes)
	}
}

// batch and max_in_flight together are refused, naming both; so are both
// flags; max_in_flight alone is a scope.
func TestRollingWindowRefusals(t *testing.T) {
	f := newFleet(t, 3, "batch = 1\n  max_in_flight = 2")
	_, err := f.apply(Request{}, Options{})
	if err == nil || !strings.Contains(err.Error(), "Both batch and max_in_flight") || !strings.Contains(err.Error(), "rollout.hcl:") {
		t.Errorf("plan with both: %v", err)
	}
	f.writePlan("v1", "")
	_, err = f.apply(Request{Batch: "1", MaxInFlight: "2"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "--batch") || !strings.Contains(err.Error(), "--max-in-flight") {
		t.Errorf("both flags: %v", err)
	}
	req := Request{PlanFile: f.planFile, MaxInFlight: "2"}
	pr, err := Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.CheckSafety("apply"); err != nil {
		t.Errorf("--max-in-flight alone is refused: %v", err)
	}
	pr, err = Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.CheckSafety("apply"); err == nil || !strings.Contains(err.Error(), "no scope") {
		t.Errorf("neither batch nor max_in_flight: %v", err)
	}
}
