package rollout

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
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
		{StepRollback, true, PolicyRollback, StepRollbackValidate},
		{StepRollbackValidate, true, PolicyRollback, StepRollbackInstall},
		{StepRollbackInstall, true, PolicyRollback, StepRollbackCheck},
		{StepRollbackCheck, true, PolicyRollback, StepRollbackRestart},
		{StepRollbackRestart, true, PolicyRollback, StepRollbackHealth},
		{StepRollbackHealth, true, PolicyRollback, StepRollbackOut},
		{StepRollbackOut, true, PolicyRollback, EndRolledBack},
		{StepRollback, false, PolicyRollback, StepDiagnose},
		{StepRollbackValidate, false, PolicyRollback, StepDiagnose},
		{StepRollbackCheck, false, PolicyRollback, StepDiagnose},
		{StepRollbackHealth, false, PolicyRollback, StepDiagnose},
		{StepRollbackOut, false, PolicyRollback, StepDiagnose},
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

// every step of the pipeline, in the order a host takes them
var allSteps = []Step{StepDrain, StepWait, StepStage, StepValidate, StepInstall, StepCheck, StepRestart, StepHealth,
	StepUndrain, StepRecord, StepAnalysis, StepRestore, StepReturn, StepDiagnose,
	StepRollback, StepRollbackValidate, StepRollbackInstall, StepRollbackCheck, StepRollbackRestart, StepRollbackHealth, StepRollbackOut}

// Property: from every step, under every policy and whatever the steps'
// results, the pipeline ends: the transition graph has no cycle, and every
// step leads somewhere else (a step NextStep did not know would stay put).
func TestNextStepEveryPathTerminates(t *testing.T) {
	for _, policy := range []Policy{PolicyHalt, PolicyRollback} {
		const (
			unseen = iota
			open
			closed
		)
		mark := map[Step]int{}
		var visit func(s Step, path []Step)
		visit = func(s Step, path []Step) {
			path = append(path, s)
			if s.Terminal() {
				return
			}
			switch mark[s] {
			case open:
				t.Fatalf("%s: the pipeline can loop: %v", policy, path)
			case closed:
				return
			}
			mark[s] = open
			for _, ok := range []bool{true, false} {
				next := NextStep(s, ok, policy)
				if next == s {
					t.Fatalf("%s: NextStep(%s, %v) stays on %s", policy, s, ok, s)
				}
				visit(next, path)
			}
			mark[s] = closed
		}
		for _, s := range allSteps {
			visit(s, nil)
		}
	}
}

// walk is one host's pipeline with random step results, from drain to its
// end: the steps taken, whether each failed, and the step NextStep judged
// (a failed undrain is, at random, a failed canary verdict: StepAnalysis).
func walk(rng *rand.Rand, policy Policy) (path []Step, failed []bool, judged []Step, end Step) {
	step := StepDrain
	for !step.Terminal() {
		if len(path) > 60 {
			panic(fmt.Sprintf("no end: %v", path))
		}
		ok := rng.Intn(4) != 0
		j := step
		if !ok && step == StepUndrain && rng.Intn(2) == 0 {
			j = Judged(step, &AnalysisError{Step: "ramp 10%", Reason: "error rate 5%"})
		}
		path, failed, judged = append(path, step), append(failed, !ok), append(judged, j)
		step = NextStep(j, ok, policy)
	}
	return path, failed, judged, step
}

// Properties of the whole pipeline, the rollback path included, over random
// step results:
//   - never a restart (of either revision) after a failed stage, validator,
//     install or check: files that are not known good never go live;
//   - a host is never put back in rotation (undrain, return, rollback_out)
//     after a failed health gate, canary verdict or undrain, until a later
//     health gate passed;
//   - a failed step never ends with the host on the new revision (end_ok);
//   - under on_failure = "rollback", a failure once the new revision runs
//     (restart, health gate, canary verdict) always takes the rollback path
//     and ends rolled back, or drained for a person when the way back failed
//     too; under "halt" the rollback path is never taken;
//   - rolled back means the rollback's own undrain was the last step.
func TestNextStepRollbackProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	notKnownGood := map[Step]bool{StepStage: true, StepValidate: true, StepInstall: true, StepCheck: true,
		StepRollback: true, StepRollbackValidate: true, StepRollbackInstall: true, StepRollbackCheck: true}
	restart := map[Step]bool{StepRestart: true, StepRollbackRestart: true}
	gate := map[Step]bool{StepHealth: true, StepRollbackHealth: true}
	backInRotation := map[Step]bool{StepUndrain: true, StepReturn: true, StepRollbackOut: true}
	newRevisionRuns := map[Step]bool{StepRestart: true, StepHealth: true, StepAnalysis: true}
	rollbackPath := map[Step]bool{StepRollback: true, StepRollbackValidate: true, StepRollbackInstall: true, StepRollbackCheck: true,
		StepRollbackRestart: true, StepRollbackHealth: true, StepRollbackOut: true}
	seen := map[Step]bool{}
	for _, policy := range []Policy{PolicyHalt, PolicyRollback} {
		for iter := 0; iter < 20000; iter++ {
			path, failed, judged, end := walk(rng, policy)
			badFiles, unhealthy, anyFailed, newFailed, tookRollback := false, false, false, false, false
			for i, s := range path {
				seen[s], seen[judged[i]] = true, true
				if restart[s] && badFiles {
					t.Fatalf("%s: restart after a failed stage/validator/install/check: %v %v", policy, path, failed)
				}
				if backInRotation[s] && unhealthy {
					t.Fatalf("%s: %s after a failed health gate: %v %v", policy, s, path, failed)
				}
				tookRollback = tookRollback || rollbackPath[s]
				if gate[s] {
					unhealthy = failed[i]
				}
				if !failed[i] {
					continue
				}
				anyFailed = true
				badFiles = badFiles || notKnownGood[s]
				unhealthy = unhealthy || s == StepUndrain
				newFailed = newFailed || newRevisionRuns[judged[i]]
			}
			if anyFailed && end == EndOK {
				t.Fatalf("%s: a failed step ended %s: %v %v", policy, end, path, failed)
			}
			if policy == PolicyHalt && (tookRollback || end == EndRolledBack) {
				t.Fatalf("halt took the rollback path: %v %v", path, failed)
			}
			if policy == PolicyRollback && newFailed {
				if !tookRollback {
					t.Fatalf("rollback: the new revision failed but the rollback path was not taken: %v %v", path, failed)
				}
				if end != EndRolledBack && end != EndDrained {
					t.Fatalf("rollback: the new revision failed and the host ended %s: %v %v", end, path, failed)
				}
			}
			if end == EndRolledBack && path[len(path)-1] != StepRollbackOut {
				t.Fatalf("rolled back without the rollback's undrain: %v", path)
			}
		}
	}
	for _, s := range allSteps {
		if !seen[s] {
			t.Errorf("no random path reached %s: the properties do not cover it", s)
		}
	}
}

