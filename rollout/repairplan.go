package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// RepairTarget is one host to repair and the run that left it so.
type RepairTarget struct {
	Host    string
	Outcome event.Outcome
	Run     journal.RunSummary
}

// RepairTargets picks, for each selected host (in), the last run that
// touched it (entered a pipeline phase): a later run that was refused,
// skipped it, or was limited to other hosts changed nothing on it and must
// not hide what an earlier run left behind. Hosts that run left drained
// or in an unknown state are the ones to repair.
func RepairTargets(runs []journal.RunSummary, in map[string]bool) []RepairTarget {
	last := map[string]RepairTarget{}
	var order []string
	for _, r := range runs {
		for _, h := range r.Hosts {
			if !in[h.Host] || h.Phase == "" {
				continue
			}
			if _, seen := last[h.Host]; !seen {
				order = append(order, h.Host)
			}
			last[h.Host] = RepairTarget{Host: h.Host, Outcome: h.Outcome, Run: r}
		}
	}
	var out []RepairTarget
	for _, name := range order {
		t := last[name]
		if t.Outcome == event.OutcomeDrained || t.Outcome == event.OutcomeUnknown {
			out = append(out, t)
		}
	}
	return out
}

// RepairAll repairs every target at once (up to forks), results in the
// targets' order.
func RepairAll(ctx context.Context, sel *Selection, targets []RepairTarget, env Env, forks int) []RepairResult {
	results := make([]RepairResult, len(targets))
	idx := make([]int, len(targets))
	for i := range idx {
		idx[i] = i
	}
	_ = eachOf(ctx, forks, idx, func(ctx context.Context, i int) error {
		results[i] = Repair(ctx, sel.Plan, sel.Inventory.Host(targets[i].Host), env, targets[i].Run.ID)
		return nil
	})
	return results
}

// LockStore is a state backend repair locks: it takes the plan's lock,
// breaks a dead run's, and records the takeover in the journal
// (backend.Store satisfies it).
type LockStore interface {
	PlanLocker
	BreakLock(ctx context.Context, plan string) error
	Record(ctx context.Context, e event.Event) error
	Describe() string
}

// RepairLock is what LockForRepair needs.
type RepairLock struct {
	Sel      *Selection
	PlanFile string // for the refusal's next command
	Store    LockStore
	Env      Env // Connect
	Info     journal.LockInfo
	Forks    int
	Hosts    []string     // the hosts to repair
	Say      func(string) // tells the person what was taken over or freed
	// Lost is told that a lock repair holds was taken away while it
	// works (see Locks.Lost).
	Lost func(error)
}

