package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/rollout/event"
)

// This file is the pure part of the engine: decisions are functions of the
// run's state and the time, with no I/O, goroutines, logging or sleeping.
// The runner (runner.go) executes them.

// RunState is what the scheduler knows about a run between batches.
type RunState struct {
	Batches      [][]string
	Next         int  // index of the next batch to start
	InFlight     bool // a batch is running
	Failures     int  // hosts that failed so far
	FailLimit    int  // the run halts when Failures > FailLimit
	Paused       bool // the operator asked to pause after the current batch
	Stopping     bool // abort / first Ctrl-C: start nothing new
	NeedApproval bool // a person must approve before batch Next starts
	BakeUntil    time.Time
	CapacityHalt string // a capacity check refused the next batch
}

// Action is what the runner should do next.
type Action int

const (
	ActWait       Action = iota // nothing to start now; wait for a result, a key or the clock (until Decision.Until, if set)
	ActStartBatch               // start batch Decision.Batch with Decision.Hosts
	ActHalt                     // stop: no further batch starts (Decision.Reason says why, Decision.Err is the run's error)
	ActDone                     // every batch has run
	ActReadPool                 // read the pool for batch Decision.Batch (Decision.Hosts) and answer with InPool
)

// Decision is the scheduler's answer. Besides the action, it carries what
// the runner reports while it acts: an approved event (Approved), a log
// line (Log), a waiting event (Announce).
type Decision struct {
	Action Action
	Batch  int        // 0-based: the batch to start or fit, or the one waited for / not started
	Hosts  []string   // ActReadPool: the batch to fit; ActStartBatch: the hosts to start
	Reason string     // ActHalt: why
	Wait   event.Wait // ActWait: for what
	Until  time.Time  // ActWait: wake by then at the latest (zero: only on an input)
	Bake   time.Duration
	// Window (ActStartBatch of a rolling window): start Hosts in order,
	// at most Window out at a time, and start no more once Budget more
	// of them have failed (Budget: failures the run still allows).
	Window, Budget int
	Wave           string // ActStartBatch: the batch's wave ("" without waves)

	Announce      string   // ActWait: the waiting event's message, when the reason is new
	Approved      string   // an approval was taken: the approved event's message
	Log, LogLevel string   // a log line to emit
	NotStarted    []string // ActHalt: hosts that will not start (their message is Reason)
	Err           error    // ActHalt: the run's error (ExitCode maps it)
}

// Decide returns what to do next. It never starts a batch while one is in
// flight, after the failure limit is exceeded, while stopping, paused,
// unapproved or baking.
func Decide(s RunState, now time.Time) Decision {
	switch {
	case s.InFlight:
		return Decision{Action: ActWait, Wait: event.WaitInFlight}
	case s.Failures > s.FailLimit:
		return Decision{Action: ActHalt, Reason: fmt.Sprintf("%d host(s) failed, more than max_failures = %d allows", s.Failures, s.FailLimit)}
	case s.CapacityHalt != "":
		return Decision{Action: ActHalt, Reason: s.CapacityHalt}
	case s.Stopping:
		if s.Next >= len(s.Batches) {
			return Decision{Action: ActDone}
		}
		return Decision{Action: ActHalt, Reason: "stopped by the operator"}
	case s.Next >= len(s.Batches):
		return Decision{Action: ActDone}
	case s.Paused:
		return Decision{Action: ActWait, Wait: event.WaitPaused}
	case s.NeedApproval:
		return Decision{Action: ActWait, Wait: event.WaitApproval}
	case now.Before(s.BakeUntil):
		return Decision{Action: ActWait, Wait: event.WaitBake, Until: s.BakeUntil}
	}
	return Decision{Action: ActStartBatch, Batch: s.Next}
}

// Step is one step of the per-host pipeline, including the recovery steps
// taken after a failure.
type Step string

const (
	StepDrain    Step = "drain"    // take the host out of every LB
	StepWait     Step = "wait"     // sessions reach zero, then settle (maint)
	StepStage    Step = "stage"    // write every file next to its destination
	StepValidate Step = "validate" // file validators against the staged copies
	StepInstall  Step = "install"  // atomic rename into place, previous kept
	StepCheck    Step = "check"    // whole-config validator
	StepRestart  Step = "restart"
	StepHealth   Step = "health" // stable window, flap guard, deadline
	StepUndrain  Step = "undrain"
	StepRecord   Step = "record"   // write current.json
	StepAnalysis Step = "analysis" // a canary verdict during the ramp or bake failed (see Judged)

	// recovery
	StepRestore  Step = "restore"  // put the previous files back (before restart)
	StepReturn   Step = "return"   // undrain after a failure before restart
	StepDiagnose Step = "diagnose" // capture diagnostics, leave drained

	// rollback (after restart, on_failure = "rollback"): the previous
	// revision goes through the same steps as the new one did. A host
	// deployed for the first time has no previous revision to render: its
	// way back is the files it had before (the backups install kept).
	StepRollback         Step = "rollback"          // stage the previous revision's files (first deploy: nothing to stage)
	StepRollbackValidate Step = "rollback_validate" // its file validators against the staged copies
	StepRollbackInstall  Step = "rollback_install"  // move them into place (first deploy: put the backups back)
	StepRollbackCheck    Step = "rollback_check"    // its whole-config validator
	StepRollbackRestart  Step = "rollback_restart"
	StepRollbackHealth   Step = "rollback_health" // its health gate, while still out of rotation
	StepRollbackOut      Step = "rollback_out"    // undrain after a successful rollback

	// terminal
	EndOK         Step = "end_ok"
	EndFailed     Step = "end_failed"      // failed, previous files, serving
	EndDrained    Step = "end_drained"     // failed, left drained
	EndRolledBack Step = "end_rolled_back" // failed, previous revision, serving
)

