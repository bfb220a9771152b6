package rollout

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// HostView is what a read-only look at one host found.
type HostView struct {
	Name    string
	Spec    *plan.HostSpec
	State   *journal.HostState // nil: nothing recorded
	Live    map[string]string  // dest → sha256 ("" = missing)
	Drift   []string           // files whose live content differs from the recorded hashes
	Lock    *journal.LockInfo
	LB      string // the LB's view of the server ("" when not asked)
	Serving bool
	Health  string // "ok", or why one round of the health checks failed ("" when not asked)
	Err     error  // the host could not be read
}

// Inspect reads each host's state marker, live file hashes, lock and
// (withLB) the load balancer's view, without changing anything. files are
// extra destinations to hash, per host (may be nil).
func Inspect(ctx context.Context, p *plan.Plan, hosts []*inventory.Host, env Env, forks int, withLB bool, files map[string][]string) []HostView {
	views := make([]HostView, len(hosts))
	idx := make([]int, len(hosts))
	for i := range idx {
		idx[i] = i
	}
	_ = eachOf(ctx, forks, idx, func(ctx context.Context, i int) error {
		views[i] = inspectOne(ctx, p, hosts[i], env, withLB, files[hosts[i].Name])
		return nil
	})
	return views
}

func inspectOne(ctx context.Context, p *plan.Plan, h *inventory.Host, env Env, withLB bool, extra []string) HostView {
	v := HostView{Name: h.Name}
	spec, diags := p.ForHost(h, p.Revision)
	if diags.HasErrors() {
		v.Err = fmt.Errorf("evaluating the plan: %s", diags.Error())
		return v
	}
	v.Spec = spec
	conn, err := env.Connect(ctx, h)
	if err != nil {
		v.Err = err
		return v
	}
	// The recorded files are only known once current.json is read; they
	// are the plan's files unless the plan changed, so hash what the plan
	// names in the same command and the rest in a second one.
	var dests []string
	for _, f := range tracked(nil, spec.Artifacts) {
		dests = append(dests, f.Dest)
	}
	for _, f := range spec.Files {
		dests = append(dests, f.Dest)
	}
	in, err := journal.Inspect(ctx, conn, spec.StateDir, p.Name, dedupe(append(dests, extra...)))
	if err == nil {
		err = finishRead(ctx, conn, in)
	}
	if err != nil {
		v.Err = err
		return v
	}
	v.State, v.Live = in.State, in.Live
	v.Drift = driftOf(in.State, in.Live)
	v.Lock, err = journal.ReadHostLock(ctx, conn, spec.StateDir, p.Name)
	if err != nil {
		v.Err = err
		return v
	}
	if withLB && env.NewDrainer != nil {
		d, err := env.NewDrainer(ctx, &Target{Host: h, Spec: spec})
		if err != nil {
			v.LB = "error: " + err.Error()
			return v
		}
		up, status, err := d.Serving(ctx)
		switch {
		case err != nil:
			v.LB = "error: " + err.Error()
		default:
			v.LB, v.Serving = status, up
		}
		v.Health = healthNow(ctx, &Target{Host: h, Spec: spec}, d, env)
	}
	return v
}

// healthNow runs one round of the host's health checks, bounded in time.
func healthNow(ctx context.Context, t *Target, d Drainer, env Env) string {
	if env.NewGate == nil || len(t.Spec.Health) == 0 {
		return ""
	}
	g, err := env.NewGate(ctx, t, d, true)
	if err != nil || g == nil {
		return fmt.Sprint("error: ", err)
	}
	gctx, cancel := context.WithTimeout(ctx, statusHealthTimeout)
	defer cancel()
	var last error
	err = g.Wait(gctx, func(p Progress) {
		if p.LastErr != nil {
			last = p.LastErr
		}
	})
	switch {
	case err == nil:
		return "ok"
	case last != nil:
		return "failing: " + last.Error()
	}
	return "failing: " + err.Error()
}

// LiveFile is the live content of a target file that a run would change.
type LiveFile struct {
	Host string
	File Rendered
	Live string // "" when the file is missing
	Err  error  // it could not be read
}

