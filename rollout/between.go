package rollout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// This file is the pure reducer for what happens between batches: the
// approval gate (approve_after), the bake (pause), the failure budget
// (max_failures), the capacity floor (min_in_service), the operator's
// pause, resume and stop, and a lost lock. Reduce takes the state and one
// input and returns the next state and one Decision; the runner
// (runner.go, batches) only executes decisions and turns what happens into
// inputs. No I/O, goroutines, logging or clock in here: the time comes in
// with the input.

// Between is the reducer's state: the scheduler's view (RunState) plus
// the plan's settings for the gates and what the reducer has already said.
type Between struct {
	RunState
	ApproveAfter map[int]bool // 1-based batch numbers an approval follows
	// ApproveBefore and PauseBefore are the waves' gates: 0-based indexes
	// of the batches a person approves before, and how long to wait
	// before them (a wave's approve and pause).
	ApproveBefore map[int]bool
	PauseBefore   map[int]time.Duration
	// Waves names each batch's wave ("" without waves), kept in step
	// with Batches.
	Waves       []string
	AutoApprove bool // --auto-approve: gates pass without a person
	Unattended  bool // no person can approve: the run stops at a gate
	Pause       time.Duration
	// Analysed: the plan has canary analysis, so a batch bakes inside its
	// hosts' pipelines (Decision.Bake) instead of between batches.
	Analysed bool
	// Floor is how many members of a pool of n must keep serving.
	Floor func(n int) int
	// Window is the rolling window (max_in_flight resolved to a host
	// count): every batch after the first (the canary) runs with at most
	// Window hosts out at a time, fitted to the floor as a whole.
	Window int
	// PlanFile names the plan in the commands the reducer's refusals
	// suggest.
	PlanFile string

	Running   []string   // hosts of the batch in flight, not done yet
	Current   int        // index of the batch in flight
	Fitting   bool       // the runner was asked for the pool (ActReadPool)
	Started   bool       // a batch has started: hosts were touched
	Lost      error      // the run must stop safely (lock lost, journal unwritable); never resolved
	Announced event.Wait // the wait reason last announced
	Halted    bool       // the reducer said ActHalt or ActDone: final
	final     Decision   // what it said then
}

// NewBetween is the state before the first of batches, run under p.
func NewBetween(p *plan.Plan, batches [][]string, autoApprove, unattended bool) Between {
	total := 0
	for _, b := range batches {
		total += len(b)
	}
	s := Between{
		RunState:     RunState{Batches: batches, FailLimit: p.FailureLimit(total)},
		ApproveAfter: map[int]bool{},
		AutoApprove:  autoApprove,
		Unattended:   unattended,
		Pause:        p.Pause,
		Analysed:     p.Analysis != nil,
		Floor:        p.MinServing,
	}
	if p.AllowDowntime {
		s.Floor = func(int) int { return 0 }
	}
	for _, b := range p.ApproveAfter {
		s.ApproveAfter[b] = true
	}
	return s
}

// InputKind is what happened.
type InputKind int

const (
	InTick      InputKind = iota // the clock moved, or the runner was woken
	InPool                       // the pool was read for the batch being fitted: Members, or Err
	InHostDone                   // a host of the batch in flight ended: Host, Outcome
	InBatchDone                  // every host of the batch in flight ended
	InApprove                    // a person approved
	InPause                      // the operator paused after the current batch
	InResume                     // the operator resumed
	InStop                       // abort, first Ctrl-C: start nothing new
	InLockLost                   // the run cannot go on safely: Cause
)

// Input is one thing that happened, at Now.
type Input struct {
	Kind    InputKind
	Now     time.Time
	Host    string
	Outcome event.Outcome
	Members []Member
	Err     error // InPool: the pool could not be read
	Cause   error // InLockLost
}

