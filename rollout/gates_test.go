package rollout

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// gateRun runs f's plan with ctl and a fake clock; sink sees every event
// as it is emitted (before the run goes on), and the run's events are
// returned in order.
func gateRun(t *testing.T, f *fleet, opts Options, ctl *Control, clk *fakeClock, sink func(event.Event)) (*Result, []event.Event, error) {
	t.Helper()
	pr, err := Prepare(Request{PlanFile: f.planFile})
	must(t, err)
	env := f.env()
	env.Now, env.Sleep = clk.Now, clk.Sleep
	var mu sync.Mutex
	var evs []event.Event
	env.Sink = sinkFunc(func(e event.Event) {
		f.rec.Emit(e)
		mu.Lock()
		evs = append(evs, e)
		mu.Unlock()
		if sink != nil {
			sink(e)
		}
	})
	opts.RunID, opts.Owner, opts.LocalDir = "r-gate", "t@here", filepath.Join(f.dir, ".rollout")
	res, err := Run(context.Background(), pr, env, opts, ctl)
	mu.Lock()
	defer mu.Unlock()
	return res, append([]event.Event(nil), evs...), err
}

// index is the position of the first event matching ok, or -1.
func index(evs []event.Event, ok func(event.Event) bool) int {
	for i, e := range evs {
		if ok(e) {
			return i
		}
	}
	return -1
}

