// Package rollout is the engine: it prepares a run from a plan (selection,
// refusal rules, rendering), decides what to do next as a pure function of
// the run's state, and executes those decisions against hosts through small
// interfaces it declares.
package rollout

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rollout-sh/rollout/inventory"

	"github.com/hashicorp/hcl/v2"
)

// Exit codes, as SPEC.md defines them.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitRefused     = 2
	ExitChanges     = 4 // plan --detailed-exitcode: changes pending
	ExitInterrupted = 130
)

// ErrRunFailed is returned when a run halted or rolled back: hosts may be
// mixed, the output says which.
var ErrRunFailed = errors.New("the run failed")

// ErrApprovalNeeded is returned when a run stopped at an approve_after gate
// that no one could approve (no terminal and no --auto-approve). It is a
// failure (exit 1): hosts before the gate were changed.
var ErrApprovalNeeded = fmt.Errorf("no one could approve: %w", ErrRunFailed)

// ErrInterrupted is returned when the run was stopped by Ctrl-C / SIGTERM.
var ErrInterrupted = errors.New("interrupted")

// ErrLost is wrapped by a StoppedError: the run could not go on safely
// (its lock was lost, or its journal could not be written) and stopped as
// a first Ctrl-C does.
var ErrLost = errors.New("the run cannot go on safely")

// ErrJournalUnwritable is the cause of a stop when a journal record could
// not be written before its step.
var ErrJournalUnwritable = errors.New("the journal cannot be written")

// StoppedError is a run that stopped safely on its own: hosts in flight
// finished their step and were put back, no new host started. Exit 1.
type StoppedError struct{ Cause error }

func (e *StoppedError) Error() string { return e.Cause.Error() }

// Unwrap returns ErrLost, ErrRunFailed and the cause.
func (e *StoppedError) Unwrap() []error { return []error{ErrLost, ErrRunFailed, e.Cause} }

// Refusal is a refusal before any host was touched (exit 2). Problem says
// what is wrong, Next the command to run next.
type Refusal struct {
	Problem string
	Next    string
	// More are other commands that resolve it, each a next: line of its
	// own after Next (run_done's next is Next alone)
	More []string
}

func (r *Refusal) Error() string {
	if r.Next == "" {
		return r.Problem
	}
	s := r.Problem + "\n  next: " + r.Next
	for _, m := range r.More {
		s += "\n  next: " + m
	}
	return s
}

func refuse(next, format string, args ...any) *Refusal {
	return &Refusal{Problem: fmt.Sprintf(format, args...), Next: next}
}

// DiagError carries HCL diagnostics to the CLI edge, with the sources needed
// to print snippets (keyed by the diagnostics' file names).
type DiagError struct {
	Diags   hcl.Diagnostics
	Sources map[string][]byte
}