// Reduce applies in to s and returns the next state and what to do next.
func Reduce(s Between, in Input) (Between, Decision) {
	if s.Halted {
		// the run is over: nothing that happens now starts anything
		return s, Decision{Action: s.final.Action, Batch: s.final.Batch, Reason: s.final.Reason, NotStarted: s.final.NotStarted, Err: s.final.Err}
	}
	s.Batches = slices.Clone(s.Batches)
	s.Running = slices.Clone(s.Running)
	var approved string
	switch in.Kind {
	case InPause:
		s.Paused = true
	case InResume:
		s.Paused = false
	case InStop:
		s.Stopping = true
	case InLockLost:
		if s.Lost == nil {
			s.Lost = in.Cause
		}
		s.Stopping = true
	case InApprove:
		if s.NeedApproval {
			s.NeedApproval = false
			approved = "approved by a person"
		}
	case InHostDone:
		if i := slices.Index(s.Running, in.Host); i >= 0 && s.InFlight {
			s.Running = slices.Delete(s.Running, i, i+1)
			if Failed(in.Outcome) {
				s.Failures++
			}
		}
	case InBatchDone:
		if s.InFlight {
			s.InFlight = false
			s.Running = nil
			s.Next = s.Current + 1
			if (s.ApproveAfter[s.Next] || s.ApproveBefore[s.Next]) && s.Next < len(s.Batches) {
				s.NeedApproval = true
			}
			if s.Pause > 0 && s.Next < len(s.Batches) && !s.Analysed {
				s.BakeUntil = in.Now.Add(s.Pause)
			}
			if p := s.PauseBefore[s.Next]; p > 0 && s.Next < len(s.Batches) {
				s.BakeUntil = in.Now.Add(p) // a wave's own pause, analysed or not
			}
		}
	case InPool:
		if d, ok := s.fit(in); ok {
			return s, d
		}
	}
	d := s.next(in.Now)
	if approved != "" {
		d.Approved = approved
	}
	if s.Halted {
		s.final = d
	}
	return s, d
}

// fit shrinks the batch being fitted to the capacity floor and starts it,
// unless something changed since the pool was asked for.
func (s *Between) fit(in Input) (Decision, bool) {
	if !s.Fitting {
		return Decision{}, false
	}
	s.Fitting = false
	if d := Decide(s.RunState, in.Now); d.Action != ActStartBatch || s.needsGate() {
		return Decision{}, false // stopped, paused or lost meanwhile: decide again
	}
	batch := s.Batches[s.Next]
	var now, later []string
	var reason string
	if in.Err != nil {
		later, reason = batch, fmt.Sprintf("capacity floor: cannot read the load balancer pool: %v", in.Err)
	} else {
		floor := 0
		if s.Floor != nil {
			floor = s.Floor(len(in.Members))
		}
		now, later, reason = FitBatch(batch, in.Members, floor)
	}
	if reason != "" {
		s.CapacityHalt = reason
		return Decision{}, false
	}
	var d Decision
	if s.Window > 0 && s.Next > 0 {
		// a rolling window: as many out at once as fit under the floor
		// now (hosts not serving cost nothing), never more than Window
		d.Window = min(s.Window, len(now))
		if d.Window < s.Window && len(later) > 0 {
			d.Log, d.LogLevel = fmt.Sprintf("capacity floor: the rolling window of batch %d shrunk to %d hosts out at a time (max_in_flight is %d)", s.Next+1, d.Window, s.Window), "warn"
		}
		now, later = batch, nil
		d.Budget = s.FailLimit - s.Failures
	}
	if len(later) > 0 {
		d.Log, d.LogLevel = fmt.Sprintf("capacity floor: batch %d shrunk to %s; %s moved to the next batch",
			s.Next+1, strings.Join(now, ", "), strings.Join(later, ", ")), "warn"
		s.Batches = insertBatch(s.Batches, s.Next, now, later)
		if s.Next < len(s.Waves) {
			// the batch split in two stays in its wave; the gates of
			// the batches after it move with them
			s.Waves = slices.Insert(slices.Clone(s.Waves), s.Next, s.Waves[s.Next])
			s.ApproveBefore = shifted(s.ApproveBefore, s.Next)
			s.PauseBefore = shifted(s.PauseBefore, s.Next)
		}
	}
	d.Action, d.Batch, d.Hosts = ActStartBatch, s.Next, now
	if s.Next < len(s.Waves) {
		d.Wave = s.Waves[s.Next]
	}
	if s.Analysed && s.Next+1 < len(s.Batches) {
		// the batch bakes inside its hosts' pipelines, judged by the
		// analysis, before they are recorded: a failed verdict is then
		// still a host failure on_failure can handle
		d.Bake = s.Pause
	}
	s.InFlight, s.Current, s.Running, s.Started = true, s.Next, slices.Clone(now), true
	return d, true
}

// shifted moves the keys after i one batch later.
func shifted[V any](m map[int]V, i int) map[int]V {
	out := make(map[int]V, len(m))
	for k, v := range m {
		if k > i {
			k++
		}
		out[k] = v
	}
	return out
}

func insertBatch(bs [][]string, i int, now, later []string) [][]string {
	out := append([][]string{}, bs[:i]...)
	out = append(out, now, later)
	return append(out, bs[i+1:]...)
}

// needsGate reports whether the approval gate stops the run here: no one
// can approve it.
func (s *Between) needsGate() bool {
	return s.NeedApproval && s.Unattended && !s.AutoApprove
}