// An approve_after gate with a person: after the canary's batch the run
// waits (announcing it once, as an approval), starts nothing until the
// person approves, and then goes on; the approved event says by whom.
func TestEngineApprovalGateWaitsForAPerson(t *testing.T) {
	f := newFleet(t, 3, "batch = [1]\n  approve_after = [1]")
	ctl := NewControl()
	clk := &fakeClock{t: t0}
	drainsAtGate := -1
	res, evs, err := gateRun(t, f, Options{}, ctl, clk, func(e event.Event) {
		if e.WaitReason() == event.WaitApproval {
			drainsAtGate = f.rec.count("drain ")
			go ctl.Approve() // the person, at some point

		}
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeOK {
			t.Errorf("%s = %s, want ok", h, res.Outcomes[h])
		}
	}
	if drainsAtGate != 1 {
		t.Errorf("%d host(s) drained when the run waited for approval, want only the canary", drainsAtGate)
	}
	var waits []event.Event
	for _, e := range evs {
		if e.Event == event.Waiting {
			waits = append(waits, e)
		}
	}
	if len(waits) != 1 || waits[0].Status != "approval" || waits[0].Batch != 2 ||
		waits[0].Message != "batch 1 done; approve to start batch 2 (press y, or answer the prompt)" {
		t.Fatalf("waiting events %+v, want one approval before batch 2", waits)
	}
	canaryDone := index(evs, func(e event.Event) bool { return e.Event == event.BatchDone && e.Batch == 1 })
	wait := index(evs, func(e event.Event) bool { return e.Event == event.Waiting })
	approved := index(evs, func(e event.Event) bool { return e.Event == event.Approved })
	next := index(evs, func(e event.Event) bool { return e.Event == event.BatchStart && e.Batch == 2 })
	if !(canaryDone >= 0 && canaryDone < wait && wait < approved && approved < next) {
		t.Fatalf("order: batch 1 done %d, waiting %d, approved %d, batch 2 start %d", canaryDone, wait, approved, next)
	}
	if a := evs[approved]; a.Message != "approved by a person" || a.Batch != 2 {
		t.Errorf("approved event %+v, want batch 2 approved by a person", a)
	}
	if n := index(evs[approved+1:], func(e event.Event) bool { return e.Event == event.Approved }); n >= 0 {
		t.Errorf("a second approval with one gate: %+v", evs[approved+1+n])
	}
}

// A person who aborts at the gate stops the run there: the canary is done,
// the rest never starts, exit 130.
func TestEngineApprovalGateAbort(t *testing.T) {
	f := newFleet(t, 3, "batch = [1]\n  approve_after = [1]")
	ctl := NewControl()
	res, _, err := gateRun(t, f, Options{}, ctl, &fakeClock{t: t0}, func(e event.Event) {
		if e.WaitReason() == event.WaitApproval {
			ctl.Abort()
		}
	})
	if ExitCode(err) != ExitInterrupted {
		t.Fatalf("err = %v (exit %d), want exit 130", err, ExitCode(err))
	}
	if res.Outcomes["web1"] != event.OutcomeOK || res.Outcomes["web2"] != event.OutcomeNotStarted || res.Outcomes["web3"] != event.OutcomeNotStarted {
		t.Errorf("outcomes %v, want web1 ok and the rest not_started", res.Outcomes)
	}
	if n := f.rec.count("drain "); n != 1 {
		t.Errorf("%d host(s) drained, want only the canary", n)
	}
}

// The plan's pause bakes the batch just done before the next starts: on
// the run's clock the next batch starts exactly pause later, after one
// waiting event that says so; the last batch does not bake.
func TestEngineBakeBetweenBatches(t *testing.T) {
	f := newFleet(t, 3, "batch = [1]\n  pause = \"7s\"")
	clk := &fakeClock{t: t0}
	res, evs, err := gateRun(t, f, Options{}, NewControl(), clk, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeOK {
			t.Errorf("%s = %s, want ok", h, res.Outcomes[h])
		}
	}
	var bakes []event.Event
	for _, e := range evs {
		if e.Event == event.Waiting {
			bakes = append(bakes, e)
		}
	}
	if len(bakes) != 2 || bakes[0].Status != "bake" || bakes[0].Batch != 2 || bakes[0].Message != "baking for 7s before batch 2" ||
		bakes[1].Status != "bake" || bakes[1].Batch != 3 {
		t.Fatalf("waiting events %+v, want a bake before batches 2 and 3 (and none after the last)", bakes)
	}
	for b := 1; b <= 2; b++ {
		done := index(evs, func(e event.Event) bool { return e.Event == event.BatchDone && e.Batch == b })
		next := index(evs, func(e event.Event) bool { return e.Event == event.BatchStart && e.Batch == b+1 })
		if done < 0 || next < 0 {
			t.Fatalf("batch %d done at %d, batch %d start at %d", b, done, b+1, next)
		}
		if got := evs[next].Time.Sub(evs[done].Time); got != 7*time.Second {
			t.Errorf("batch %d started %s (run clock) after batch %d ended, want the 7s pause", b+1, got, b)
		}
	}
}

// Pausing during a bake holds the next batch after the bake is over, until
// the operator resumes.
func TestEnginePauseHoldsTheNextBatch(t *testing.T) {
	f := newFleet(t, 2, "batch = [1]")
	ctl := NewControl()
	var resumedAt int
	var mu sync.Mutex
	res, evs, err := gateRun(t, f, Options{}, ctl, &fakeClock{t: t0}, func(e event.Event) {
		switch {
		case e.Event == event.BatchStart && e.Batch == 1:
			ctl.Pause()
		case e.WaitReason() == event.WaitPaused:
			go func() {
				mu.Lock()
				resumedAt = f.rec.count("drain ")
				mu.Unlock()
				ctl.Resume()
			}()
		}
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Outcomes["web2"] != event.OutcomeOK {
		t.Errorf("web2 = %s after resume, want ok", res.Outcomes["web2"])
	}
	mu.Lock()
	defer mu.Unlock()
	if resumedAt != 1 {
		t.Errorf("%d host(s) drained while paused, want only web1", resumedAt)
	}
	if i := index(evs, func(e event.Event) bool { return e.WaitReason() == event.WaitPaused }); i < 0 ||
		evs[i].Message != "paused after the current batch (press r to resume)" {
		t.Errorf("no paused waiting event")
	}
}