// Terminal reports whether s ends a host's pipeline.
func (s Step) Terminal() bool {
	return s == EndOK || s == EndFailed || s == EndDrained || s == EndRolledBack
}

// Policy is the plan's on_failure.
type Policy string

const (
	PolicyHalt     Policy = "halt"
	PolicyRollback Policy = "rollback"
	// PolicyRollbackAll: a failed host rolls back as with PolicyRollback,
	// and once the run halts every host it changed goes back too
	PolicyRollbackAll Policy = "rollback_all"
)

// HostPolicy is what a failed host's own pipeline does under the plan's
// on_failure: rollback_all rolls the host back like rollback.
func HostPolicy(onFailure string) Policy {
	if Policy(onFailure) == PolicyRollbackAll {
		return PolicyRollback
	}
	return Policy(onFailure)
}

// NextStep is the host pipeline as a transition table: given the step that
// just ran and whether it succeeded, the step to run next.
func NextStep(cur Step, ok bool, policy Policy) Step {
	if ok {
		switch cur {
		case StepDrain:
			return StepWait
		case StepWait:
			return StepStage
		case StepStage:
			return StepValidate
		case StepValidate:
			return StepInstall
		case StepInstall:
			return StepCheck
		case StepCheck:
			return StepRestart
		case StepRestart:
			return StepHealth
		case StepHealth:
			return StepUndrain
		case StepUndrain, StepAnalysis:
			return StepRecord
		case StepRecord:
			return EndOK
		case StepRestore:
			return StepReturn
		case StepReturn:
			return EndFailed
		case StepRollback:
			return StepRollbackValidate
		case StepRollbackValidate:
			return StepRollbackInstall
		case StepRollbackInstall:
			return StepRollbackCheck
		case StepRollbackCheck:
			return StepRollbackRestart
		case StepRollbackRestart:
			return StepRollbackHealth
		case StepRollbackHealth:
			return StepRollbackOut
		case StepRollbackOut:
			return EndRolledBack
		case StepDiagnose:
			return EndDrained
		}
		return cur
	}
	switch cur {
	case StepDrain, StepWait, StepStage, StepValidate:
		// nothing live changed: put the host back as it was
		return StepReturn
	case StepInstall, StepCheck:
		// files may have moved, nothing restarted: restore them
		return StepRestore
	case StepRestart, StepHealth, StepAnalysis:
		// the new revision runs; for a failed canary verdict the host was
		// already taken out of traffic again
		if policy == PolicyRollback {
			return StepRollback
		}
		return StepDiagnose
	case StepUndrain:
		// the new revision is healthy but the LB did not take it back
		return StepDiagnose
	case StepRecord:
		// serving, but the state marker is wrong: make it loud
		return EndFailed
	case StepRestore, StepReturn:
		return StepDiagnose
	case StepRollback, StepRollbackValidate, StepRollbackInstall, StepRollbackCheck,
		StepRollbackRestart, StepRollbackHealth, StepRollbackOut:
		// the way back failed too: no further restart, leave it drained
		// for a person
		return StepDiagnose
	case StepDiagnose:
		return EndDrained
	}
	return EndDrained
}

// Judged is the step whose outcome NextStep should look at: a step that
// failed because of a canary analysis verdict (ErrAnalysis, during the ramp
// or the bake) counts as StepAnalysis, which on_failure handles like a
// failed health gate; any other outcome is the step's own.
func Judged(s Step, err error) Step {
	if errors.Is(err, ErrAnalysis) {
		return StepAnalysis
	}
	return s
}

// HostStop is how a host's pipeline ends before NextStep ends it: the run
// is stopping, or a step was cut off.
type HostStop int

