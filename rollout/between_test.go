package rollout

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// sim is a generated run around the real reducer: it answers every
// decision as a runner would (the pool, host outcomes, the clock) and
// throws in the operator's keys and a lost lock at random moments, while
// checking the reducer's promises.
type sim struct {
	t   *testing.T
	rng *rand.Rand
	s   Between
	now time.Time
	log []string // what happened, for the failure message

	pool     []string        // every server of the LB pool (targets and others)
	down     map[string]bool // servers not serving, not because of this run
	drained  map[string]bool // hosts of the batch in flight
	failures int
	floor    int
	planned  map[string]bool // every host the run may change

	stopped, lost   bool
	paused          bool
	approvedGate    bool      // an approval was given (or auto) since the gate opened
	gateOpen        bool      // the last batch done is followed by approve_after
	bakeUntil       time.Time // from the last batch done
	started, halted []string
	err             error
}

func newSim(t *testing.T, rng *rand.Rand) *sim {
	n := 1 + rng.Intn(10)
	var hosts []string
	for i := 1; i <= n; i++ {
		hosts = append(hosts, fmt.Sprint("web", i))
	}
	// batches of random sizes, in order
	var batches [][]string
	for rest := hosts; len(rest) > 0; {
		k := 1 + rng.Intn(len(rest))
		batches = append(batches, rest[:k])
		rest = rest[k:]
	}
	sm := &sim{t: t, rng: rng, now: t0, down: map[string]bool{}, drained: map[string]bool{}, planned: map[string]bool{}}
	sm.pool = append([]string{}, hosts...)
	for i := 0; i < rng.Intn(4); i++ {
		sm.pool = append(sm.pool, fmt.Sprint("other", i))
	}
	for _, h := range sm.pool {
		if rng.Intn(6) == 0 {
			sm.down[h] = true
		}
	}
	for _, h := range hosts {
		sm.planned[h] = true
	}
	sm.floor = rng.Intn(len(sm.pool) + 1)
	sm.s = Between{
		RunState:     RunState{Batches: batches, FailLimit: rng.Intn(3)},
		ApproveAfter: map[int]bool{},
		AutoApprove:  rng.Intn(4) == 0,
		Unattended:   rng.Intn(4) == 0,
		Analysed:     rng.Intn(4) == 0,
		Floor:        func(int) int { return sm.floor },
	}
	if rng.Intn(2) == 0 {
		sm.s.Pause = time.Duration(1+rng.Intn(30)) * time.Second
	}
	for b := 1; b < len(batches); b++ {
		if rng.Intn(3) == 0 {
			sm.s.ApproveAfter[b] = true
		}
	}
	return sm
}

func (sm *sim) fail(format string, args ...any) {
	sm.t.Helper()
	sm.t.Fatalf(format+"\nstate: %+v\nhistory:\n  %s", append(args, sm.s, strings.Join(sm.log, "\n  "))...)
}

// feed gives the reducer one input and checks its answer.
func (sm *sim) feed(in Input) Decision {
	sm.t.Helper()
	in.Now = sm.now
	switch in.Kind {
	case InStop:
		sm.stopped = true
	case InPause:
		sm.paused = true
	case InResume:
		sm.paused = false
	case InLockLost:
		sm.lost = true
	case InApprove:
		if sm.s.NeedApproval {
			sm.approvedGate = true
		}
	}
	var d Decision
	sm.s, d = Reduce(sm.s, in)
	sm.log = append(sm.log, fmt.Sprintf("%s -> %s", inputString(in), decisionString(d)))
	if d.Approved != "" && !sm.gateOpen {
		sm.fail("approved with no gate open")
	}
	if d.Approved != "" {
		sm.approvedGate = true
	}
	switch d.Action {
	case ActReadPool, ActStartBatch:
		if sm.stopped {
			sm.fail("a batch starts after a stop")
		}
		if sm.lost {
			sm.fail("a batch starts while a lost lock is unresolved")
		}
		if sm.paused {
			sm.fail("a batch starts while the run is paused")
		}
		if sm.failures > sm.s.FailLimit {
			sm.fail("a batch starts after %d failures (max_failures %d)", sm.failures, sm.s.FailLimit)
		}
		if len(sm.drained) > 0 {
			sm.fail("a batch starts while %d host(s) of the last are in flight", len(sm.drained))
		}
		if len(sm.halted) > 0 {
			sm.fail("a batch starts after the run halted")
		}
		if sm.gateOpen && !sm.approvedGate {
			sm.fail("a batch starts past an approve_after gate no one approved")
		}
		if !sm.s.Analysed && sm.now.Before(sm.bakeUntil) {
			sm.fail("a batch starts during the bake (now %s, bake until %s)", sm.now, sm.bakeUntil)
		}
	}
	return d
}

