package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// HookError is a hook that failed: a before_run one stops the run before
// any host is drained, an after_batch one halts it like a failed host, an
// after_run one fails it once every host is done.
type HookError struct {
	Hook  *plan.Hook
	Batch int // after_batch: the batch it ran after (1-based)
	Err   error
}

func (e *HookError) Error() string {
	at := e.Hook.At
	if e.Batch > 0 {
		at = fmt.Sprintf("%s %d", at, e.Batch)
	}
	return fmt.Sprintf("hook %q (%s) failed: %v", e.Hook.Name, at, e.Err)
}

// Unwrap makes a failed hook a failed run (exit 1).
func (e *HookError) Unwrap() []error { return []error{e.Err, ErrRunFailed} }

// onFailureHardStop bounds an on_failure hook when the run was stopped at
// once (a second Ctrl-C): the operator asked to stop now.
const onFailureHardStop = 10 * time.Second

// runHooks runs the plan's hooks at at, in the order written, each once:
// batch is the batch an after_batch hook follows (0 otherwise), hosts the
// hosts it concerns, outcome what the run came to (after_run, on_failure).
// The first failure stops the rest, except for on_failure hooks, which are
// best effort: every one runs, and their failures are only reported.
func (r *run) runHooks(ctx context.Context, at string, batch int, hosts []string, outcome string) error {
	var done map[string]string // before_run hooks that already succeeded at this revision: name → run
	if at == plan.HookBeforeRun && !r.opts.RerunHooks {
		done = r.hooksDone(ctx)
	}
	for _, h := range r.pr.Plan.Hooks {
		if h.At != at {
			continue
		}
		if run, ok := done[h.Name]; ok {
			r.emit(event.Event{Event: event.Hook, Host: h.On, Status: HookSkipped,
				Message: fmt.Sprintf("hook %s (%s) already succeeded for %s in run %s: not run again (--rerun-hooks runs it)", h.Name, h.At, plan.ShortRev(r.pr.Revision), run)})
			continue
		}
		err := r.runHook(ctx, h, batch, hosts, outcome)
		if err != nil && at != plan.HookOnFailure {
			return &HookError{Hook: h, Batch: batch, Err: err}
		}
	}
	return nil
}

// HookSkipped is the status of a hook event for a before_run hook a
// resumed run does not repeat.
const HookSkipped = "skipped"

// EventReader is implemented by backends that can read the plan's
// journal back (both the local one and etcd).
type EventReader interface {
	Events(ctx context.Context, plan string) ([]event.Event, error)
}

// hooksDone are the before_run hooks that an earlier run of this revision
// ran to success (hook name → that run): a run resumed after an
// interruption does not migrate twice. Nothing when the journal cannot
// be read: then the hooks run.
func (r *run) hooksDone(ctx context.Context) map[string]string {
	er, ok := r.opts.Backend.(EventReader)
	if !ok {
		return nil
	}
	evs, err := er.Events(ctx, r.pr.Plan.Name)
	if err != nil {
		return nil
	}
	revOf := map[string]string{}
	done := map[string]string{}
	for _, e := range evs {
		switch {
		case e.Event == event.RunStart:
			revOf[e.Run] = e.Revision
		case e.Event == event.Hook && e.Status == event.StatusOK && e.Run != r.opts.RunID && revOf[e.Run] == r.pr.Revision:
			for _, h := range r.pr.Plan.Hooks {
				if h.At == plan.HookBeforeRun && strings.HasPrefix(e.Message, "hook "+h.Name+" ("+plan.HookBeforeRun+")") {
					done[h.Name] = e.Run
				}
			}
		}
	}
	return done
}

// hookEnv is what a hook sees of the run, as environment variables.
func (r *run) hookEnv(batch int, hosts []string, outcome string) []string {
	env := []string{
		"ROLLOUT_PLAN=" + r.pr.Plan.Name,
		"ROLLOUT_RUN=" + r.opts.RunID,
		"ROLLOUT_REVISION=" + r.pr.Revision,
		"ROLLOUT_HOSTS=" + strings.Join(hosts, " "),
		"ROLLOUT_OPERATOR=" + r.operator(),
	}
	if u := r.opts.Operator.URL; u != "" {
		env = append(env, "ROLLOUT_OPERATOR_URL="+u)
	}
	if prev := r.previousOf(hosts); prev != "" {
		env = append(env, "ROLLOUT_PREVIOUS="+prev)
	}
	if batch > 0 {
		env = append(env, fmt.Sprintf("ROLLOUT_BATCH=%d", batch))
	}
	if outcome != "" {
		env = append(env, "ROLLOUT_OUTCOME="+outcome)
	}
	return env
}

