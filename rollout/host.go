package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/analysis"
	"github.com/rollout-sh/rollout/internal/cmdout"
	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// hostPipeline is one host going through the steps NextStep chooses.
type hostPipeline struct {
	r          *run
	h          *hostInfo
	batch      int
	staged     map[string]string // dest → staged path
	moved      []Rendered        // files moved into place (restore these)
	lastHealth error
	diag       string
	invalid    error              // the validators' verdict, found while staging
	anaStart   *analysis.Snapshot // counters when the host came back (canary analysis)
	// rolledBackFrom: the run's revision, once on_failure = "rollback"
	// took the host back from it (host_done says so)
	rolledBackFrom string
	// artPrev is where each artifact's current pointed before this run
	// switched it (for restore and a first deploy's way back); nil until
	// a switch
	artPrev map[string]string
}

var stepPhase = map[Step]event.Phase{
	StepDrain: event.PhaseDrain, StepWait: event.PhaseDrain, StepStage: event.PhaseStage,
	StepValidate: event.PhaseValidate, StepInstall: event.PhaseInstall, StepCheck: event.PhaseCheck,
	StepRestart: event.PhaseRestart, StepHealth: event.PhaseHealth, StepUndrain: event.PhaseUndrain,
	StepRecord: event.PhaseRecord, StepRestore: event.PhaseRestore, StepReturn: event.PhaseUndrain,
	StepRollback: event.PhaseRollback, StepRollbackValidate: event.PhaseRollback, StepRollbackInstall: event.PhaseRollback,
	StepRollbackCheck: event.PhaseRollback, StepRollbackRestart: event.PhaseRollback, StepRollbackHealth: event.PhaseRollback,
	StepRollbackOut: event.PhaseUndrain, StepDiagnose: event.PhaseDiagnose,
}

func (r *run) runHost(ctx context.Context, batch int, h *hostInfo) event.Outcome {
	p := &hostPipeline{r: r, h: h, batch: batch, staged: map[string]string{}}
	name := h.t.Host.Name
	ctx = r.withRemoteOutput(ctx, name, batch) // the commands' output is journaled (remote_output)
	policy := HostPolicy(r.pr.Plan.OnFailure)
	if h.revert {
		policy = PolicyHalt
	}
	step := StepDrain
	var failure error
	var shown event.Phase
	for !step.Terminal() {
		if StopBefore(step, Stops{Stopping: r.ctl.isStopping()}) == StopPutBack {
			// stopped before anything changed: put the host back, untouched
			if err := p.do(ctx, StepReturn); err != nil {
				r.setOutcome(name, event.OutcomeDrained, "stopped, but undrain failed: "+err.Error())
				p.done(event.OutcomeDrained, "stopped by the operator; undrain failed: "+err.Error())
				return event.OutcomeDrained
			}
			p.done(event.OutcomeStopped, "stopped by the operator before any change")
			return event.OutcomeStopped
		}
		r.mu.Lock()
		r.inFlight[name] = stepPhase[step]
		r.mu.Unlock()
		if stepPhase[step] != shown {
			shown = stepPhase[step]
			r.emit(event.Event{Event: event.HostPhase, Host: name, Batch: batch, Phase: shown, Status: event.StatusRunning, Revision: p.revision()})
		}
		if StopBefore(step, Stops{Lost: r.lostCause() != nil}) == StopUntouched {
			// the run is stopping on its own (lock lost, journal
			// unwritable; the record above may not be shared): this host
			// is not taken out of its load balancer at all
			p.done(event.OutcomeStopped, "not drained: the run stopped safely before this host changed")
			return event.OutcomeStopped
		}
		err := p.do(ctx, step)
		switch StopAfter(err != nil, ctx.Err() != nil, transport.Lost(err)) {
		case StopUnreachable:
			// the host cannot be seen: nothing about it is known, and no
			// further step (restore, rollback) can reach it
			r.emit(event.Event{Event: event.HostPhase, Host: name, Batch: batch, Phase: stepPhase[step], Status: event.StatusFailed, Message: err.Error()})
			p.done(event.OutcomeUnknown, fmt.Sprintf("connection lost during %s; state unknown: %v", step, err))
			return event.OutcomeUnknown
		case StopCutOff:
			// stopped at once (second Ctrl-C): nothing more is safe to try
			r.emit(event.Event{Event: event.HostPhase, Host: name, Batch: batch, Phase: stepPhase[step], Status: event.StatusFailed, Message: "interrupted"})
			msg := fmt.Sprintf("interrupted during %s; state unknown", step)
			p.done(event.OutcomeUnknown, msg)
			return event.OutcomeUnknown
		}
		if err != nil {
			r.emit(event.Event{Event: event.HostPhase, Host: name, Batch: batch, Phase: stepPhase[step], Status: event.StatusFailed, Message: err.Error()})
			if failure == nil {
				failure = err
				if !strings.HasPrefix(err.Error(), string(step)) {
					failure = fmt.Errorf("%s: %w", step, err)
				}
			}
		}
		step = NextStep(Judged(step, err), err == nil, policy)
	}
	msg := ""
	if failure != nil {
		msg = failure.Error()
	}
	o := EndOutcome(step)
	switch o {
	case event.OutcomeRolledBack:
		msg += "; rolled back to " + p.prevLabel() + " and serving"
		p.markRolledBack(ctx, msg)
	case event.OutcomeDrained:
		msg += "; left drained for inspection"
	}
	p.done(o, msg)
	return o
}