// next is what to do now, given the state.
func (s *Between) next(now time.Time) Decision {
	var approved string
	if s.NeedApproval && s.AutoApprove {
		s.NeedApproval = false
		approved = "approved by --auto-approve"
	}
	if s.needsGate() {
		d := s.halt(Decision{Action: ActHalt, Reason: "waiting for an approval no one could give"})
		d.Log, d.LogLevel = fmt.Sprintf("batch %d needs an approval, but no one can approve (no terminal) and --auto-approve was not given; %s not started",
			s.Next+1, strings.Join(d.NotStarted, ", ")), "warn"
		d.Err = s.lostOr(fmt.Errorf("stopped at the approval after batch %d (%d host(s) not started): %w", s.Next, len(d.NotStarted), ErrApprovalNeeded))
		return d
	}
	d := Decide(s.RunState, now)
	d.Approved = approved
	switch d.Action {
	case ActDone:
		s.Halted = true
	case ActHalt:
		d = s.halt(d)
		d.Log, d.LogLevel = "halting: "+d.Reason, "error"
		d.Err = s.haltErr()
	case ActWait:
		d.Batch = s.Next
		if d.Wait != s.Announced && d.Wait != event.WaitInFlight {
			s.Announced = d.Wait
			d.Announce = s.waitMessage(d.Wait)
		}
	case ActStartBatch:
		// the runner reads the pool first; InPool starts the batch
		s.Announced = ""
		s.Fitting = true
		d.Action, d.Hosts = ActReadPool, slices.Clone(s.Batches[d.Batch])
	}
	return d
}

// halt ends the run: every host of a batch not started is not started.
func (s *Between) halt(d Decision) Decision {
	s.Halted = true
	d.Batch = s.Next
	for _, b := range s.Batches[min(s.Next, len(s.Batches)):] {
		d.NotStarted = append(d.NotStarted, b...)
	}
	return d
}

// haltErr is the run's error when it halts: a stop by the operator is an
// interruption (exit 130) unless the failure budget or the floor also
// stopped it; the floor refusing the first batch is a refusal (exit 2,
// nothing was touched); anything else is a failed run (exit 1).
func (s *Between) haltErr() error {
	switch {
	case s.Stopping && s.Failures <= s.FailLimit && s.CapacityHalt == "":
		return s.lostOr(ErrInterrupted)
	case !s.Started && s.CapacityHalt != "":
		return refuse("rollout status "+s.PlanFile+"  # shows which servers are down: bring them back, or lower min_in_service", "%s", s.CapacityHalt)
	}
	return s.lostOr(ErrRunFailed)
}

// lostOr is err, or the safe stop it became when the run lost its lock.
func (s *Between) lostOr(err error) error {
	if s.Lost != nil {
		return &StoppedError{Cause: s.Lost}
	}
	return err
}

// waitMessage is what a waiting event says.
func (s *Between) waitMessage(w event.Wait) string {
	wave := ""
	if s.Next < len(s.Waves) && s.Waves[s.Next] != "" && (s.Next == 0 || s.Waves[s.Next-1] != s.Waves[s.Next]) {
		wave = fmt.Sprintf(" (the first of wave %q)", s.Waves[s.Next])
	}
	switch w {
	case event.WaitApproval:
		if s.Next == 0 {
			return fmt.Sprintf("approve to start batch 1%s (press y, or answer the prompt)", wave)
		}
		return fmt.Sprintf("batch %d done; approve to start batch %d%s (press y, or answer the prompt)", s.Next, s.Next+1, wave)
	case event.WaitPaused:
		return "paused after the current batch (press r to resume)"
	case event.WaitBake:
		p := s.Pause
		if pb := s.PauseBefore[s.Next]; pb > 0 {
			p = pb
		}
		return fmt.Sprintf("baking for %s before batch %d%s", p, s.Next+1, wave)
	}
	return string(w)
}

// Summarise is what a run that ended with err says in run_done: what it
// left behind, naming the hosts that need attention (outcomes, in order),
// and the one command to run next (works when pasted). unreleased are the
// hosts whose lock the run could not release (sorted).
func Summarise(order []string, outcomes map[string]event.Outcome, unreleased []string, kind, planFile string, err error) (summary, next string) {
	summary, next = nextCommand(order, outcomes, kind, planFile, err)
	if len(unreleased) > 0 {
		unlock := "rollout unlock " + planFile + " --yes"
		summary = strings.TrimPrefix(fmt.Sprintf("%s; this run could not release its lock on %s (unreachable at the end): when it is back, %s",
			summary, strings.Join(unreleased, ", "), unlock), "; ")
		if err == nil {
			next = unlock
		}
	}
	return summary, next
}