// previousOf is the revision hosts were on before this run, when they all
// were on the same one ("" when it is not known or not one).
func (r *run) previousOf(hosts []string) string {
	prev := ""
	for _, n := range hosts {
		h := r.hosts[n]
		if h == nil || h.old == nil || h.old.Revision == "" {
			return ""
		}
		if prev != "" && prev != h.old.Revision {
			return ""
		}
		prev = h.old.Revision
	}
	return prev
}

// runHook runs one hook, on the controller or on its host, within its
// timeout, and reports it: a hook event when it starts and one with its
// output when it ends.
func (r *run) runHook(ctx context.Context, h *plan.Hook, batch int, hosts []string, outcome string) error {
	where := "the controller"
	if h.On != "" {
		where = h.On
	}
	timeout := h.Timeout
	if h.At == plan.HookOnFailure {
		// it runs because the run is ending: a stop does not cancel it,
		// a stop at once bounds it
		if ctx.Err() != nil {
			timeout = min(timeout, onFailureHardStop)
		}
		ctx = context.WithoutCancel(ctx)
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what := fmt.Sprintf("hook %s (%s) on %s", h.Name, h.At, where)
	r.emit(event.Event{Event: event.Hook, Batch: batch, Host: h.On, Status: event.StatusRunning, Message: what})
	env := r.hookEnv(batch, hosts, outcome)
	var out bytes.Buffer
	command, err := h.CommandAt(r.pr.Revision)
	switch {
	case err != nil:
	case h.On == "":
		err = r.hookLocal(hctx, command, env, &out)
	default:
		err = r.hookRemote(hctx, h, command, env, &out)
	}
	if err != nil && hctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("still running after its timeout (%s): stopped", timeout)
	}
	status, exit := event.StatusOK, 0
	if err != nil {
		status, exit = event.StatusFailed, event.RemoteExitUnknown
		var es interface{ ExitStatus() int }
		if errors.As(err, &es) {
			exit = es.ExitStatus()
		}
	}
	msg := what
	if err != nil {
		msg += ": " + err.Error()
	}
	r.emit(event.Event{Event: event.Hook, Batch: batch, Host: h.On, Status: status, Message: msg,
		Remote: event.NewRemote(command, exit, out.String())})
	return err
}

// hookLocal runs a controller hook in the plan's directory, in a process
// group of its own so that a timeout stops all of it.
func (r *run) hookLocal(ctx context.Context, command string, env []string, out *bytes.Buffer) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = r.pr.Plan.Dir
	if cmd.Dir == "" {
		cmd.Dir = filepath.Dir(r.pr.Req.PlanFile)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return exitStatus{code: ee.ExitCode()}
	}
	return err
}

// exitStatus is a controller hook's non-zero exit.
type exitStatus struct{ code int }

func (e exitStatus) Error() string   { return fmt.Sprintf("exit status %d", e.code) }
func (e exitStatus) ExitStatus() int { return e.code }

// hookRemote runs a hook on its inventory host over SSH: the run's
// connection when the host is a target, else one of its own.
func (r *run) hookRemote(ctx context.Context, h *plan.Hook, command string, env []string, out *bytes.Buffer) error {
	var conn Conn
	if t := r.hosts[h.On]; t != nil && t.conn != nil {
		conn = t.conn
	} else {
		host := r.pr.Inventory.Host(h.On)
		if host == nil {
			return fmt.Errorf("%s is not in the inventory", h.On)
		}
		c, err := r.env.Connect(ctx, host)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", h.On, err)
		}
		conn = c
	}
	sort.Strings(env)
	var line strings.Builder
	line.WriteString("env")
	for _, kv := range env {
		line.WriteString(" " + shell.Quote(kv))
	}
	line.WriteString(" /bin/sh -c " + shell.Quote(command))
	return conn.Run(ctx, line.String(), nil, out, out)
}

// runOutcome is what an on_failure hook is told the run came to.
func runOutcome(err error) string {
	if errors.Is(err, ErrInterrupted) {
		return "interrupted"
	}
	return "failed"
}
