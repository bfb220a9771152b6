package rollout

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-sh/rollout/analysis"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// fakeCounters grows every server's counters at each Read: perRead
// requests, and errs[server] errors of them.
type fakeCounters struct {
	mu      sync.Mutex
	perRead int64
	errs    map[string]int64
	now     map[string]analysis.Counters
	reads   int
}

func (f *fakeCounters) Read(context.Context) analysis.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := map[string]analysis.Counters{}
	for _, s := range []string{"web1", "web2", "web3"} {
		c := f.now[s]
		c.Requests += f.perRead
		c.Responses += f.perRead
		c.Errors += f.errs[s]
		f.now[s] = c
		out[s] = c
	}
	return analysis.Snapshot{LBs: map[string]map[string]analysis.Counters{analysis.CommandLB: out}}
}

// analysisPlan is the plan-wide part of the engine tests' plans.
func analysisPlan(onFailure, extra string) string {
	return `batch = [1]
  on_failure = "` + onFailure + `"
  analysis "command" {
    command        = "true"
    max_error_rate = "1%"
    min_requests   = 50
    interval       = "5ms"
    deadline       = "60ms"
  }
  ` + extra
}

func analysisFleet(t *testing.T, extra string) *fleet {
	return newFleet(t, 3, analysisPlan("rollback", extra))
}

func (f *fleet) applyAnalysed(fc *fakeCounters) (*Result, error) {
	f.t.Helper()
	pr, err := Prepare(Request{PlanFile: f.planFile})
	if err != nil {
		return nil, err
	}
	env := f.env()
	env.NewAnalyser = func(_ context.Context, a *plan.Analysis, _ *Target) (Analyser, error) {
		if a.Kind != "command" {
			return nil, errors.New("want the command kind")
		}
		return fc, nil
	}
	return Run(context.Background(), pr, env, Options{RunID: "r-ana", LocalDir: f.dir + "/.rollout", Owner: "t@here"}, nil)
}

func (r *recorder) analysisEvents(host string) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, e := range r.events {
		if e.Event == event.Analysis && e.Host == host {
			out = append(out, e)
		}
	}
	return out
}

// A host whose requests fail at 10% is caught by the analysis once it is
// back in traffic and rolled back (on_failure), with the evidence in its
// host_done; the run halts before the next batch. Healthy canaries pass.
func TestEngineAnalysisFailsBadCanary(t *testing.T) {
	fc := &fakeCounters{perRead: 100, errs: map[string]int64{"web2": 10}, now: map[string]analysis.Counters{}}
	f := analysisFleet(t, "")
	res, err := f.applyAnalysed(fc)
	if !errors.Is(err, ErrRunFailed) {
		t.Fatalf("apply: %v", err)
	}
	if res.Outcomes["web1"] != event.OutcomeOK || res.Outcomes["web2"] != event.OutcomeRolledBack || res.Outcomes["web3"] != event.OutcomeNotStarted {
		t.Fatalf("outcomes %v", res.Outcomes)
	}
	if f.file("web2") != "" {
		t.Errorf("web2 still has the new file (first deploy: the way back is no file): %q", f.file("web2"))
	}
	ev := f.rec.analysisEvents("web2")
	if len(ev) == 0 {
		t.Fatal("no analysis event for web2")
	}
	last := ev[len(ev)-1]
	a := last.Analysis
	if last.Status != "fail" || a == nil || a.Canary.Requests != 100 || a.Canary.Errors != 10 || a.Canary.ErrorRate != 0.1 ||
		a.Baseline.Requests != 100 || strings.Join(a.Baseline.Servers, ",") != "web3" || *a.Limits.MaxErrorRate != 0.01 || a.Step != "ramp 100%" {
		t.Fatalf("analysis event %+v %+v", last, a)
	}
	var done event.Event
	for _, e := range f.rec.events {
		if e.Event == event.HostDone && e.Host == "web2" {
			done = e
		}
	}
	for _, want := range []string{"canary analysis at ramp 100%", "error rate 10% (10 of 100 requests) is above max_error_rate 1%", "unchanged web3: 100 requests, 0 errors", "rolled back"} {
		if !strings.Contains(done.Message, want) {
			t.Errorf("host_done message %q lacks %q", done.Message, want)
		}
	}
	// web2 was taken out of traffic again (a second drain) before the
	// rollback restarted it
	if n := f.rec.count("drain web2"); n != 2 {
		t.Errorf("web2 drained %d times, want 2 (before the change, after the verdict)", n)
	}
	if ev := f.rec.analysisEvents("web1"); len(ev) == 0 || ev[len(ev)-1].Status != "pass" {
		t.Errorf("web1 analysis: %+v", ev)
	}
	if len(f.anyDrained()) != 0 {
		t.Errorf("left drained: %v", f.anyDrained())
	}
}

// Too little traffic holds the step (hold verdicts, never a pass) and fails
// at the deadline with "not enough traffic"; under halt the host stays
// drained.
func TestEngineAnalysisNotEnoughTraffic(t *testing.T) {
	fc := &fakeCounters{perRead: 1, errs: map[string]int64{}, now: map[string]analysis.Counters{}}
	f := newFleet(t, 3, analysisPlan("halt", ""))
	res, err := f.applyAnalysed(fc)
	if !errors.Is(err, ErrRunFailed) {
		t.Fatalf("apply: %v", err)
	}
	if res.Outcomes["web1"] != event.OutcomeDrained || res.Outcomes["web2"] != event.OutcomeNotStarted {
		t.Fatalf("outcomes %v", res.Outcomes)
	}
	ev := f.rec.analysisEvents("web1")
	holds := 0
	for _, e := range ev[:len(ev)-1] {
		if e.Status != "hold" {
			t.Fatalf("before the deadline: %s %s", e.Status, e.Message)
		}
		holds++
	}
	last := ev[len(ev)-1]
	if holds == 0 || last.Status != "fail" || !strings.Contains(last.Message, "not enough traffic") || !strings.Contains(last.Message, "deadline 60ms") {
		t.Fatalf("%d holds, last %s %q", holds, last.Status, last.Message)
	}
}

// With a pause between batches the batch bakes under analysis before its
// hosts are recorded, and the scheduler does not bake a second time.
func TestEngineAnalysisBakes(t *testing.T) {
	fc := &fakeCounters{perRead: 100, errs: map[string]int64{}, now: map[string]analysis.Counters{}}
	f := analysisFleet(t, `pause = "30ms"`)
	res, err := f.applyAnalysed(fc)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for h, o := range res.Outcomes {
		if o != event.OutcomeOK {
			t.Fatalf("%s: %s", h, o)
		}
	}
	bakes := map[string]int{}
	for _, h := range []string{"web1", "web2", "web3"} {
		for _, e := range f.rec.analysisEvents(h) {
			if e.Analysis.Step == "bake" {
				bakes[h]++
				if e.Analysis.ElapsedS < 0 {
					t.Fatal("negative")
				}
			}
		}
	}
	if bakes["web1"] == 0 || bakes["web2"] == 0 || bakes["web3"] != 0 {
		t.Errorf("bake verdicts per host %v: want web1 and web2 (followed by a batch), not web3 (last)", bakes)
	}
	for _, e := range f.rec.events {
		if e.Event == event.Waiting && e.Status == "bake" {
			t.Errorf("the scheduler baked again: %+v", e)
		}
	}
}