// markRolledBack records, in the marker of a host that on_failure =
// "rollback" took back to its previous revision, that it was rolled back
// from the run's revision: the marker it had, plus the mark. Best effort:
// the journal's host_done records it too.
func (p *hostPipeline) markRolledBack(ctx context.Context, why string) {
	r, h := p.r, p.h
	p.rolledBackFrom = r.pr.Revision
	if h.old == nil || h.old.Revision == r.pr.Revision {
		return
	}
	st := *h.old
	st.RolledBackFrom = &journal.RollbackMark{Revision: r.pr.Revision, RunID: r.opts.RunID, By: r.operator(),
		Reason: why, Time: r.env.Now().UTC()}
	if err := journal.WriteState(context.WithoutCancel(ctx), h.conn, h.t.Spec.StateDir, r.pr.Plan.Name, &st); err != nil {
		r.log("warn", "%s: rolled back, but its marker could not say so: %v", h.t.Host.Name, err)
	}
}

func (p *hostPipeline) done(o event.Outcome, msg string) {
	name := p.h.t.Host.Name
	rev := OutcomeRevision(o, p.revision(), revOf(p.h.old))
	if p.h.revert && o == event.OutcomeOK {
		o = event.OutcomeRolledBack // back where it was before this run
	}
	p.r.setOutcome(name, o, msg)
	vars := ""
	var arts map[string]event.ArtifactRef
	if o == event.OutcomeOK {
		vars = p.h.t.VarsSHA256
		arts = artifactRefs(p.h.t.Spec.Artifacts)
	}
	p.r.emit(event.Event{Event: event.HostDone, Host: name, Batch: p.batch, Status: string(o), Revision: rev, Message: msg, Diagnostics: p.diag, VarsSHA256: vars,
		Artifacts: arts, RolledBackFrom: p.rolledBackFrom})
}

// revision is the commit this pipeline deploys: the run's, or for a
// revert the one the host had.
func (p *hostPipeline) revision() string {
	if p.h.rev != "" {
		return p.h.rev
	}
	return p.r.pr.Revision
}

func (p *hostPipeline) prevLabel() string {
	if p.h.old != nil && p.h.old.Revision != "" {
		return plan.ShortRev(p.h.old.Revision)
	}
	return "the files it had before"
}

