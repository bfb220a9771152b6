package rollout

import (
	"context"
	"fmt"

	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/validate"
)

// Validator is how the engine has a host's files staged and checked;
// package validate holds the logic (validate.Remote, the default when
// Env.Validator is nil). Nothing it does changes a live file.
type Validator interface {
	// Stage writes files beside their destinations (validate.StagedPath
	// with tag) and runs their validators on the staged copies. err is a
	// failure to stage or to reach the host, invalid a validator's
	// rejection; staged is what to move into place or clean up. With
	// discard the copies are removed at once.
	Stage(ctx context.Context, conn transport.Runner, files []Rendered, tag string, discard bool) (staged map[string]string, err, invalid error)
	// Unstage removes staged copies, best effort.
	Unstage(ctx context.Context, conn transport.Runner, staged map[string]string)
	// Check runs the plan's whole-config check once the files are in place.
	Check(ctx context.Context, conn transport.Runner, cmd string) error
	// Preflight stages and validates on every host, removes the copies and
	// emits the preflight events; it returns the hosts that failed.
	Preflight(ctx context.Context, hosts []validate.Host, tag string, forks int, emit func(event.Event)) (failed []string, err error)
}

// validator is the run's Validator.
func (r *run) validator() Validator {
	if r.env.Validator != nil {
		return r.env.Validator
	}
	return validate.Remote{}
}

// stageTag names a step's staged copies in this run ("stage-r-…").
func (r *run) stageTag(step string) string { return step + "-" + r.opts.RunID }

// preflight stages and validates everywhere before any host is drained:
// nothing live is touched, and a failure on any host stops the run.
func (r *run) preflight(ctx context.Context, todo []string) error {
	hosts := make([]validate.Host, len(todo))
	for i, n := range todo {
		h := r.hosts[n]
		hosts[i] = validate.Host{Name: n, Conn: h.conn, Files: h.t.Files}
	}
	failed, err := r.validator().Preflight(ctx, hosts, r.stageTag("preflight"), r.opts.Forks, r.emit)
	if err != nil || ctx.Err() != nil {
		return ErrInterrupted
	}
	if len(failed) > 0 {
		for _, n := range todo {
			r.setOutcome(n, event.OutcomeNotStarted, "preflight failed")
		}
		return fmt.Errorf("preflight failed on %d of %d host(s): %w", len(failed), len(todo), ErrRunFailed)
	}
	return nil
}
