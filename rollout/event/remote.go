package event

import (
	"strings"
	"unicode/utf8"
)

// RemoteOutput is what a command of the operator's (restart, check, a
// file's validator) printed on a host: Host, Batch (restart and check),
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