func (p *hostPipeline) do(ctx context.Context, s Step) error {
	h := p.h
	switch s {
	case StepDrain:
		return h.drainer.Drain(ctx)
	case StepWait:
		return p.waitZero(ctx)
	case StepStage:
		// one command stages every file and runs every validator; the
		// validators' verdict is StepValidate's (artifacts were staged in
		// preflight; a revert's, of the revision the host had, are made
		// sure of here: kept on the host, or fetched again)
		if h.revert && len(h.t.Spec.Artifacts) > 0 {
			if err := p.r.artifacts().Stage(ctx, h.conn, h.t.Spec.Artifacts); err != nil {
				return err
			}
		}
		if len(h.t.Files) == 0 {
			return nil
		}
		staged, err, invalid := p.r.validator().Stage(ctx, h.conn, h.t.Files, p.r.stageTag("stage"), false)
		p.staged, p.invalid = staged, invalid
		return err
	case StepValidate:
		return p.invalid
	case StepInstall:
		if err := p.install(ctx, h.t.Files, true); err != nil {
			return err
		}
		if err := p.switchArtifacts(ctx, h.t.Spec.Artifacts); err != nil {
			return err
		}
		return p.run(ctx, "install", h.t.Spec.Install)
	case StepCheck:
		if err := p.r.validator().Check(ctx, h.conn, h.t.Spec.Check); err != nil {
			return err
		}
		// the last moment before the restart: no LB may send the host
		// traffic, even one reloaded since the drain
		if hd, ok := h.drainer.(Holder); ok {
			if err := hd.Hold(ctx); err != nil {
				return fmt.Errorf("not restarting: the host may be taking traffic: %w", err)
			}
		}
		return nil
	case StepRestart:
		return p.run(ctx, "restart", h.t.Spec.Restart)
	case StepHealth:
		if usesLBHealth(h.t.Spec) {
			// HAProxy does not check a server in MAINT: back to DRAIN, so
			// its checks run while it still gets no new traffic
			if err := h.drainer.Drain(ctx); err != nil {
				return err
			}
		}
		err := p.health(ctx, false)
		p.lastHealth = err
		return err
	case StepUndrain:
		return p.undrain(ctx, true)
	case StepRecord:
		return p.record(ctx)
	case StepRestore:
		err := p.restore(ctx)
		if aerr := p.restoreArtifacts(ctx, h.t.Spec.Artifacts); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return err
	case StepReturn:
		p.r.validator().Unstage(ctx, h.conn, p.staged)
		return h.drainer.Undrain(ctx)
	case StepRollback, StepRollbackValidate, StepRollbackInstall, StepRollbackCheck, StepRollbackRestart, StepRollbackHealth:
		return p.rollback(ctx, s)
	case StepRollbackOut:
		return p.undrain(ctx, false)
	case StepDiagnose:
		p.diagnose(ctx)
		return nil
	}
	return fmt.Errorf("unknown step %q", s)
}

func (p *hostPipeline) run(ctx context.Context, what, cmd string) error {
	return runCommand(ctx, p.h.conn, what, cmd)
}

// runCommand runs one of the plan's commands (restart, install, prefetch)
// on a host, journaling what it printed.
func runCommand(ctx context.Context, conn Conn, what, cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return nil
	}
	var out bytes.Buffer
	err := conn.Run(ctx, shell.Merged(cmd), nil, &out, &out)
	event.RemoteSinkOf(ctx)(event.Phase(what), "", cmd, event.ExitStatus(err), out.String()) // journal what it printed (remote_output)
	if err != nil {
		return fmt.Errorf("%s `%s`: %w%s", what, cmd, err, tail(out.String()))
	}
	return nil
}

func tail(s string) string { return cmdout.Tail(s) }

func (p *hostPipeline) waitZero(ctx context.Context) error {
	r := p.r
	timeout := p.h.t.Spec.Drain.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	start := r.env.Now()
	last := -1
	for {
		n, err := p.h.drainer.Sessions(ctx)
		if err != nil {
			return fmt.Errorf("reading sessions: %w", err)
		}
		if n != last {
			last = n
			r.emit(event.Event{Event: event.DrainSessions, Host: p.h.t.Host.Name, Batch: p.batch, Sessions: event.Int(n)})
		}
		left := timeout - r.env.Now().Sub(start)
		switch WaitSessions(n, r.ctl.isStopping(), left) {
		case SessionsClosed:
			return p.h.drainer.Settle(ctx)
		case SessionsStopped:
			return nil // runHost puts the host back before StepStage
		case SessionsTimeout:
			// sessions that never close may be a host the network lost:
			// that is not a drain timeout to report as a verdict
			if err := p.reachable(ctx); err != nil {
				return fmt.Errorf("%d sessions still open on the load balancer after %s, and %w", n, timeout, err)
			}
			return fmt.Errorf("%d sessions still open after %s (drain timeout); the host was left untouched", n, timeout)
		}
		if err := r.env.Sleep(ctx, min(r.opts.PollEvery, left)); err != nil {
			return err
		}
	}
}

