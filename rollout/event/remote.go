package event

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// RemoteOutput is what a command of the operator's (restart, check, a
// file's validator) printed on a host: Host, Batch (absent in preflight),
// Phase (the step: restart, check, validate, preflight), Status (ok |
// failed), Message (the file, for a validator) and Remote. Every run
// journals it; the plain view shows it with -v (docs/json-events.md).
const RemoteOutput Kind = "remote_output"

// Limits on what a remote_output keeps of a command's output: the last
// RemoteTailLines lines, and of those at most RemoteTailBytes bytes, so the
// journal stays small however much a command prints.
const (
	RemoteTailLines = 20
	RemoteTailBytes = 4096
)

// RemoteExitUnknown is Remote.ExitStatus when the command did not finish:
// the connection was lost or the run was stopped under it.
const RemoteExitUnknown = -1

// Remote is one command's run on a host.
type Remote struct {
	Command    string `json:"command"`           // the command as it ran on the host
	ExitStatus int    `json:"exit_status"`       // 0 ok; RemoteExitUnknown when it did not finish
	Output     string `json:"output"`            // the last lines of stdout and stderr, merged in the order written
	Omitted    int    `json:"omitted,omitempty"` // bytes of output before Output that were left out
}

// NewRemote returns the record of cmd's run, its output cut to the limits.
func NewRemote(cmd string, exitStatus int, output string) *Remote {
	out, omitted := Tail(output, RemoteTailLines, RemoteTailBytes)
	return &Remote{Command: cmd, ExitStatus: exitStatus, Output: out, Omitted: omitted}
}

// Tail returns the last lines of s (at most maxLines lines and maxBytes
// bytes, cut at a line or, for one long line, a rune boundary; trailing
// newlines dropped) and how many bytes before it were left out.
func Tail(s string, maxLines, maxBytes int) (string, int) {
	t := strings.TrimRight(s, "\n")
	start := len(t) // t[start:] is kept; start is 0, len(t) or just after a newline
	for n := 0; n < maxLines && start > 0; n++ {
		end := start
		if end < len(t) {
			end-- // the newline before t[start:]
		}
		i := strings.LastIndexByte(t[:end], '\n') // the line before is t[i+1:end]
		if len(t)-(i+1) > maxBytes {
			break
		}
		start = i + 1
	}
	if start == len(t) && len(t) > 0 { // even the last line is over maxBytes: its end
		start = len(t) - maxBytes
		for start < len(t) && !utf8.RuneStart(t[start]) {
			start++
		}
	}
	return t[start:], start
}

// RemoteSink records what one of the plan's commands printed on a host:
// the step it ran in, a note (a validator's file), the command, its exit
// status and its output. The code that runs a command finds the sink in
// its context (RemoteSinkOf), so the hook where a command runs is one line.
type RemoteSink func(step Phase, note, cmd string, exitStatus int, output string)

type remoteSinkKey struct{}

// WithRemoteSink returns ctx carrying sink.
func WithRemoteSink(ctx context.Context, sink RemoteSink) context.Context {
	return context.WithValue(ctx, remoteSinkKey{}, sink)
}

// RemoteSinkOf returns the sink ctx carries, or one that records nothing.
func RemoteSinkOf(ctx context.Context) RemoteSink {
	if s, ok := ctx.Value(remoteSinkKey{}).(RemoteSink); ok && s != nil {
		return s
	}
	return func(Phase, string, string, int, string) {}
}

// RemoteEmitter is a sink that emits a remote_output event for host (in
// batch; 0 outside one) on emit. Commands that are empty (nothing ran) are
// not recorded.
func RemoteEmitter(emit func(Event), host string, batch int) RemoteSink {
	return func(step Phase, note, cmd string, exitStatus int, output string) {
		if strings.TrimSpace(cmd) == "" {
			return
		}
		st := StatusOK
		if exitStatus != 0 {
			st = StatusFailed
		}
		emit(Event{Event: RemoteOutput, Host: host, Batch: batch, Phase: step, Status: st, Message: note,
			Remote: NewRemote(cmd, exitStatus, output)})
	}
}

// ExitStatus is the exit status a command's error carries: 0 for nil, the
// command's status for an error with an ExitStatus method (remote and
// local runners), RemoteExitUnknown when the command did not finish (lost
// connection, stopped run).
func ExitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee interface{ ExitStatus() int }
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	return RemoteExitUnknown
}

// ValidatorNote is a validator's remote_output message: the file, and the
// step its staged copy was made for when that is not the host's own stage
// step (tag "preflight-r-…" or "rollback-r-…").
func ValidatorNote(file, tag string) string {
	note := fmt.Sprintf("file %q", file)
	for _, step := range []string{"preflight", "rollback"} {
		if strings.HasPrefix(tag, step+"-") {
			note += " (" + step + ")"
		}
	}
	return note
}