// LockForRepair takes the plan's locks the way apply does (the plan lock
// in the state backend, and the lock of every host to repair), so that
// repair never restores, restarts or undrains a host that a live run is
// working on: the last run in the journal may still be running. A lock
// left by a dead run refuses too, until it expires or `rollout unlock`
// removes it — unless its run is provably dead (journal.OwnerDead: taken
// on this machine by a pid that is gone or is another process now): then
// repair takes the lock over, says so, and records it in the journal under
// the dead run, and removes that run's locks on the plan's other hosts.
// The locks are renewed until the caller releases them.
func LockForRepair(ctx context.Context, rl RepairLock) (*Locks, error) {
	sel, name := rl.Sel, rl.Sel.Plan.Name
	locks := &Locks{Plan: name, Info: rl.Info, Forks: rl.Forks, Lost: rl.Lost}
	refusal := func(err error) error {
		locks.Release(ctx)
		return &Refusal{Problem: fmt.Sprintf("repair: %v", err),
			Next: fmt.Sprintf("rollout unlock %s && rollout repair %s --yes  # only if that run is dead: unlock shows its locks and asks; or wait for it to finish (or for its lock to expire)", rl.PlanFile, rl.PlanFile)}
	}
	deadRun := "" // the dead run whose locks repair takes over (set before the hosts are locked)
	var sayMu sync.Mutex
	takeOver := func(err error, breakLock func() error, where string) bool {
		var le *journal.LockedError
		if !errors.As(err, &le) {
			return false
		}
		sayMu.Lock()
		defer sayMu.Unlock()
		dead, why := journal.OwnerDead(le.Info)
		if !dead && (deadRun == "" || le.Info.RunID != deadRun) {
			return false
		}
		if why == "" {
			why = "its local lock was taken over above"
		}
		if breakLock() != nil {
			return false
		}
		if deadRun == "" {
			deadRun = le.Info.RunID
		}
		msg := fmt.Sprintf("repair %s took over the lock %s of run %s (%s): that run is dead (%s)", rl.Info.RunID, where, le.Info.RunID, le.Info.Owner, why)
		rl.Say(msg)
		_ = rl.Store.Record(ctx, event.Event{Time: time.Now(), Run: le.Info.RunID, Event: event.Log, Level: "warn", Message: msg})
		return true
	}
	if err := locks.TakePlan(ctx, rl.Store); err != nil {
		if !takeOver(err, func() error { return rl.Store.BreakLock(ctx, name) }, "in "+rl.Store.Describe()) {
			return nil, refusal(err)
		}
		if err := locks.TakePlan(ctx, rl.Store); err != nil {
			return nil, refusal(err)
		}
	}
	type hostToLock struct {
		h        *inventory.Host
		stateDir string
	}
	var todo []hostToLock
	for _, hn := range rl.Hosts {
		h := sel.Inventory.Host(hn)
		spec, diags := sel.Plan.ForHost(h, sel.Plan.Revision)
		if diags.HasErrors() {
			locks.Release(ctx)
			return nil, &DiagError{Diags: diags, Sources: sel.Sources}
		}
		todo = append(todo, hostToLock{h, spec.StateDir})
	}
	// every host at once (up to forks)
	var errMu sync.Mutex
	var errs []error
	_ = eachOf(ctx, rl.Forks, todo, func(ctx context.Context, t hostToLock) error {
		conn, err := rl.Env.Connect(ctx, t.h)
		if err == nil {
			err = locks.TakeHost(ctx, conn, t.h.Name, t.stateDir)
			if err != nil && takeOver(err, func() error { return journal.BreakHostLock(ctx, conn, t.stateDir, name) }, "on "+t.h.Name) {
				err = locks.TakeHost(ctx, conn, t.h.Name, t.stateDir)
			}
		}
		if err != nil {
			errMu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", t.h.Name, err))
			errMu.Unlock()
		}
		return nil
	})
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, refusal(errs[0])
	}
	freeDeadRunLocks(ctx, rl, deadRun)
	locks.KeepRenewed(ctx)
	return locks, nil
}

// freeDeadRunLocks removes the locks a dead run left on the plan's other
// hosts (those repair has nothing to put back on), so the next run is not
// refused by them: the locks of deadRun (whose lock repair took over
// above; "" for none), and any lock whose owner is provably dead
// (journal.OwnerDead) — a run killed after its plan lock was given back,
// or one whose plan lock expired first, still blocks the plan on its hosts.
func freeDeadRunLocks(ctx context.Context, rl RepairLock, deadRun string) {
	sel := rl.Sel
	skip := map[string]bool{}
	for _, h := range rl.Hosts {
		skip[h] = true
	}
	for _, h := range sel.Hosts {
		if skip[h.Name] {
			continue
		}
		spec, diags := sel.Plan.ForHost(h, sel.Plan.Revision)
		if diags.HasErrors() {
			continue
		}
		conn, err := rl.Env.Connect(ctx, h)
		if err != nil {
			if deadRun != "" {
				rl.Say(fmt.Sprintf("%s: cannot check for run %s's lock: %v", h.Name, deadRun, err))
			}
			continue
		}
		li, err := journal.ReadHostLock(ctx, conn, spec.StateDir, sel.Plan.Name)
		if err != nil || li == nil || li.RunID == rl.Info.RunID {
			continue
		}
		dead, why := journal.OwnerDead(*li)
		if li.RunID != deadRun && !dead {
			continue
		}
		if err := journal.BreakHostLock(ctx, conn, spec.StateDir, sel.Plan.Name); err != nil {
			rl.Say(fmt.Sprintf("%s: cannot remove run %s's lock: %v", h.Name, li.RunID, err))
			continue
		}
		msg := fmt.Sprintf("%s: removed the lock of dead run %s", h.Name, li.RunID)
		if why != "" {
			msg += " (" + why + ")"
		}
		rl.Say(msg)
		_ = rl.Store.Record(ctx, event.Event{Time: time.Now(), Run: li.RunID, Event: event.Log, Level: "warn", Message: "repair " + rl.Info.RunID + " " + msg})
	}
}