// reachTimeout bounds the round trip that tells an unreachable host from
// one whose sessions are merely slow to close.
var reachTimeout = 10 * time.Second

// reachable runs one bounded round trip on the host. It returns an error
// wrapping transport.ErrLost when the host does not answer (the
// connection is gone, or silent for reachTimeout), else nil.
func (p *hostPipeline) reachable(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	err := p.h.conn.Run(rctx, "true", nil, nil, nil)
	switch {
	case err == nil || ctx.Err() != nil:
		return nil
	case transport.Lost(err):
		return fmt.Errorf("the host does not answer: %w", err)
	case rctx.Err() != nil:
		return fmt.Errorf("the host does not answer (no reply within %s): %w", reachTimeout, transport.ErrLost)
	}
	return nil
}

func backupPath(dest string) string {
	return path.Join(path.Dir(dest), "."+path.Base(dest)+".rollout-prev")
}

// install moves the staged files into place with rename(2), all in one
// command. With backup, the previous content is kept beside the file for
// restore.
func (p *hostPipeline) install(ctx context.Context, files []Rendered, backup bool) error {
	if len(files) == 0 {
		return nil
	}
	var parts []string
	for _, f := range files {
		sp, ok := p.staged[f.Dest]
		if !ok {
			return fmt.Errorf("file %q was not staged", f.Name)
		}
		d, b := shell.Quote(f.Dest), shell.Quote(backupPath(f.Dest))
		cmd := "mv -f " + shell.Quote(sp) + " " + d
		if backup {
			cmd = "if [ -e " + d + " ]; then cp -p " + d + " " + b + "; else rm -f " + b + "; fi && " + cmd
		}
		parts = append(parts, cmd)
	}
	res, err := shell.RunParts(ctx, p.h.conn, parts, false, "")
	if err != nil {
		return fmt.Errorf("moving files into place: %w", err)
	}
	for i, f := range files {
		if !res[i].Ran {
			break
		}
		if res[i].Status != 0 {
			return fmt.Errorf("file %q: moving into place: %s: exited with status %d%s", f.Name, p.h.t.Host.Name, res[i].Status, tail(res[i].Out))
		}
		delete(p.staged, f.Dest)
		if backup {
			p.moved = append(p.moved, f)
		}
	}
	return nil
}

// restore puts the previous content of every moved file back (or removes a
// file that did not exist before), and removes what is still staged, in
// one command.
func (p *hostPipeline) restore(ctx context.Context) error {
	var parts []string
	var files []Rendered
	for i := len(p.moved) - 1; i >= 0; i-- {
		f := p.moved[i]
		d, b := shell.Quote(f.Dest), shell.Quote(backupPath(f.Dest))
		cmd := "mv -f " + b + " " + d
		if p.h.live[f.Dest] == "" {
			cmd = "rm -f " + d
		}
		parts = append(parts, cmd)
		files = append(files, f)
	}
	finally := ""
	if len(p.staged) > 0 {
		var paths []string
		for _, sp := range p.staged {
			paths = append(paths, sp)
		}
		sort.Strings(paths)
		finally = "rm -f -- " + shell.Join(paths...)
	}
	if len(parts) == 0 && finally == "" {
		return nil
	}
	res, err := shell.RunParts(ctx, p.h.conn, parts, true, finally)
	if err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	var errs []error
	for i, f := range files {
		if res[i].Status != 0 {
			errs = append(errs, fmt.Errorf("file %q: restoring: %s: exited with status %d%s", f.Name, p.h.t.Host.Name, res[i].Status, tail(res[i].Out)))
		}
	}
	p.staged = map[string]string{}
	if len(errs) == 0 {
		p.moved = nil
	}
	return errors.Join(errs...)
}

