package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
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

// statusHealthTimeout bounds the health look of `rollout status`.
const statusHealthTimeout = 5 * time.Second