func inputString(in Input) string {
	k := [...]string{"tick", "pool", "host_done", "batch_done", "approve", "pause", "resume", "stop", "lock_lost"}[in.Kind]
	switch in.Kind {
	case InHostDone:
		return fmt.Sprintf("%s(%s %s)", k, in.Host, in.Outcome)
	case InPool:
		return fmt.Sprintf("%s(%v err=%v)", k, in.Members, in.Err)
	}
	return k
}

func decisionString(d Decision) string {
	a := [...]string{"wait", "start", "halt", "done", "read_pool"}[d.Action]
	return fmt.Sprintf("%s batch=%d hosts=%v wait=%q reason=%q err=%v", a, d.Batch, d.Hosts, d.Wait, d.Reason, d.Err)
}

// operator is a random key or event from outside, or nothing.
func (sm *sim) operator() (Input, bool) {
	switch sm.rng.Intn(24) {
	case 0:
		return Input{Kind: InPause}, true
	case 1, 2:
		return Input{Kind: InResume}, true
	case 3:
		return Input{Kind: InStop}, true
	case 4:
		return Input{Kind: InLockLost, Cause: errors.New("lock lost: web1: not held")}, true
	case 5, 6, 7:
		return Input{Kind: InApprove}, true
	}
	return Input{}, false
}

func (sm *sim) members() []Member {
	var ms []Member
	for _, h := range sm.pool {
		ms = append(ms, Member{Name: h, Serving: !sm.down[h], Status: "x"})
	}
	return ms
}

var outcomes = []event.Outcome{event.OutcomeOK, event.OutcomeOK, event.OutcomeOK, event.OutcomeFailed,
	event.OutcomeDrained, event.OutcomeRolledBack, event.OutcomeStopped, event.OutcomeUnknown}

// run drives one generated run to its end.
func (sm *sim) run() {
	d := sm.feed(Input{Kind: InTick})
	for steps := 0; ; steps++ {
		if steps > 2000 {
			sm.fail("the run never ended")
		}
		switch d.Action {
		case ActDone:
			if !sm.stopped && sm.s.Next != len(sm.s.Batches) {
				sm.fail("done at batch %d of %d", sm.s.Next, len(sm.s.Batches))
			}
			sm.finish(d)
			return
		case ActHalt:
			sm.halted = d.NotStarted
			sm.err = d.Err
			sm.checkHalt(d)
			sm.finish(d)
			return
		case ActWait:
			if in, ok := sm.operator(); ok {
				d = sm.feed(in)
				continue
			}
			if d.Until.IsZero() {
				// waiting for a person or a resume: one comes eventually
				if d.Wait == event.WaitPaused {
					d = sm.feed(Input{Kind: InResume})
				} else {
					d = sm.feed(Input{Kind: InApprove})
				}
				continue
			}
			sm.now = sm.now.Add(time.Duration(sm.rng.Int63n(int64(d.Until.Sub(sm.now)) + int64(time.Second))))
			d = sm.feed(Input{Kind: InTick})
		case ActReadPool:
			in := Input{Kind: InPool, Members: sm.members()}
			if sm.rng.Intn(15) == 0 {
				in.Members, in.Err = nil, errors.New("haproxy: no answer")
			}
			// the operator may act while the pool is read
			if op, ok := sm.operator(); ok {
				sm.feed(op)
			}
			asked := d.Hosts
			d = sm.feed(in)
			if d.Action == ActStartBatch {
				sm.checkStart(d, asked, in.Members)
			}
		case ActStartBatch:
			sm.t.Fatalf("start without reading the pool")
		}
		if d.Action == ActStartBatch {
			d = sm.runBatch(d)
		}
	}
}