func (p *hostPipeline) health(ctx context.Context, quick bool) error {
	r := p.r
	g, err := r.env.NewGate(ctx, p.h.t, p.h.drainer, quick)
	if err != nil {
		return err
	}
	if g == nil {
		return nil
	}
	name := p.h.t.Host.Name
	var lastEmit time.Time
	return g.Wait(ctx, func(pg Progress) {
		if quick {
			return // one round between ramp steps: not a window worth showing
		}
		now := r.env.Now()
		if now.Sub(lastEmit) < 200*time.Millisecond && pg.Elapsed < pg.Window {
			return
		}
		lastEmit = now
		msg := ""
		if pg.LastErr != nil {
			msg = pg.LastErr.Error()
		}
		r.emit(event.Event{Event: event.HealthProgress, Host: name, Batch: p.batch,
			WindowElapsed: event.Float(pg.Elapsed.Seconds()), Window: event.Float(pg.Window.Seconds()), Message: msg})
	})
}

// undrain puts the host back in every LB, stepping the weight up along the
// ramp while health keeps passing, and waits until the LB reports it UP.
func (p *hostPipeline) undrain(ctx context.Context, ramp bool) error {
	r, d := p.r, p.h.drainer
	name := p.h.t.Host.Name
	steps := p.h.t.Spec.Drain.Ramp
	if !ramp || len(steps) == 0 {
		steps = []int{100}
	}
	if steps[0] < 100 {
		if err := d.SetWeight(ctx, steps[0]); err != nil {
			return err
		}
	}
	if ramp {
		p.analysisStart(ctx)
	}
	if err := d.Undrain(ctx); err != nil {
		return err
	}
	for i, w := range steps {
		if i > 0 || w == 100 {
			if err := d.SetWeight(ctx, w); err != nil {
				return err
			}
		}
		r.emit(event.Event{Event: event.RampStep, Host: name, Batch: p.batch, Weight: event.Int(w)})
		if w < 100 {
			if err := p.health(ctx, true); err != nil {
				return fmt.Errorf("health at weight %d%%: %w", w, err)
			}
		}
		if ramp {
			if err := p.judge(ctx, fmt.Sprintf("ramp %d%%", w), 0); err != nil {
				if errors.Is(err, ErrAnalysis) {
					p.stopServing(ctx)
				}
				return err
			}
		}
	}
	deadline := r.env.Now().Add(serveDeadline(p.h.t.Spec))
	serving := d.Serving
	if c, ok := d.(Confirmer); ok {
		serving = c.Confirmed
	}
	for {
		up, status, err := serving(ctx)
		if err == nil && up {
			if ramp && r.bake > 0 && p.anaStart != nil {
				return p.bakeJudged(ctx)
			}
			return nil
		}
		if r.env.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("load balancer never reported the server UP: %w", err)
			}
			return fmt.Errorf("load balancer never reported the server UP: %s", status)
		}
		if err := r.env.Sleep(ctx, r.opts.PollEvery); err != nil {
			return err
		}
	}
}

// bakeJudged keeps the host serving at full weight for the bake pause,
// judged by the analysis all along, before it is recorded.
func (p *hostPipeline) bakeJudged(ctx context.Context) error {
	p.r.emit(event.Event{Event: event.HostPhase, Host: p.h.t.Host.Name, Batch: p.batch, Phase: event.PhaseBake, Status: event.StatusRunning,
		Revision: p.r.pr.Revision, Message: fmt.Sprintf("baking %s under canary analysis", p.r.bake)})
	if err := p.judge(ctx, "bake", p.r.bake); err != nil {
		if errors.Is(err, ErrAnalysis) {
			p.stopServing(ctx)
		}
		return err
	}
	return nil
}

func usesLBHealth(s *plan.HostSpec) bool {
	for _, h := range s.Health {
		if h.Kind == "haproxy" {
			return true
		}
	}
	return false
}

