package rollout

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func TestDecide(t *testing.T) {
	bs := [][]string{{"a"}, {"b", "c"}, {"d"}}
	tests := []struct {
		name string
		s    RunState
		now  time.Time
		want Action
		why  string
	}{
		{"first batch", RunState{Batches: bs}, t0, ActStartBatch, ""},
		{"in flight waits", RunState{Batches: bs, InFlight: true}, t0, ActWait, "batch in flight"},
		{"failure at limit 0 halts", RunState{Batches: bs, Next: 1, Failures: 1}, t0, ActHalt, ""},
		{"failure within limit goes on", RunState{Batches: bs, Next: 1, Failures: 1, FailLimit: 1}, t0, ActStartBatch, ""},
		{"paused waits", RunState{Batches: bs, Next: 1, Paused: true}, t0, ActWait, "paused"},
		{"approval waits", RunState{Batches: bs, Next: 1, NeedApproval: true}, t0, ActWait, "approval"},
		{"bake waits", RunState{Batches: bs, Next: 1, BakeUntil: t0.Add(time.Second)}, t0, ActWait, "bake"},
		{"bake over", RunState{Batches: bs, Next: 1, BakeUntil: t0}, t0, ActStartBatch, ""},
		{"stopping halts", RunState{Batches: bs, Next: 1, Stopping: true}, t0, ActHalt, ""},
		{"stopping after last is done", RunState{Batches: bs, Next: 3, Stopping: true}, t0, ActDone, ""},
		{"all done", RunState{Batches: bs, Next: 3}, t0, ActDone, ""},
		{"failure beats done", RunState{Batches: bs, Next: 3, Failures: 1}, t0, ActHalt, ""},
		{"capacity halts", RunState{Batches: bs, Next: 1, CapacityHalt: "floor"}, t0, ActHalt, ""},
		{"pause beats approval", RunState{Batches: bs, Next: 1, Paused: true, NeedApproval: true}, t0, ActWait, "paused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.s, tt.now)
			if d.Action != tt.want {
				t.Fatalf("Decide = %+v, want action %v", d, tt.want)
			}
			why := d.Reason
			if d.Action == ActWait {
				why = string(d.Wait)
			}
			if tt.why != "" && why != tt.why {
				t.Fatalf("reason = %q, want %q", why, tt.why)
			}
		})
	}
}

// Property: driving a run with random failures, the scheduler never starts a
// batch while one is in flight, never after the failure limit is exceeded,
// and starts batches strictly in order.
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000; iter++ {
		n := 1 + rng.Intn(6)
		var bs [][]string
		for i := 0; i < n; i++ {
			bs = append(bs, []string{fmt.Sprint(i)})
		}
		s := RunState{Batches: bs, FailLimit: rng.Intn(3)}
		started := -1
		for steps := 0; steps < 50; steps++ {
			s.Paused = rng.Intn(5) == 0
			d := Decide(s, t0)
			switch d.Action {
			case ActStartBatch:
				if s.InFlight {
					t.Fatalf("started batch %d while one was in flight", d.Batch)
				}
				if s.Failures > s.FailLimit {
					t.Fatalf("started batch %d after %d failures (limit %d)", d.Batch, s.Failures, s.FailLimit)
				}
				if d.Batch != started+1 {
					t.Fatalf("started batch %d after %d", d.Batch, started)
				}
				started = d.Batch
				s.InFlight = true
			case ActWait:
				if s.InFlight {
					s.InFlight = false
					s.Failures += rng.Intn(2)
					s.Next = started + 1
				}
			case ActHalt:
				if s.Failures <= s.FailLimit {
					t.Fatalf("halted with %d failures, limit %d", s.Failures, s.FailLimit)
				}
				steps = 50
			case ActDone:
				if s.Next != len(bs) {
					t.Fatalf("done at batch %d of %d", s.Next, len(bs))
				}
				steps = 50
			}
		}
	}
}

// Property: walking the pipeline with every possible sequence of step
// results, a failed validator or check is never followed by a restart, and a
// failure before restart never ends with the host drained unless the
// recovery itself failed.
func TestNextStepProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, policy := range []Policy{PolicyHalt, PolicyRollback} {
		for iter := 0; iter < 5000; iter++ {
			step := StepDrain
			var path []Step
			failedPreRestart := false
			restarted := false
			recoveryFailed := false
			for !step.Terminal() && len(path) < 40 {
				ok := rng.Intn(4) != 0
				path = append(path, step)
				if step == StepRestart {
					if failedPreRestart {
						t.Fatalf("%s: restart after a failed validator/check: %v", policy, path)
					}
					restarted = true
				}
				if !ok {
					switch step {
					case StepValidate, StepCheck, StepStage, StepInstall, StepDrain, StepWait:
						failedPreRestart = true
					case StepRestore, StepReturn, StepRollback, StepRollbackOut, StepUndrain:
						recoveryFailed = true
					}
				}
				step = NextStep(step, ok, policy)
			}
			if !step.Terminal() {
				t.Fatalf("%s: pipeline did not terminate: %v", policy, path)
			}
			if failedPreRestart && !restarted && !recoveryFailed && step != EndFailed {
				t.Fatalf("%s: failure before restart ended %s, want end_failed (restored, serving): %v", policy, step, path)
			}
			if step == EndRolledBack && policy != PolicyRollback {
				t.Fatalf("rolled back under policy %s: %v", policy, path)
			}
		}
	}
}