func TestStopBefore(t *testing.T) {
	tests := []struct {
		next Step
		s    Stops
		want HostStop
	}{
		{StepDrain, Stops{}, GoOn},
		{StepDrain, Stops{Lost: true}, StopUntouched},
		{StepDrain, Stops{Stopping: true}, GoOn}, // drained, then put back before staging
		{StepWait, Stops{Stopping: true}, GoOn},
		{StepStage, Stops{Stopping: true}, StopPutBack},
		{StepStage, Stops{Stopping: true, Lost: true}, StopPutBack},
		{StepStage, Stops{Lost: true}, GoOn}, // in flight: finishes its pipeline
		{StepInstall, Stops{Stopping: true}, GoOn},
		{StepRestart, Stops{Stopping: true}, GoOn},
		{StepRollback, Stops{Stopping: true, Lost: true}, GoOn},
		{StepRollbackRestart, Stops{Stopping: true}, GoOn},
	}
	for _, tt := range tests {
		if got := StopBefore(tt.next, tt.s); got != tt.want {
			t.Errorf("StopBefore(%s, %+v) = %v, want %v", tt.next, tt.s, got, tt.want)
		}
	}
}

func TestStopAfter(t *testing.T) {
	tests := []struct {
		failed, cancelled, unreachable bool
		want                           HostStop
	}{
		{false, false, false, GoOn},
		{false, true, false, GoOn}, // the step finished before the cancel: go on
		{true, false, false, GoOn}, // an ordinary failure: NextStep recovers
		{true, true, false, StopCutOff},
		{true, false, true, StopUnreachable},
		{true, true, true, StopCutOff}, // the cancel cut the connection too
	}
	for _, tt := range tests {
		if got := StopAfter(tt.failed, tt.cancelled, tt.unreachable); got != tt.want {
			t.Errorf("StopAfter(failed=%v, cancelled=%v, unreachable=%v) = %v, want %v", tt.failed, tt.cancelled, tt.unreachable, got, tt.want)
		}
	}
}

// While a drained host's sessions close: none open ends the wait (then
// the LB settles) even when stopping or out of time; an operator's stop
// ends it without waiting, before the timeout is judged; the timeout fails
// the step only with sessions still open.
func TestWaitSessions(t *testing.T) {
	tests := []struct {
		open     int
		stopping bool
		left     time.Duration
		want     SessionWait
	}{
		{0, false, time.Minute, SessionsClosed},
		{0, true, time.Minute, SessionsClosed},
		{0, false, 0, SessionsClosed},
		{0, true, -time.Second, SessionsClosed},
		{3, true, time.Minute, SessionsStopped},
		{3, true, 0, SessionsStopped}, // a stop is not a drain timeout
		{3, false, 0, SessionsTimeout},
		{3, false, -time.Second, SessionsTimeout},
		{3, false, time.Nanosecond, SessionsPoll},
		{1, false, time.Minute, SessionsPoll},
	}
	for _, tt := range tests {
		if got := WaitSessions(tt.open, tt.stopping, tt.left); got != tt.want {
			t.Errorf("WaitSessions(open=%d, stopping=%v, left=%s) = %v, want %v", tt.open, tt.stopping, tt.left, got, tt.want)
		}
	}
}

// Each end of the pipeline has its outcome; no end reports ok but EndOK.
func TestEndOutcome(t *testing.T) {
	for end, want := range map[Step]event.Outcome{
		EndOK: event.OutcomeOK, EndFailed: event.OutcomeFailed,
		EndRolledBack: event.OutcomeRolledBack, EndDrained: event.OutcomeDrained,
		StepDiagnose: event.OutcomeDrained, // not an end: never reported as serving
	} {
		if got := EndOutcome(end); got != want {
			t.Errorf("EndOutcome(%s) = %s, want %s", end, got, want)
		}
	}
}

// host_done names the revision a host is on: the new one only when it
// serves it, the old one when it went back or never changed, none when
// that is not known.
func TestOutcomeRevision(t *testing.T) {
	for o, want := range map[event.Outcome]string{
		event.OutcomeOK: "new", event.OutcomeRolledBack: "old", event.OutcomeFailed: "old",
		event.OutcomeStopped: "old", event.OutcomeDrained: "", event.OutcomeUnknown: "",
	} {
		if got := OutcomeRevision(o, "new", "old"); got != want {
			t.Errorf("OutcomeRevision(%s) = %q, want %q", o, got, want)
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