func serveDeadline(s *plan.HostSpec) time.Duration {
	d := 30 * time.Second
	for _, h := range s.Health {
		if h.Deadline > d {
			d = h.Deadline
		}
	}
	return d
}

func (p *hostPipeline) record(ctx context.Context) error {
	r, h := p.r, p.h
	files := map[string]string{}
	var backups []string
	for _, f := range h.t.Tracked() {
		files[f.Dest] = f.SHA256
	}
	for _, f := range h.t.Files {
		backups = append(backups, backupPath(f.Dest))
	}
	st := &journal.HostState{Plan: r.pr.Plan.Name, Revision: p.revision(), Files: files, VarsSHA256: h.t.VarsSHA256,
		Artifacts: artifactStates(h.t.Spec.Artifacts),
		RunID:     r.opts.RunID, Time: r.env.Now().UTC(), Host: h.t.Host.Name, DeployedBy: r.operator()}
	if h.old != nil {
		st.PreviousRevision = h.old.Revision
		if h.old.Revision == p.revision() {
			st.PreviousRevision = h.old.PreviousRevision
		}
		if r.opts.Kind == "rollback" && h.old.Revision != r.pr.Revision {
			st.RolledBackFrom = &journal.RollbackMark{Revision: h.old.Revision, RunID: r.opts.RunID, By: r.operator(),
				Reason: r.opts.Reason, Time: st.Time}
		}
	}
	// the backups go in the same command, once the marker is in place
	rm := "true"
	if len(backups) > 0 {
		rm = "rm -f -- " + shell.Join(backups...)
	}
	if err := journal.WriteStateThen(ctx, h.conn, h.t.Spec.StateDir, r.pr.Plan.Name, st, rm); err != nil {
		return err
	}
	p.prune(ctx)
	return nil
}