func TestNextStepTable(t *testing.T) {
	tests := []struct {
		cur    Step
		ok     bool
		policy Policy
		want   Step
	}{
		{StepDrain, true, PolicyHalt, StepWait},
		{StepWait, false, PolicyHalt, StepReturn},
		{StepValidate, false, PolicyHalt, StepReturn},
		{StepCheck, false, PolicyHalt, StepRestore},
		{StepInstall, false, PolicyRollback, StepRestore},
		{StepRestore, true, PolicyHalt, StepReturn},
		{StepReturn, true, PolicyHalt, EndFailed},
		{StepHealth, false, PolicyHalt, StepDiagnose},
		{StepHealth, false, PolicyRollback, StepRollback},
		{StepRestart, false, PolicyRollback, StepRollback},
		{StepRollback, true, PolicyRollback, StepRollbackOut},
		{StepRollbackOut, true, PolicyRollback, EndRolledBack},
		{StepRollback, false, PolicyRollback, StepDiagnose},
		{StepDiagnose, true, PolicyHalt, EndDrained},
		{StepRecord, true, PolicyHalt, EndOK},
		{StepAnalysis, false, PolicyRollback, StepRollback},
		{StepAnalysis, false, PolicyHalt, StepDiagnose},
	}
	for _, tt := range tests {
		if got := NextStep(tt.cur, tt.ok, tt.policy); got != tt.want {
			t.Errorf("NextStep(%s, %v, %s) = %s, want %s", tt.cur, tt.ok, tt.policy, got, tt.want)
		}
	}
}

// A failed canary verdict during the ramp is on_failure's business (roll
// back or leave drained), where any other undrain failure is diagnosed.
func TestJudged(t *testing.T) {
	verdict := &AnalysisError{Step: "ramp 10%", Reason: "error rate 5%"}
	wrapped := fmt.Errorf("undrain: %w", verdict)
	for _, tt := range []struct {
		err    error
		policy Policy
		want   Step
	}{
		{wrapped, PolicyRollback, StepRollback},
		{wrapped, PolicyHalt, StepDiagnose},
		{errors.New("load balancer never reported the server UP"), PolicyRollback, StepDiagnose},
	} {
		if got := NextStep(Judged(StepUndrain, tt.err), false, tt.policy); got != tt.want {
			t.Errorf("%v under %s: %s, want %s", tt.err, tt.policy, got, tt.want)
		}
	}
	if Judged(StepUndrain, nil) != StepUndrain {
		t.Error("a step that passed is its own")
	}
}

func TestFitBatch(t *testing.T) {
	up := func(names ...string) []Member {
		var ms []Member
		for _, n := range names {
			ms = append(ms, Member{Name: n, Serving: true, Status: "UP"})
		}
		return ms
	}
	down := Member{Name: "w4", Serving: false, Status: "DOWN"}
	tests := []struct {
		name       string
		batch      []string
		members    []Member
		min        int
		now, later int
		refused    bool
	}{
		{"fits", []string{"w1"}, up("w1", "w2", "w3"), 1, 1, 0, false},
		{"shrunk", []string{"w1", "w2", "w3"}, up("w1", "w2", "w3"), 1, 2, 1, false},
		{"down server counts against the floor", []string{"w1", "w2"}, append(up("w1", "w2", "w3"), down), 2, 1, 1, false},
		{"refused", []string{"w1"}, append(up("w1"), down), 1, 0, 1, true},
		{"non-serving batch host is free", []string{"w4"}, append(up("w1"), down), 1, 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, later, reason := FitBatch(tt.batch, tt.members, tt.min)
			if len(now) != tt.now || len(later) != tt.later || (reason != "") != tt.refused {
				t.Fatalf("FitBatch = %v, %v, %q", now, later, reason)
			}
			if tt.refused && !strings.Contains(reason, "w4 (DOWN)") && len(tt.members) > 1 {
				t.Fatalf("refusal does not name the down server: %q", reason)
			}
		})
	}
}

// Property: whatever the pool, the hosts FitBatch lets go now never take
// the serving count below the floor.
func TestFitBatchNeverBelowFloor(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for iter := 0; iter < 3000; iter++ {
		n := 1 + rng.Intn(8)
		var ms []Member
		var names []string
		for i := 0; i < n; i++ {
			name := fmt.Sprint("w", i)
			names = append(names, name)
			ms = append(ms, Member{Name: name, Serving: rng.Intn(4) != 0})
		}
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		batch := names[:1+rng.Intn(n)]
		min := rng.Intn(n + 1)
		now, later, _ := FitBatch(batch, ms, min)
		if len(now)+len(later) != len(batch) {
			t.Fatalf("hosts lost: %v + %v != %v", now, later, batch)
		}
		serving := 0
		out := map[string]bool{}
		for _, h := range now {
			out[h] = true
		}
		startServing := 0
		for _, m := range ms {
			if m.Serving {
				startServing++
				if !out[m.Name] {
					serving++
				}
			}
		}
		if serving < min && serving != startServing {
			t.Fatalf("floor %d breached: %d serving after taking %v out of %+v", min, serving, now, ms)
		}
	}
}