func (e *DiagError) Error() string {
	var b strings.Builder
	for i, d := range e.Diags.Errs() {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// ErrRefused is a refusal (exit 2) that was already told in full, or a
// command line that cannot be run (a bad flag, an unknown command).
var ErrRefused = errors.New("refused")

// ErrChanges ends plan --detailed-exitcode with changes pending (exit 4).
var ErrChanges = errors.New("changes pending")

// ErrAttention ends status --detailed-exitcode when a host needs a person
// (exit 4): left drained, a stale lock, drift, unreachable.
var ErrAttention = errors.New("a host needs attention")

// Exit is how a command ended: the process's exit code and the status its
// run_done event says.
type Exit struct {
	Code   int
	Status string
}

// exitTable is the one map from how a command ended to its exit code
// (SPEC.md, README "Exit codes", docs/ci.md): the first row whose test
// matches wins.
var exitTable = []struct {
	is   func(error) bool
	exit Exit
}{
	{func(err error) bool { return err == nil }, Exit{ExitOK, "ok"}},
	{func(err error) bool { return errors.Is(err, ErrInterrupted) }, Exit{ExitInterrupted, "interrupted"}},
	{isRefusal, Exit{ExitRefused, "refused"}},
	{func(err error) bool { return errors.Is(err, ErrChanges) }, Exit{ExitChanges, "changes"}},
	{func(err error) bool { return errors.Is(err, ErrAttention) }, Exit{ExitChanges, "attention"}},
	// ErrRunFailed, a StoppedError, and anything else that went wrong
	{func(error) bool { return true }, Exit{ExitFailed, "failed"}},
}

func isRefusal(err error) bool {
	var r *Refusal
	var d *DiagError
	return errors.As(err, &r) || errors.As(err, &d) || errors.Is(err, ErrRefused)
}

// ExitOf is how a command that returned err ended.
func ExitOf(err error) Exit {
	for _, row := range exitTable {
		if row.is(err) {
			return row.exit
		}
	}
	return Exit{ExitFailed, "failed"}
}

// ExitCode maps an error to the process exit code (the exit table).
func ExitCode(err error) int { return ExitOf(err).Code }

// connectHint is the next step when hosts cannot be reached: the ssh line
// that shows why (as rollout connects: address, port, user, key), and the
// same run without them (the run's --limit narrowed to leave them out).
func connectHint(hosts []*inventory.Host, pr *Prepared, kind string) string {
	if len(hosts) == 0 {
		return fmt.Sprintf("rollout %s %s -v  # shows which host failed", kind, pr.Req.PlanFile)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	ssh := SSHCommand(hosts[0])
	limit, ok := limitWithout(pr, hosts)
	if !ok {
		return fmt.Sprintf("%s  # shows why; once they answer: rollout %s %s", ssh, kind, pr.Req.PlanFile)
	}
	return fmt.Sprintf("%s  # shows why; or go on without them: rollout %s %s --limit %s",
		ssh, kind, pr.Req.PlanFile, shellQuote(limit))
}

// limitWithout is the run's --limit narrowed to leave out hosts: a limit
// that lists hosts by name loses their names (web1:web2 without web2 is
// web1, not web1:web2:!web2); any other limit gets an exclusion per host
// (Ansible's grammar applies exclusions last, so web:&prod:!web5 is the
// limit's hosts but web5). ok is false when no host of the run is left.
func limitWithout(pr *Prepared, out []*inventory.Host) (limit string, ok bool) {
	gone := map[string]bool{}
	for _, h := range out {
		gone[h.Name] = true
	}
	left := 0
	for _, t := range pr.Targets {
		if !gone[t.Host.Name] {
			left++
		}
	}
	if left == 0 {
		return "", false
	}
	limit = strings.TrimSpace(pr.Req.Limit)
	if names, byName := limitHostNames(pr.Inventory, limit); byName {
		var keep []string
		for _, n := range names {
			if !gone[n] {
				keep = append(keep, n)
			}
		}
		return strings.Join(keep, ":"), true
	}
	if limit == "" {
		limit = "all"
	}
	have := map[string]bool{}
	for _, term := range strings.FieldsFunc(limit, func(r rune) bool { return r == ':' || r == ',' }) {
		have[term] = true
	}
	for _, h := range out {
		if !have["!"+h.Name] {
			limit += ":!" + h.Name
		}
	}
	return limit, true
}

// limitHostNames splits a limit that is only a union of host names (web1:web2,
// web1,web2) into them; byName is false for anything else (groups, globs,
// regular expressions, subscripts, & and !).
func limitHostNames(inv *inventory.Inventory, limit string) (names []string, byName bool) {
	if limit == "" || inv == nil || strings.ContainsAny(limit, "~[]*?&!") {
		return nil, false
	}
	for _, term := range strings.FieldsFunc(limit, func(r rune) bool { return r == ':' || r == ',' }) {
		if inv.Host(term) == nil {
			return nil, false
		}
		names = append(names, term)
	}
	return names, len(names) > 0
}

// SSHCommand is the OpenSSH command line that connects to h the way
// rollout does (address, port, user, key) and shows why it fails.
func SSHCommand(h *inventory.Host) string {
	ssh := "ssh -v"
	if h.Port != 0 && h.Port != 22 {
		ssh += fmt.Sprintf(" -p %d", h.Port)
	}
	if h.KeyFile != "" {
		ssh += " -i " + shellQuote(h.KeyFile)
	}
	target := h.Address
	if h.User != "" {
		target = h.User + "@" + target
	}
	return ssh + " " + shellQuote(target) + " true"
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
