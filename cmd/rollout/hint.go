package main

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/shell"

	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/ui"
)

// hintFlags are the flags of this invocation that a suggested command needs
// too: without them a pasted `next:` command reads another state dir,
// another known_hosts or another ssh_config than the run it follows.
func (g *GlobalOptions) hintFlags() []string {
	var out []string
	add := func(flag, v string) {
		if v != "" {
			out = append(out, flag+" "+shellWord(v))
		}
	}
	add("--state-dir", g.StateDir)
	add("--known-hosts", g.KnownHosts)
	add("--ssh-config", g.SSHConfig)
	if g.AcceptNewHostKeys {
		out = append(out, "--accept-new-host-keys")
	}
	if g.SSHKeepalive > 0 {
		add("--ssh-keepalive", g.SSHKeepalive.String())
	}
	if g.SSHKeepaliveCount > 0 {
		add("--ssh-keepalive-count", strconv.Itoa(g.SSHKeepaliveCount))
	}
	return out
}

// rolloutCommand finds `rollout VERB ...` in a hint; the command ends at
// `;`, ` (`, `, or `, ` or `, ` &&`, a comment (`  #`), a newline or the
// end.
var rolloutCommand = regexp.MustCompile(`rollout (?:validate|hosts|plan|apply|rollback|status|history|repair|unlock)\b`)

// withFlags appends flags to every rollout command in a hint that lacks
// them.
func withFlags(hint string, flags []string) string {
	if len(flags) == 0 {
		return hint
	}
	return mapCommands(hint, func(cmd string) string {
		for _, f := range flags {
			if !strings.Contains(cmd, strings.Fields(f)[0]) {
				cmd += " " + f
			}
		}
		return cmd
	})
}

// withRerun replaces, in a hint, a command that runs the same plan again
// with the command line the user typed (again: its scope, --yes,
// --revision): the bare "rollout apply PLAN" becomes again, and "rollout
// apply PLAN --yes --auto-approve" or "... --limit 'all:!web5'" becomes
// again with the hint's flags added, or in place of the user's own value
// of the same flag. Pasted, it does what the user was doing, plus what the
// hint says is needed.
func withRerun(hint, bare, again string) string {
	if bare == "" || again == "" {
		return hint
	}
	return mapCommands(hint, func(cmd string) string {
		if cmd == bare {
			return again
		}
		if extra, ok := strings.CutPrefix(cmd, bare+" -"); ok {
			if merged, ok := mergeFlags(again, "-"+extra); ok {
				return merged
			}
		}
		return cmd
	})
}

// mergeFlags is the command line line with the flags of extra (shell
// words) added, each replacing the same flag (and its value) in line.
func mergeFlags(line, extra string) (string, bool) {
	words, err := shell.Fields(line, noEnv)
	if err != nil {
		return "", false
	}
	more, err := shell.Fields(extra, noEnv)
	if err != nil {
		return "", false
	}
	head, flags := flagGroups(words)
	_, add := flagGroups(more)
	for _, g := range add {
		i := slices.IndexFunc(flags, func(f []string) bool { return f[0] == g[0] })
		if i >= 0 {
			flags[i] = g
		} else {
			flags = append(flags, g)
		}
	}
	out := head
	for _, g := range flags {
		out = append(out, g...)
	}
	for i, w := range out {
		out[i] = shellWord(w)
	}
	return strings.Join(out, " "), true
}

// noEnv expands no variable: a hint's words are literal.
func noEnv(string) string { return "" }

// flagGroups splits a command's words into the words before its first flag
// and its flags, each with its value when it has one (the next word, when
// it is not a flag itself).
func flagGroups(words []string) (head []string, flags [][]string) {
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case !strings.HasPrefix(w, "-") && len(flags) == 0:
			head = append(head, w)
		case !strings.HasPrefix(w, "-"):
			last := flags[len(flags)-1]
			flags[len(flags)-1] = append(last, w)
		default:
			flags = append(flags, []string{w})
		}
	}
	return head, flags
}

// mapCommands replaces every rollout command in a hint with f's result.
func mapCommands(hint string, f func(cmd string) string) string {
	if hint == "" {
		return hint
	}
	var b strings.Builder
	rest := hint
	for {
		loc := rolloutCommand.FindStringIndex(rest)
		if loc == nil {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:loc[0]])
		rest = rest[loc[0]:]
		end := len(rest)
		for _, sep := range []string{";", " (", ", or ", " or ", "\n", ", then", "`", ")", " &&", "  #"} {
			if i := strings.Index(rest, sep); i >= 0 && i < end {
				end = i
			}
		}
		cmd := strings.TrimRight(rest[:end], " ")
		b.WriteString(f(cmd))
		rest = rest[len(cmd):]
	}
}

// hintSink gives the run's run_done the user's flags in its commands
// before the views and the journal see it.
// A bare rerun of the plan (rerun[0]) becomes the user's command line
// (rerun[1]).
type hintSink struct {
	flags []string
	rerun [2]string
	next  event.Sink
}

func (h hintSink) Emit(e event.Event) {
	if e.Event == event.RunDone {
		e.Message, e.Next = h.hint(e.Message), h.hint(e.Next)
	}
	h.next.Emit(e)
}

func (h hintSink) hint(s string) string {
	return withFlags(withRerun(s, h.rerun[0], h.rerun[1]), h.flags)
}

// writeJSONDone ends a --ui json command that stopped before its own
// stream did: a refused apply or rollback gets its run_start too, so every
// run's stream is run_start … run_done.
func writeJSONDone(ios *IOStreams, cmdName string, err error, code int, flags []string) {
	out := ios.jsonOut
	if out == nil {
		out = ios.Out
	}
	j := ui.NewJSON(out)
	now := time.Now()
	if err != nil && (cmdName == "apply" || cmdName == "rollback") {
		j.Emit(event.Event{Time: now, Event: event.RunStart, Schema: event.Schema, Message: cmdName})
	}
	e := event.Event{Time: now, Event: event.RunDone, Status: rollout.ExitOf(err).Status, ExitCode: event.Int(code)}
	var r *rollout.Refusal
	var d *rollout.DiagError
	switch {
	case errors.As(err, &r):
		e.Message, e.Next = r.Problem, withFlags(r.Next, flags)
	case errors.As(err, &d):
		e.Message, e.Next = d.Error(), withFlags(diagNext(d), flags)
	case code == rollout.ExitRefused, code == rollout.ExitInterrupted:
		e.Message = err.Error()
	case err != nil:
		var ee exitError
		if !errors.As(err, &ee) {
			e.Message = err.Error()
		}
	}
	j.Emit(e)
	ios.jsonDone = true
}