// nextCommand says what the run left behind (naming hosts) and the one
// command to run next.
func nextCommand(order []string, outcomes map[string]event.Outcome, kind, pf string, err error) (summary, next string) {
	var drained, unknown, failed []string
	rolledBack := false
	for _, name := range order {
		rolledBack = rolledBack || outcomes[name] == event.OutcomeRolledBack
		switch outcomes[name] {
		case event.OutcomeDrained:
			drained = append(drained, name)
		case event.OutcomeUnknown:
			unknown = append(unknown, name)
		case event.OutcomeFailed, event.OutcomeRolledBack:
			failed = append(failed, name)
		}
	}
	switch {
	case len(unknown) > 0:
		next = "rollout repair " + pf
		return fmt.Sprintf("hosts in an unknown state: %s; run: %s", strings.Join(unknown, ", "), next), next
	case len(drained) > 0:
		next = "rollout repair " + pf
		// repair is the way back that always works: a rollback --limit of
		// the host needs a previous revision it may not have recorded
		return fmt.Sprintf("left drained for inspection: %s; when done: %s (back to the files it had before this run, undrained)",
			strings.Join(drained, ", "), next), next
	case len(failed) > 0:
		next = fmt.Sprintf("rollout %s %s", kind, pf)
		fix := "fix the revision"
		if rolledBack && kind == "apply" {
			// the rolled-back hosts' markers say so: the same revision is
			// refused until --retry
			fix = "fix the revision and pin the fix (a plain apply of this one is refused now that it was rolled back; --retry deploys it again)"
		}
		return fmt.Sprintf("failed and back on their previous files: %s; %s, then: %s", strings.Join(failed, ", "), fix, next), next
	case errors.Is(err, ErrApprovalNeeded):
		next = fmt.Sprintf("rollout %s %s --yes --auto-approve", kind, pf)
		return "stopped at an approve_after gate: no one could approve (no terminal, no --auto-approve); hosts already done are skipped on a re-run: continue with the next command (it adds --auto-approve), or run it in a terminal and approve by hand", next
	case errors.Is(err, ErrLost):
		next = fmt.Sprintf("rollout %s %s", kind, pf)
		return fmt.Sprintf("stopped safely because %v; when the cause is fixed: rollout history %s, then rollout %s %s (hosts already done are skipped)", err, pf, kind, pf), next
	case errors.Is(err, ErrInterrupted):
		next = fmt.Sprintf("rollout %s %s", kind, pf)
		return fmt.Sprintf("stopped; to continue: %s (hosts already done are skipped)", next), next
	case err == nil:
		next = "rollout status " + pf
		return "done; check with: " + next, next
	case errors.As(err, new(*HookError)):
		var he *HookError
		errors.As(err, &he)
		next = fmt.Sprintf("rollout %s %s", kind, pf)
		switch he.Hook.At {
		case plan.HookBeforeRun:
			return fmt.Sprintf("%v; no host was drained or changed: fix what the hook runs, then run the next command", err), next
		case plan.HookAfterBatch:
			return fmt.Sprintf("%v; the hosts of batch %d are done and serving, later batches were not started: when the cause is fixed, run the next command (hosts already done are skipped)", err, he.Batch), next
		}
		return fmt.Sprintf("%v; every host is done and serving", err), next
	case errors.As(err, new(*PreflightError)):
		next = fmt.Sprintf("rollout %s %s", kind, pf)
		return err.Error() + "; fix it (commit the fix and pin its revision), then run the next command", next
	case errors.Is(err, ErrRunFailed):
		// nothing was changed (preflight, say): fix the cause, then run again
		next = fmt.Sprintf("rollout %s %s", kind, pf)
		return fmt.Sprintf("%v; no host was changed: fix the cause shown above (a file at the revision: commit the fix and pin the new revision), then run the next command", err), next
	}
	return "", ""
}

// Failed reports whether a host's outcome counts against max_failures.
func Failed(o event.Outcome) bool {
	return o != event.OutcomeOK && o != event.OutcomeSkipped && o != event.OutcomeStopped
}

// Serving reports whether a host of the pool counts as serving for the
// capacity floor when no load balancer can be asked: a host the run has
// not finished (seen false) or one that ended back in rotation. A host
// left drained, or in an unknown state, does not.
func Serving(o event.Outcome, seen bool) bool {
	if !seen {
		return true
	}
	switch o {
	case event.OutcomeOK, event.OutcomeSkipped, event.OutcomeRolledBack, event.OutcomeFailed, event.OutcomeStopped:
		return true
	}
	return false
}

// PoolFromOutcomes is the pool as the run knows it, for drivers that cannot
// read the load balancer's members.
func PoolFromOutcomes(pool []string, outcomes map[string]event.Outcome) []Member {
	members := make([]Member, 0, len(pool))
	for _, name := range pool {
		o, seen := outcomes[name]
		members = append(members, Member{Name: name, Serving: Serving(o, seen), Status: string(o)})
	}
	return members
}
