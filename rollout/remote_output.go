package rollout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rollout-sh/rollout/rollout/event"
)

// remoteOutput journals what an operator's command (restart, check, a
// validator) printed on a host, as a remote_output event: every run keeps
// it, the plain view shows it with -v. batch 0 is outside a batch
// (preflight); note names the file a validator checked. Commands that are
// empty (nothing ran) are not recorded.
func (r *run) remoteOutput(host string, batch int, step event.Phase, cmd, note string, status int, output string) {
	if strings.TrimSpace(cmd) == "" {
		return
	}
	st := event.StatusOK
	if status != 0 {
		st = event.StatusFailed
	}
	r.emit(event.Event{Event: event.RemoteOutput, Host: host, Batch: batch, Phase: step, Status: st, Message: note,
		Remote: event.NewRemote(cmd, status, output)})
}

// exitStatus is the exit status a Conn.Run error carries: 0 for nil, the
// command's status for an exit error, event.RemoteExitUnknown when the
// command did not finish (lost connection, stopped run).
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee interface{ ExitStatus() int }
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	return event.RemoteExitUnknown
}

// validatorOutput records a validator's run (one part of the staging
// command; one that did not run is not recorded).
func (r *run) validatorOutput(h *hostInfo, tag string, f Rendered, pr partResult) {
	if !pr.ran {
		return
	}
	note := fmt.Sprintf("file %q", f.Name)
	if tag != "stage" {
		note += " (" + tag + ")"
	}
	r.remoteOutput(h.t.Host.Name, 0, event.PhaseValidate, validatorCommand(f, stagedPath(f.Dest, r.opts.RunID, tag)), note, pr.status, pr.out)
}