const (
	GoOn            HostStop = iota // take the step; after a failure, NextStep decides
	StopUntouched                   // end stopped: the host was never taken out of its load balancer
	StopPutBack                     // nothing changed yet: undrain the host and end stopped (left drained if the undrain fails)
	StopCutOff                      // end unknown: the run was cancelled (second Ctrl-C) during the step; nothing more is safe to try
	StopUnreachable                 // end unknown: the connection to the host was lost during the step; no recovery step can reach it
)

// Stops is what the runner knows, around one host's step, about the run.
type Stops struct {
	Stopping bool // the operator asked to stop (first Ctrl-C, abort): start no change
	Lost     bool // the run stops on its own (its lock was lost, its journal cannot be written)
}

// StopBefore decides, before a host takes step next, whether its pipeline
// ends there. A run that stops on its own takes no further host out of its
// load balancer; an operator's stop puts a drained host back before its
// first change (staging), untouched. The runner asks twice: with the
// operator's stop before it announces the step, and with the run's own
// loss after (writing the announcement to the journal may be what failed).
func StopBefore(next Step, s Stops) HostStop {
	switch {
	case s.Lost && next == StepDrain:
		return StopUntouched
	case s.Stopping && next == StepStage:
		return StopPutBack
	}
	return GoOn
}

// StopAfter decides, after a step failed, whether the host's state is
// unknown: the run was cancelled while the step ran (cancelled wins, as
// the connection is cut by the cancel too), or the host could not be
// reached. Otherwise NextStep handles the failure.
func StopAfter(failed, cancelled, unreachable bool) HostStop {
	switch {
	case !failed:
		return GoOn
	case cancelled:
		return StopCutOff
	case unreachable:
		return StopUnreachable
	}
	return GoOn
}

// SessionWait is what to do while a drained host's open sessions close
// (StepWait).
type SessionWait int

const (
	SessionsPoll    SessionWait = iota // sessions are open and time is left: poll again
	SessionsClosed                     // no session is open: let the LB settle, then go on
	SessionsStopped                    // the operator stops: go on without waiting (StopBefore puts the host back before staging)
	SessionsTimeout                    // sessions are still open at the drain timeout: the step fails
)

// WaitSessions decides, after reading open sessions with left of the drain
// timeout to go, whether StepWait ends. No session open ends it first; an
// operator's stop ends it next, since nothing has changed on the host yet
// and waiting would only delay putting it back; then the timeout.
func WaitSessions(open int, stopping bool, left time.Duration) SessionWait {
	switch {
	case open == 0:
		return SessionsClosed
	case stopping:
		return SessionsStopped
	case left <= 0:
		return SessionsTimeout
	}
	return SessionsPoll
}

// EndOutcome is the outcome a host's pipeline reports when NextStep ends
// it at end: the new revision serving, the previous files serving, the
// previous revision serving, or (any other end) left drained for a person.
func EndOutcome(end Step) event.Outcome {
	switch end {
	case EndOK:
		return event.OutcomeOK
	case EndFailed:
		return event.OutcomeFailed
	case EndRolledBack:
		return event.OutcomeRolledBack
	}
	return event.OutcomeDrained
}

// OutcomeRevision is the revision host_done reports for a host that ended
// with outcome o, the run deploying target to a host that recorded old:
// old when it went back or never changed (rolled back, failed before its
// restart, stopped), none when what runs there is not known (left
// drained, unknown), else target.
func OutcomeRevision(o event.Outcome, target, old string) string {
	switch o {
	case event.OutcomeRolledBack, event.OutcomeFailed, event.OutcomeStopped:
		return old
	case event.OutcomeDrained, event.OutcomeUnknown:
		return ""
	}
	return target
}

// Member is one server of the load-balanced pool as the LB sees it.
type Member struct {
	Name    string
	Serving bool
	Status  string
}

// FitBatch shrinks batch so that taking it out of service keeps at least
// minServing members serving. Members already not serving count against the
// floor. It returns the hosts to run now and those pushed to later batches,
// or a reason when not even one host can go.
func FitBatch(batch []string, members []Member, minServing int) (now, later []string, reason string) {
	serving := 0
	isServing := map[string]bool{}
	var down []string
	for _, m := range members {
		if m.Serving {
			serving++
			isServing[m.Name] = true
		} else {
			down = append(down, m.Name+" ("+m.Status+")")
		}
	}
	// hosts of the batch that are not serving cost nothing to take out
	room := serving - minServing
	for _, h := range batch {
		if !isServing[h] {
			now = append(now, h)
			continue
		}
		if room > 0 {
			now = append(now, h)
			room--
			continue
		}
		later = append(later, h)
	}
	if len(now) == 0 && len(later) > 0 {
		msg := fmt.Sprintf("capacity floor: %d of %d servers serving, min_in_service is %d, so not even one more can be drained", serving, len(members), minServing)
		if len(down) > 0 {
			msg += "; not serving: " + strings.Join(down, ", ")
		}
		return nil, later, msg
	}
	return now, later, ""
}