// rollback takes one step of the way back for a host that failed after
// restart: its previous revision through the same steps as the new one
// (stage, validate, install, check, restart, health). On a first deploy
// there is no previous revision: the previous content is the backups.
func (p *hostPipeline) rollback(ctx context.Context, s Step) error {
	h, r := p.h, p.r
	spec := h.t.Spec
	if h.prev != nil {
		spec = h.prev.Spec
	}
	switch s {
	case StepRollback:
		p.invalid = nil
		if h.prev == nil {
			return nil
		}
		// the previous release is still on the host, unless it was
		// pruned: then it is fetched again from its revision's source
		if err := r.artifacts().Stage(ctx, h.conn, h.prev.Spec.Artifacts); err != nil {
			return err
		}
		if len(h.prev.Files) == 0 {
			return nil
		}
		staged, err, invalid := r.validator().Stage(ctx, h.conn, h.prev.Files, r.stageTag("rollback"), false)
		p.staged, p.invalid = staged, invalid
		return err
	case StepRollbackValidate:
		if p.invalid != nil {
			r.validator().Unstage(ctx, h.conn, p.staged)
			p.staged = map[string]string{}
		}
		return p.invalid
	case StepRollbackInstall:
		if h.prev == nil {
			err := p.restore(ctx)
			if aerr := p.restoreArtifacts(ctx, h.t.Spec.Artifacts); aerr != nil {
				err = errors.Join(err, aerr)
			}
			return err
		}
		if err := p.install(ctx, h.prev.Files, false); err != nil {
			return err
		}
		var backups []string
		for _, f := range p.moved {
			backups = append(backups, backupPath(f.Dest))
		}
		if len(backups) > 0 {
			_ = h.conn.Run(ctx, "rm -f "+shell.Join(backups...), nil, nil, nil)
		}
		p.moved = nil
		if err := p.switchBack(ctx); err != nil {
			return err
		}
		return p.run(ctx, "install", spec.Install)
	case StepRollbackCheck:
		return r.validator().Check(ctx, h.conn, spec.Check)
	case StepRollbackRestart:
		return p.run(ctx, "restart", spec.Restart)
	case StepRollbackHealth:
		if usesLBHealth(spec) {
			if err := h.drainer.Drain(ctx); err != nil {
				return err
			}
		}
		if err := p.health(ctx, false); err != nil {
			return fmt.Errorf("previous revision is not healthy either: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unknown rollback step %q", s)
}

// diagnose captures what an operator needs to see about a failed host.
func (p *hostPipeline) diagnose(ctx context.Context) {
	var b strings.Builder
	if p.lastHealth != nil {
		fmt.Fprintf(&b, "last health result: %v\n", p.lastHealth)
	}
	cmds := p.h.t.Spec.Diagnostics
	if len(cmds) == 0 {
		for _, hc := range p.h.t.Spec.Health {
			if hc.Unit != "" {
				cmds = append(cmds, "systemctl status --no-pager "+shell.Quote(hc.Unit), "journalctl --no-pager -n 50 -u "+shell.Quote(hc.Unit))
			}
			if hc.PidFile != "" {
				pf := shell.Quote(hc.PidFile)
				cmds = append(cmds, "cat "+pf+"; ps -o pid,ppid,etime,args -p \"$(cat "+pf+")\"")
			}
		}
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	for _, c := range cmds {
		var out bytes.Buffer
		err := p.h.conn.Run(dctx, c, nil, &out, &out)
		s := out.String()
		if len(s) > 4000 {
			s = "…" + s[len(s)-4000:]
		}
		fmt.Fprintf(&b, "$ %s\n%s", c, s)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	p.diag = strings.TrimSpace(b.String())
}

// switchArtifacts points the artifacts' current links at their releases
// (staged in preflight, or for the way back), keeping where they pointed
// before the first switch of this run.
func (p *hostPipeline) switchArtifacts(ctx context.Context, arts []plan.ArtifactSpec) error {
	if len(arts) == 0 {
		return nil
	}
	prev, err := p.r.artifacts().Switch(ctx, p.h.conn, arts)
	if p.artPrev == nil {
		p.artPrev = map[string]string{}
	}
	for name, target := range prev {
		if _, seen := p.artPrev[name]; !seen {
			p.artPrev[name] = target
		}
	}
	if err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	return nil
}

// restoreArtifacts points current back where it was before this run
// switched it.
func (p *hostPipeline) restoreArtifacts(ctx context.Context, arts []plan.ArtifactSpec) error {
	if len(p.artPrev) == 0 {
		return nil
	}
	if err := p.r.artifacts().Restore(ctx, p.h.conn, arts, p.artPrev); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	p.artPrev = nil
	return nil
}

// switchBack is the way back's switch: the previous revision's releases,
// and, for an artifact only the new revision has, current as it was.
func (p *hostPipeline) switchBack(ctx context.Context) error {
	prevArts := p.h.prev.Spec.Artifacts
	if err := p.switchArtifacts(ctx, prevArts); err != nil {
		return err
	}
	had := map[string]bool{}
	for _, a := range prevArts {
		had[a.Name] = true
	}
	var only []plan.ArtifactSpec
	for _, a := range p.h.t.Spec.Artifacts {
		if !had[a.Name] {
			only = append(only, a)
		}
	}
	return p.restoreArtifacts(ctx, only)
}

// prune removes releases beyond keep once the host is recorded, never
// the current one nor the one it ran before (best effort: a failure is
// logged, the host is done).
func (p *hostPipeline) prune(ctx context.Context) {
	arts := p.h.t.Spec.Artifacts
	if len(arts) == 0 {
		return
	}
	protect := map[string][]string{}
	for _, a := range arts {
		if t := p.artPrev[a.Name]; t != "" {
			protect[a.Name] = append(protect[a.Name], releaseOf(t))
		}
		if p.h.old != nil {
			if st, ok := p.h.old.Artifacts[a.Name]; ok {
				protect[a.Name] = append(protect[a.Name], st.ID)
			}
		}
	}
	gone, err := p.r.artifacts().Prune(ctx, p.h.conn, arts, protect)
	if err != nil {
		p.r.log("warn", "%s: pruning releases: %v", p.h.t.Host.Name, err)
		return
	}
	if len(gone) > 0 {
		p.r.log("info", "%s: pruned %s", p.h.t.Host.Name, strings.Join(gone, ", "))
	}
}