// checkStart: the batch started is part of the batch asked for, and the
// pool keeps its floor.
func (sm *sim) checkStart(d Decision, asked []string, ms []Member) {
	if len(d.Hosts) == 0 || len(d.Hosts) > len(asked) {
		sm.fail("started %v for the batch %v", d.Hosts, asked)
	}
	serving := 0
	for _, m := range ms {
		if m.Serving && !slices.Contains(d.Hosts, m.Name) {
			serving++
		}
	}
	before := 0
	for _, m := range ms {
		if m.Serving {
			before++
		}
	}
	if serving < sm.floor && serving != before {
		sm.fail("started %v: %d serving left, below the floor %d", d.Hosts, serving, sm.floor)
	}
	for _, h := range d.Hosts {
		if !slices.Contains(asked, h) || slices.Contains(sm.started, h) {
			sm.fail("started %s: not in the batch %v, or started twice", h, asked)
		}
		sm.drained[h] = true
	}
	sm.started = append(sm.started, d.Hosts...)
}

// runBatch ends the hosts of the batch one by one, with the operator
// acting in between, then the batch.
func (sm *sim) runBatch(d Decision) Decision {
	sm.gateOpen, sm.approvedGate = false, false
	for _, h := range d.Hosts {
		if op, ok := sm.operator(); ok {
			if x := sm.feed(op); x.Action != ActWait {
				sm.fail("decided %s with a batch in flight", decisionString(x))
			}
		}
		o := outcomes[sm.rng.Intn(len(outcomes))]
		if Failed(o) {
			sm.failures++
		}
		delete(sm.drained, h)
		if x := sm.feed(Input{Kind: InHostDone, Host: h, Outcome: o}); x.Action != ActWait {
			sm.fail("decided %s with a batch in flight", decisionString(x))
		}
	}
	sm.now = sm.now.Add(time.Duration(sm.rng.Intn(5)) * time.Second)
	batch := d.Batch + 1
	if sm.s.ApproveAfter[batch] && batch < len(sm.s.Batches) {
		sm.gateOpen = true
	}
	if sm.s.Pause > 0 && !sm.s.Analysed && batch < len(sm.s.Batches) {
		sm.bakeUntil = sm.now.Add(sm.s.Pause)
	}
	return sm.feed(Input{Kind: InBatchDone})
}

// checkHalt: the halt says which hosts will not start, and its error is
// the right exit code.
func (sm *sim) checkHalt(d Decision) {
	code := ExitCode(d.Err)
	switch {
	case d.Err == nil:
		sm.fail("halt without an error")
	case sm.lost:
		if !errors.Is(d.Err, ErrLost) || code != ExitFailed {
			sm.fail("a lost lock halted with %v (exit %d), want a safe stop, exit 1", d.Err, code)
		}
	case sm.s.needsGate():
		if !errors.Is(d.Err, ErrApprovalNeeded) || code != ExitFailed {
			sm.fail("an unattended gate halted with %v (exit %d)", d.Err, code)
		}
	case sm.failures > sm.s.FailLimit:
		if code != ExitFailed {
			sm.fail("the failure budget halted with %v (exit %d), want 1", d.Err, code)
		}
	case sm.stopped && sm.s.CapacityHalt == "":
		if code != ExitInterrupted {
			sm.fail("a stop halted with %v (exit %d), want 130", d.Err, code)
		}
	case sm.s.CapacityHalt != "" && len(sm.started) == 0:
		if code != ExitRefused {
			sm.fail("the floor refused the first batch with %v (exit %d), want 2", d.Err, code)
		}
	default:
		if code != ExitFailed {
			sm.fail("halted with %v (exit %d), want 1", d.Err, code)
		}
	}
	if sm.failures <= sm.s.FailLimit && !sm.stopped && !sm.lost && sm.s.CapacityHalt == "" && !sm.s.needsGate() {
		sm.fail("halted with nothing to halt for: %s", d.Reason)
	}
}