// RepairJournal records a repair as a run of its own in the plan's
// journal: run_start (message "repair"), a host_phase restore for each
// host before it is touched, its host_done (ok once it is back in
// service; drained when repair could not fix it, so the next repair picks
// it up again), and run_done. history lists it, repair's next run and
// status see it as the last run that touched the host.
type RepairJournal struct {
	Store interface {
		Record(ctx context.Context, e event.Event) error
	}
	Plan     string
	RunID    string
	Owner    string
	Operator Operator         // who the repair is for (ResolveOperator)
	Now      func() time.Time // nil: time.Now
}

func (j *RepairJournal) emit(ctx context.Context, e event.Event) error {
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	e.Time, e.Run = now(), j.RunID
	return j.Store.Record(ctx, e)
}

// Start records the repair's run_start and, for each target, the phase it
// enters; nothing is touched before these are durable.
func (j *RepairJournal) Start(ctx context.Context, targets []RepairTarget) error {
	var hosts, runs []string
	seen := map[string]bool{}
	for _, t := range targets {
		hosts = append(hosts, t.Host)
		if !seen[t.Run.ID] {
			seen[t.Run.ID] = true
			runs = append(runs, t.Run.ID)
		}
	}
	if err := j.emit(ctx, event.Event{Event: event.RunStart, Schema: event.Schema, Plan: j.Plan, Message: journal.KindRepair,
		Scope: "repair of run " + strings.Join(runs, ", "), Hosts: hosts, Owner: j.Owner,
		Operator: j.Operator.Name, OperatorURL: j.Operator.URL}); err != nil {
		return err
	}
	for _, t := range targets {
		if err := j.emit(ctx, event.Event{Event: event.HostPhase, Host: t.Host, Phase: event.PhaseRestore, Status: event.StatusRunning,
			Message: fmt.Sprintf("%s by run %s: putting it back", t.Outcome, t.Run.ID)}); err != nil {
			return err
		}
	}
	return nil
}

// Done records how each target ended (results in the targets' order) and
// the run's end: exit code, counts, what happened and what to run next.
func (j *RepairJournal) Done(ctx context.Context, targets []RepairTarget, results []RepairResult, code int, message, next string) error {
	counts := map[event.Outcome]int{}
	var errs []error
	for i, t := range targets {
		r := results[i]
		e := event.Event{Event: event.HostDone, Host: t.Host, Phase: event.PhaseUndrain, Status: string(event.OutcomeOK), Revision: r.Revision,
			Message: fmt.Sprintf("repaired what run %s left: back in the load balancer", t.Run.ID)}
		if len(r.Restored) > 0 {
			e.Message = fmt.Sprintf("repaired what run %s left: restored %s, restarted, healthy, back in the load balancer", t.Run.ID, strings.Join(r.Restored, ", "))
		}
		if r.Err != nil {
			e.Status, e.Phase, e.Message = string(event.OutcomeDrained), event.PhaseRestore, "cannot fix: "+r.Err.Error()
		}
		counts[event.Outcome(e.Status)]++
		if err := j.emit(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	status := event.StatusOK
	if code != ExitOK {
		status = event.StatusFailed
	}
	if err := j.emit(ctx, event.Event{Event: event.RunDone, Status: status, Counts: counts, ExitCode: event.Int(code), Message: message, Next: next,
		Operator: j.Operator.Name, OperatorURL: j.Operator.URL}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
