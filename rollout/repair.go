package rollout

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/artifact"
	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
)

// RepairResult is what repair did to one host.
type RepairResult struct {
	Host     string
	Restored []string // files put back from their pre-run copies
	Undrain  bool
	// Revision is what the host's marker records: the revision it is
	// back on ("" when nothing is recorded)
	Revision string
	Err      error // what it could not fix
}

// Repair puts a host that a dead or failed run left drained or half-done
// back to its state before that run: files it moved are restored from the
// copies kept beside them (unless the host recorded success), the service
// is restarted and health-gated when files changed, and the host is put
// back in every load balancer.
func Repair(ctx context.Context, p *plan.Plan, h *inventory.Host, env Env, runID string) RepairResult {
	res := RepairResult{Host: h.Name}
	env = env.clocked()
	fail := func(format string, args ...any) RepairResult {
		res.Err = fmt.Errorf(format, args...)
		return res
	}
	spec, diags := p.ForHost(h, p.Revision)
	if diags.HasErrors() {
		return fail("evaluating the plan: %s", diags.Error())
	}
	conn, err := env.Connect(ctx, h)
	if err != nil {
		return fail("connecting: %v", err)
	}
	st, err := journal.ReadState(ctx, conn, spec.StateDir, p.Name)
	if err != nil {
		return fail("%v", err)
	}
	if st != nil {
		res.Revision = st.Revision
	}
	recorded := st != nil && st.RunID == runID && runID != ""
	// Which files the run moved and left a copy of: those go back.
	var restore []plan.FileSpec
	if !recorded {
		for _, f := range spec.Files {
			b := backupPath(f.Dest)
			var out bytes.Buffer
			if err := conn.Run(ctx, "if [ -e "+shell.Quote(b)+" ]; then echo yes; fi", nil, &out, nil); err != nil {
				return fail("looking for %s: %v", b, err)
			}
			if strings.TrimSpace(out.String()) == "yes" {
				restore = append(restore, f)
			}
		}
	}
	// Which artifacts' current the run switched away from the recorded
	// release: those switch back.
	var relink []plan.ArtifactSpec
	back := map[string]string{}
	if !recorded && st != nil {
		for name, as := range st.Artifacts {
			a := plan.ArtifactSpec{Name: name, Dest: as.Dest, SHA256: as.SHA256}
			var out bytes.Buffer
			if err := conn.Run(ctx, "readlink -- "+shell.Quote(artifact.Current(a))+" || true", nil, &out, nil); err != nil {
				return fail("reading %s: %v", artifact.Current(a), err)
			}
			if strings.TrimSpace(out.String()) != artifact.LinkTarget(as.SHA256) {
				relink = append(relink, a)
				back[name] = artifact.LinkTarget(as.SHA256)
			}
		}
	}
	t := &Target{Host: h, Spec: spec}
	d, err := env.NewDrainer(ctx, t)
	if err != nil {
		return fail("drain driver: %v", err)
	}
	if len(restore) > 0 || len(relink) > 0 {
		// The dead run may have died after putting the host back (during
		// the ramp, say): take it out of every LB and wait for its
		// sessions before its files change and it restarts. Draining a
		// host already drained changes nothing.
		if err := drainAndWait(ctx, env, d, spec.Drain.Timeout); err != nil {
			return fail("draining before the restore (nothing changed): %v", err)
		}
		for _, f := range restore {
			if err := conn.Run(ctx, "mv -f "+shell.Quote(backupPath(f.Dest))+" "+shell.Quote(f.Dest), nil, nil, nil); err != nil {
				return fail("restoring %s: %v", f.Dest, err)
			}
			res.Restored = append(res.Restored, f.Dest)
		}
		if len(relink) > 0 {
			arts := env.Artifacts
			if arts == nil {
				arts = artifact.NewRemote()
			}
			if err := arts.Restore(ctx, conn, relink, back); err != nil {
				return fail("switching artifacts back: %v", err)
			}
			for _, a := range relink {
				res.Restored = append(res.Restored, artifact.Current(a))
			}
		}
		var out bytes.Buffer
		if err := conn.Run(ctx, spec.Restart, nil, &out, &out); err != nil {
			return fail("files restored, but restart failed (left drained): %v%s", err, tail(out.String()))
		}
		g, err := env.NewGate(ctx, t, d, false)
		if err != nil {
			return fail("health gate: %v", err)
		}
		if g != nil {
			if err := g.Wait(ctx, func(Progress) {}); err != nil {
				return fail("files restored and restarted, but not healthy (left drained): %v", err)
			}
		}
	}
	if err := d.Undrain(ctx); err != nil {
		return fail("undrain: %v", err)
	}
	if err := d.SetWeight(ctx, 100); err != nil {
		return fail("weight 100%%: %v", err)
	}
	deadline := env.Now().Add(serveDeadline(spec))
	for {
		up, status, err := d.Serving(ctx)
		if err == nil && up {
			break
		}
		if env.Now().After(deadline) {
			return fail("undrained, but the load balancer does not report it UP: %s %v", status, err)
		}
		if err := env.Sleep(ctx, 250*time.Millisecond); err != nil {
			return fail("%v", err)
		}
	}
	res.Undrain = true
	return res
}

// drainAndWait takes the host out of its load balancers and waits until its
// sessions reach zero, for at most timeout (0: the default 2m).
func drainAndWait(ctx context.Context, env Env, d Drainer, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if err := d.Drain(ctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	deadline := env.Now().Add(timeout)
	for {
		n, err := d.Sessions(ctx)
		if err == nil && n == 0 {
			return d.Settle(ctx)
		}
		if env.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("sessions: %w", err)
			}
			return fmt.Errorf("%d session(s) still open after %s", n, timeout)
		}
		if err := env.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}