// finish: every host either started or is named as not started, and the
// reducer stays halted whatever comes next.
func (sm *sim) finish(d Decision) {
	for h := range sm.planned {
		if !slices.Contains(sm.started, h) && !slices.Contains(sm.halted, h) && !sm.stopped {
			sm.fail("%s neither started nor reported as not started (%s)", h, decisionString(d))
		}
	}
	for i := 0; i < 5; i++ {
		in, ok := sm.operator()
		if !ok {
			in = Input{Kind: InTick}
		}
		sm.now = sm.now.Add(time.Minute)
		x := sm.feed(in)
		if x.Action == ActStartBatch || x.Action == ActReadPool {
			sm.fail("the run went on after %s", decisionString(d))
		}
	}
}

// Property: driving the real reducer with generated runs — random batches,
// failures, pools with servers down, approve_after gates, bakes, and the
// operator's pause/resume/stop/approve and a lost lock at any moment — no
// batch starts while another is in flight, past the failure budget, below
// the capacity floor, after a stop, while a lost lock is unresolved,
// before an approval or during a bake; the batch started is within the
// batch planned; a halt names the hosts it leaves and maps to the right
// exit code.
func TestReduceProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	for iter := 0; iter < 5000; iter++ {
		sm := newSim(t, rng)
		sm.run()
	}
}