// ChangingFiles reads, on each host this look could read (views), the
// live content of every target file that differs from the target, for
// `plan --diff`. Hosts that cannot be reached now are left out.
func ChangingFiles(ctx context.Context, pr *Prepared, views map[string]HostView, env Env) []LiveFile {
	var out []LiveFile
	for _, t := range pr.Targets {
		v := views[t.Host.Name]
		if v.Err != nil {
			continue
		}
		conn, err := env.Connect(ctx, t.Host)
		if err != nil {
			continue
		}
		for _, f := range t.Files {
			if v.Live[f.Dest] == f.SHA256 {
				continue
			}
			lf := LiveFile{Host: t.Host.Name, File: f}
			if v.Live[f.Dest] != "" {
				var b bytes.Buffer
				lf.Err = conn.Run(ctx, "cat -- "+shell.Quote(f.Dest), nil, &b, nil)
				lf.Live = b.String()
			}
			out = append(out, lf)
		}
	}
	return out
}

// statusHealthTimeout bounds the health look of `rollout status`.
const statusHealthTimeout = 5 * time.Second

// LastRun is the last run in the journal (runs) that touched the host (it
// entered a pipeline phase: apply, rollback or repair), and how the host
// ended it; nil when none did.
func (v HostView) LastRun(runs []journal.RunSummary) (*journal.RunSummary, event.Outcome) {
	var last *journal.RunSummary
	var outcome event.Outcome
	for i := range runs {
		for _, hr := range runs[i].Hosts {
			if hr.Host == v.Name && hr.Phase != "" {
				last, outcome = &runs[i], hr.Outcome
			}
		}
	}
	return last, outcome
}

// Attention says why the host this look found needs a person, and the
// command that resolves it (pf is the plan file as a shell word, h the
// host's inventory entry or nil, runs the plan's journal); "" when it is
// at its recorded revision and serving. It is what `rollout status` decides.
func (v HostView) Attention(h *inventory.Host, runs []journal.RunSummary, pf string, now time.Time) (why, next string) {
	if v.Err != nil {
		if h == nil {
			return "unreachable", "rollout status " + pf + " --limit " + v.Name
		}
		return "unreachable (" + firstLine(v.Err.Error()) + ")", SSHCommand(h) + "  # shows why"
	}
	// the last run that touched the host, and how it left it
	last, outcome := v.LastRun(runs)
	runState := func(r *journal.RunSummary) string {
		if r.Finished {
			return "finished"
		}
		if v.Lock != nil && v.Lock.RunID == r.ID {
			if dead, _ := journal.OwnerDead(*v.Lock); dead {
				return "dead"
			}
			return "running, or dead on another machine"
		}
		return "dead"
	}
	switch {
	case last != nil && (outcome == event.OutcomeDrained || outcome == event.OutcomeUnknown) && !v.Serving:
		why := fmt.Sprintf("left drained by run %s (%s)", last.ID, runState(last))
		if outcome == event.OutcomeUnknown {
			why += ", half-done"
		}
		return why, "rollout repair " + pf
	case v.Lock != nil:
		if dead, why := journal.OwnerDead(*v.Lock); dead {
			return fmt.Sprintf("locked by dead run %s (%s)", v.Lock.RunID, why), "rollout repair " + pf
		}
		for _, r := range runs {
			if r.ID == v.Lock.RunID && r.Finished {
				return fmt.Sprintf("still locked by finished run %s (it could not release the lock)", r.ID), "rollout unlock " + pf + " --yes"
			}
		}
		if v.Lock.Expired(now) {
			return fmt.Sprintf("stale lock of run %s (expired)", v.Lock.RunID), "rollout unlock " + pf + " --yes"
		}
		return "", ""
	case len(v.Drift) > 0:
		return "DRIFT (hand-edited): " + strings.Join(v.Drift, ", "),
			"rollout plan " + pf + " --diff --limit " + v.Name + "  # shows it; to overwrite it: rollout apply " + pf + " --adopt --limit " + v.Name
	case v.LB != "" && !v.Serving && !strings.HasPrefix(v.LB, "error"):
		// no run of this plan left it so (the last one that touched it,
		// a repair say, left it in service): someone drained it by hand,
		// and repair would undo that — it is never the hint here
		why := "drained outside rollout (" + v.LB + "), not by a run of this plan"
		if last != nil {
			kind := last.Kind
			if kind == "" {
				kind = "run"
			}
			why = fmt.Sprintf("drained outside rollout (%s): the last run that touched it, %s %s, left it in service", v.LB, kind, last.ID)
		}
		return why,
			"rollout status " + pf + " --limit " + v.Name + "  # then check who drained it, and put it back with the load balancer's own tools when they are done (HAProxy: set server BACKEND/" + v.Name + " state ready)"
	}
	return "", ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