// The texts a run shows between batches, and the halt → error mapping, in
// one table.
func TestReduceTexts(t *testing.T) {
	bs := [][]string{{"a"}, {"b"}, {"c"}}
	base := Between{RunState: RunState{Batches: bs}, ApproveAfter: map[int]bool{1: true}, Pause: 7 * time.Second}
	// batch 1 runs, then the gate
	s, d := Reduce(base, Input{Kind: InTick, Now: t0})
	if d.Action != ActReadPool || !slices.Equal(d.Hosts, []string{"a"}) {
		t.Fatalf("first: %s", decisionString(d))
	}
	s, d = Reduce(s, Input{Kind: InPool, Now: t0, Members: []Member{{Name: "a", Serving: true}, {Name: "b", Serving: true}}})
	if d.Action != ActStartBatch || !s.InFlight {
		t.Fatalf("pool: %s", decisionString(d))
	}
	s, _ = Reduce(s, Input{Kind: InHostDone, Now: t0, Host: "a", Outcome: event.OutcomeOK})
	s, d = Reduce(s, Input{Kind: InBatchDone, Now: t0})
	if d.Action != ActWait || d.Wait != event.WaitApproval || d.Batch != 1 ||
		d.Announce != "batch 1 done; approve to start batch 2 (press y, or answer the prompt)" {
		t.Fatalf("gate: %s announce %q", decisionString(d), d.Announce)
	}
	// the same wait again is not announced again
	if _, again := Reduce(s, Input{Kind: InTick, Now: t0}); again.Announce != "" {
		t.Errorf("announced twice: %q", again.Announce)
	}
	// paused beats the gate; resuming returns to it, announced again
	p, d := Reduce(s, Input{Kind: InPause, Now: t0})
	if d.Wait != event.WaitPaused || d.Announce != "paused after the current batch (press r to resume)" {
		t.Errorf("pause: %s %q", decisionString(d), d.Announce)
	}
	if _, d = Reduce(p, Input{Kind: InResume, Now: t0}); d.Wait != event.WaitApproval || d.Announce == "" {
		t.Errorf("resume: %s %q", decisionString(d), d.Announce)
	}
	// approving: the bake is still on
	s, d = Reduce(s, Input{Kind: InApprove, Now: t0.Add(time.Second)})
	if d.Approved != "approved by a person" || d.Wait != event.WaitBake || !d.Until.Equal(t0.Add(7*time.Second)) ||
		d.Announce != "baking for 7s before batch 2" {
		t.Fatalf("approve: %s approved %q announce %q", decisionString(d), d.Approved, d.Announce)
	}
	if _, d = Reduce(s, Input{Kind: InTick, Now: t0.Add(7 * time.Second)}); d.Action != ActReadPool || d.Batch != 1 {
		t.Fatalf("after the bake: %s", decisionString(d))
	}
	// a stop now: batches 2 and 3 are not started, exit 130
	_, d = Reduce(s, Input{Kind: InStop, Now: t0.Add(time.Second)})
	if d.Action != ActHalt || !slices.Equal(d.NotStarted, []string{"b", "c"}) || d.Reason != "stopped by the operator" ||
		d.Log != "halting: stopped by the operator" || ExitCode(d.Err) != ExitInterrupted {
		t.Fatalf("stop: %s not started %v log %q", decisionString(d), d.NotStarted, d.Log)
	}
	// a lost lock: the same stop, as a safe stop naming its cause (exit 1)
	cause := errors.New("lock lost")
	_, d = Reduce(s, Input{Kind: InLockLost, Now: t0, Cause: cause})
	var se *StoppedError
	if d.Action != ActHalt || !errors.As(d.Err, &se) || !errors.Is(d.Err, cause) || ExitCode(d.Err) != ExitFailed {
		t.Fatalf("lost: %s", decisionString(d))
	}
	// unattended at the gate: stops there, exit 1, names --auto-approve's case
	u := base
	u.Unattended = true
	u.Batches, u.Next, u.NeedApproval = bs, 1, true
	_, d = Reduce(u, Input{Kind: InTick, Now: t0})
	if d.Action != ActHalt || !errors.Is(d.Err, ErrApprovalNeeded) || ExitCode(d.Err) != ExitFailed ||
		d.Err.Error() != "stopped at the approval after batch 1 (2 host(s) not started): no one could approve: the run failed" ||
		d.Log != "batch 2 needs an approval, but no one can approve (no terminal) and --auto-approve was not given; b, c not started" {
		t.Fatalf("unattended: %s log %q", decisionString(d), d.Log)
	}
	// with --auto-approve the gate passes and says so
	u.AutoApprove = true
	if _, d = Reduce(u, Input{Kind: InTick, Now: t0}); d.Approved != "approved by --auto-approve" || d.Action != ActReadPool {
		t.Fatalf("auto-approve: %s approved %q", decisionString(d), d.Approved)
	}
	// the floor refusing the first batch is a refusal; later, a failure
	f := Between{RunState: RunState{Batches: bs}, Floor: func(int) int { return 2 }}
	f, _ = Reduce(f, Input{Kind: InTick, Now: t0})
	_, d = Reduce(f, Input{Kind: InPool, Now: t0, Members: []Member{{Name: "a", Serving: true}, {Name: "b", Serving: true}}})
	var ref *Refusal
	if d.Action != ActHalt || !errors.As(d.Err, &ref) || ExitCode(d.Err) != ExitRefused || !strings.HasPrefix(d.Reason, "capacity floor: 2 of 2 servers serving") {
		t.Fatalf("floor: %s", decisionString(d))
	}
	f.Started = true
	if _, d = Reduce(f, Input{Kind: InPool, Now: t0, Err: errors.New("no answer")}); ExitCode(d.Err) != ExitFailed ||
		d.Reason != "capacity floor: cannot read the load balancer pool: no answer" {
		t.Fatalf("floor later: %s", decisionString(d))
	}
}

// Which outcomes count as failures and which keep a host serving.
func TestOutcomeClasses(t *testing.T) {
	for _, tt := range []struct {
		o               event.Outcome
		failed, serving bool
	}{
		{event.OutcomeOK, false, true},
		{event.OutcomeSkipped, false, true},
		{event.OutcomeStopped, false, true},
		{event.OutcomeFailed, true, true},
		{event.OutcomeRolledBack, true, true},
		{event.OutcomeDrained, true, false},
		{event.OutcomeUnknown, true, false},
		{event.OutcomeNotStarted, true, false},
	} {
		if Failed(tt.o) != tt.failed || Serving(tt.o, true) != tt.serving {
			t.Errorf("%s: failed %v serving %v, want %v %v", tt.o, Failed(tt.o), Serving(tt.o, true), tt.failed, tt.serving)
		}
	}
	if !Serving("", false) {
		t.Error("a host the run has not finished is serving")
	}
}

// What a run says at its end, and the command it names, for each way a run
// ends: the hosts that need a person come first.
func TestSummarise(t *testing.T) {
	order := []string{"web1", "web2", "web3"}
	ok := map[string]event.Outcome{"web1": event.OutcomeOK, "web2": event.OutcomeOK, "web3": event.OutcomeOK}
	with := func(h string, o event.Outcome) map[string]event.Outcome {
		m := map[string]event.Outcome{}
		for k, v := range ok {
			m[k] = v
		}
		m[h] = o
		return m
	}
	for _, tt := range []struct {
		name       string
		outcomes   map[string]event.Outcome
		unreleased []string
		err        error
		summary    string
		next       string
	}{
		{"done", ok, nil, nil, "done; check with: rollout status p.hcl", "rollout status p.hcl"},
		{"unknown first", with("web2", event.OutcomeUnknown), nil, ErrInterrupted,
			"hosts in an unknown state: web2; run: rollout repair p.hcl", "rollout repair p.hcl"},
		{"drained", with("web3", event.OutcomeDrained), nil, ErrRunFailed,
			"left drained for inspection: web3; when done: rollout repair p.hcl (back to the files it had before this run, undrained)", "rollout repair p.hcl"},
		{"failed", with("web1", event.OutcomeRolledBack), nil, ErrRunFailed,
			"failed and back on their previous files: web1; fix the revision and pin the fix (a plain apply of this one is refused now that it was rolled back; --retry deploys it again), then: rollout apply p.hcl", "rollout apply p.hcl"},
		{"failed before restart", with("web1", event.OutcomeFailed), nil, ErrRunFailed,
			"failed and back on their previous files: web1; fix the revision, then: rollout apply p.hcl", "rollout apply p.hcl"},
		{"gate", ok, nil, ErrApprovalNeeded,
			"stopped at an approve_after gate: no one could approve (no terminal, no --auto-approve); hosts already done are skipped on a re-run: continue with the next command (it adds --auto-approve), or run it in a terminal and approve by hand", "rollout apply p.hcl --yes --auto-approve"},
		{"lost", ok, nil, &StoppedError{Cause: errors.New("lock lost")},
			"stopped safely because lock lost; when the cause is fixed: rollout history p.hcl, then rollout apply p.hcl (hosts already done are skipped)", "rollout apply p.hcl"},
		{"stopped", ok, nil, ErrInterrupted, "stopped; to continue: rollout apply p.hcl (hosts already done are skipped)", "rollout apply p.hcl"},
		{"nothing changed", ok, nil, fmt.Errorf("lb check: %w", ErrRunFailed),
			"lb check: the run failed; no host was changed: fix the cause shown above (a file at the revision: commit the fix and pin the new revision), then run the next command", "rollout apply p.hcl"},
		{"preflight", ok, nil, newPreflightError([]string{"web1", "web2", "web3"}, map[string]string{
			"web1": "file \"app.conf\" from conf/app.conf.tmpl@09a536a: validator `appd -check -config %s` rejected the new content: exited with status 1\nline 6: unknown key",
			"web2": "file \"app.conf\" from conf/app.conf.tmpl@09a536a: validator `appd -check -config %s` rejected the new content: exited with status 1\nline 6: unknown key",
			"web3": "staging: ssh web3: connection lost",
		}),
			"preflight: file app.conf (conf/app.conf.tmpl@09a536a) rejected by its validator on 2 hosts (web1, web2); staging: ssh web3: connection lost on 1 host (web3); nothing was changed; fix it (commit the fix and pin its revision), then run the next command", "rollout apply p.hcl"},
		{"unreleased", ok, []string{"web2"}, nil,
			"done; check with: rollout status p.hcl; this run could not release its lock on web2 (unreachable at the end): when it is back, rollout unlock p.hcl --yes", "rollout unlock p.hcl --yes"},
	} {
		summary, next := Summarise(order, tt.outcomes, tt.unreleased, "apply", "p.hcl", tt.err)
		if summary != tt.summary || next != tt.next {
			t.Errorf("%s:\n summary %q\n    want %q\n next %q, want %q", tt.name, summary, tt.summary, next, tt.next)
		}
	}
}
