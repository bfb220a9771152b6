package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/rollout"
)

// Version and Commit are set at build time with -ldflags.
var (
	Version = "dev"
	Commit  = "unknown"
)

// IOStreams decides TTY, colour and whether prompting is allowed.
type IOStreams struct {
	In       io.Reader
	Out, Err io.Writer
	InTTY    bool
	OutTTY   bool
	NoColor  bool
	mu       sync.Mutex
	onSignal func()    // set while a run is live: Ctrl-C goes to the run
	jsonDone bool      // a run_done was written to stdout (--ui json)
	jsonOut  io.Writer // stdout, when --ui json (Out may point to stderr then)
}

// proseOnly are the commands whose report is prose: with --ui json it goes
// to stderr and stdout gets their run_done.
var proseOnly = map[string]bool{"repair": true, "unlock": true}

// jsonCommands end their --ui json output with a run_done line.
var jsonCommands = map[string]bool{"validate": true, "hosts": true, "plan": true, "apply": true, "rollback": true,
	"status": true, "history": true, "repair": true, "unlock": true}

// setInterrupt routes Ctrl-C to f while a run is live (nil: back to cancel).
func (s *IOStreams) setInterrupt(f func()) { s.mu.Lock(); s.onSignal = f; s.mu.Unlock() }

func (s *IOStreams) interrupt() func() { s.mu.Lock(); defer s.mu.Unlock(); return s.onSignal }

// SystemIO returns the process's streams.
func SystemIO() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY:   term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		NoColor: os.Getenv("NO_COLOR") != "",
	}
}

// CanPrompt reports whether a person can answer a prompt.
func (s *IOStreams) CanPrompt() bool { return s.InTTY && s.OutTTY }

// Color reports whether to colour stdout.
func (s *IOStreams) Color() bool { return s.OutTTY && !s.NoColor }

// GlobalOptions are the flags every command has.
type GlobalOptions struct {
	UI                string
	Yes               bool
	StateDir          string
	Verbose           bool
	KnownHosts        string
	AcceptNewHostKeys bool
	SSHConfig         string
	Forks             int
	SSHKeepalive      time.Duration // 0: the plan's ssh_keepalive, else remote's default
	SSHKeepaliveCount int           // 0: the plan's ssh_keepalive_count, else remote's default
	Operator          string        // --operator: who the run is for (GlobalOptions.operator)
}

// ScopeOptions are --limit, --batch and --revision.
type ScopeOptions struct {
	Limit       string
	Batch       string
	MaxInFlight string
	Revision    string
}

func (s *ScopeOptions) bind(cmd *cobra.Command, revisionHelp string) {
	cmd.Flags().StringVarP(&s.Limit, "limit", "l", "", "narrow the plan's hosts with an Ansible host pattern (e.g. 'web:!web3')")
	cmd.Flags().StringVar(&s.Batch, "batch", "", "batch sizes like Ansible serial, overriding the plan (e.g. 1,25%)")
	cmd.Flags().StringVar(&s.MaxInFlight, "max-in-flight", "", "a rolling window instead of batches, overriding the plan: after a canary, the next host starts as soon as one finishes, at most this many out (e.g. 2, 10%)")
	if revisionHelp != "" {
		cmd.Flags().StringVar(&s.Revision, "revision", "", revisionHelp)
	}
}

// exitError ends a command whose outcome is already on the screen: nothing
// more is printed, and its exit code is err's (rollout.ExitOf: ErrRefused,
// ErrChanges, ErrAttention, errReported or the run's own error).
type exitError struct{ err error }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", rollout.ExitCode(e.err)) }
func (e exitError) Unwrap() error { return e.err }

// errReported is a command that failed and has said why (exit 1).
var errReported = errors.New("failed")

// usageError is a command line cobra could not run (unknown command, wrong
// number of arguments): a refusal.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{e.err, rollout.ErrRefused} }

func isUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") || strings.Contains(s, "arg(s)")
}

// newRoot builds the command tree.
func newRoot(ctx context.Context, ios *IOStreams) *cobra.Command {
	root, _ := newRootWith(ctx, ios)
	return root
}

// newRootWith builds the command tree and returns the global options its
// flags are bound to.
func newRootWith(ctx context.Context, ios *IOStreams) (*cobra.Command, *GlobalOptions) {
	g := &GlobalOptions{}
	root := &cobra.Command{
		Use:   "rollout",
		Short: "Rolling upgrades behind load balancers, safe by construction",
		Long: `rollout rolls a pinned git revision of your config across a fleet, one batch at a
time: drain from every load balancer, wait for zero sessions, stage and validate,
restart, hold a stable health window, ramp traffic back, next.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.Err)
	root.SetContext(ctx)
	pf := root.PersistentFlags()
	pf.StringVar(&g.UI, "ui", "auto", "output: auto (TUI on a terminal, plain otherwise), tui, plain or json")
	pf.BoolVarP(&g.Yes, "yes", "y", false, "answer yes to prompts (required when stdin is not a terminal)")
	pf.StringVar(&g.StateDir, "state-dir", "", "local state dir for the journal and lock (default: .rollout beside the plan)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "every event, and what the restart, check and validators printed on each host")
	pf.BoolVar(&g.Verbose, "debug", false, "same as -v")
	pf.StringVar(&g.KnownHosts, "known-hosts", "", "known_hosts file (default ~/.ssh/known_hosts)")
	pf.BoolVar(&g.AcceptNewHostKeys, "accept-new-host-keys", false, "record unknown host keys (like StrictHostKeyChecking=accept-new); changed keys are still refused")
	pf.StringVar(&g.SSHConfig, "ssh-config", "", "ssh_config file (default ~/.ssh/config)")
	pf.DurationVar(&g.SSHKeepalive, "ssh-keepalive", 0, fmt.Sprintf("send an SSH keepalive this often on every host connection (overrides the plan's ssh_keepalive; default %s)", wire.DefaultKeepaliveInterval))
	pf.IntVar(&g.SSHKeepaliveCount, "ssh-keepalive-count", 0, fmt.Sprintf("unanswered keepalives in a row before a connection counts as lost (overrides the plan's ssh_keepalive_count; default %d)", wire.DefaultKeepaliveCountMax))
	pf.StringVar(&g.Operator, "operator", "", "who the run is for, recorded in the journal, the events and each host's current.json (default: $ROLLOUT_OPERATOR, else the CI's actor: $GITHUB_ACTOR, $GITLAB_USER_LOGIN; else user@host)")
	pf.IntVar(&g.Forks, "forks", 0, fmt.Sprintf("hosts worked on at once outside batches: connect, lock, inspect, preflight, repair, unlock (default: forks from ansible.cfg, else %d)", rollout.DefaultForks))
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		switch g.UI {
		case "json":
			ios.jsonOut = ios.Out
			if proseOnly[c.Name()] {
				ios.Out = ios.Err // stdout carries only JSON; their report is for people
			}
			return nil
		case "auto", "tui", "plain":
			return nil
		}
		return &rollout.Refusal{Problem: fmt.Sprintf("--ui %q: want auto, tui, plain or json", g.UI), Next: "rollout " + c.Name() + " --ui plain"}
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return flagError{err: didYouMean(c, err), usage: c.UsageString()}
	})

	root.AddCommand(
		newVersionCmd(ios),
		newValidateCmd(ios, g),
		newHostsCmd(ios, g),
		newPlanCmd(ios, g),
		newApplyCmd(ios, g),
		newRollbackCmd(ios, g),
		newStatusCmd(ios, g),
		newHistoryCmd(ios, g),
		newRepairCmd(ios, g),
		newUnlockCmd(ios, g),
		newBackendCmd(ios, g),
	)
	extendRoot(root, ios, g)
	applyHelp(root)
	return root, g
}

type flagError struct {
	err   error
	usage string
}

func (f flagError) Error() string { return f.err.Error() }

// Unwrap makes a bad flag a refusal (exit 2).
func (f flagError) Unwrap() []error { return []error{f.err, rollout.ErrRefused} }

// run executes the CLI and returns the exit code: the one place errors
// become exit codes.
func run(ctx context.Context, args []string, ios *IOStreams) int {
	root, g := newRootWith(ctx, ios)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	name := ""
	if c, _, ferr := root.Find(args); ferr == nil {
		name = c.Name()
	}
	if err == nil {
		if g.UI == "json" && !ios.jsonDone && jsonCommands[name] {
			writeJSONDone(ios, name, nil, 0, nil)
		}
		return 0
	}
	var fe flagError
	var ee exitError
	if !errors.As(err, &fe) && !errors.As(err, &ee) && isUsage(err) {
		err = usageError{err}
	}
	code := rollout.ExitCode(err) // the exit table: the one map
	var ue usageError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(ios.Err, "error: %v\n\n%s", fe.err, fe.usage)
	case errors.As(err, &ee):
		// already on the screen
	case errors.As(err, &ue):
		fmt.Fprintf(ios.Err, "error: %v\nrun: rollout --help\n", ue.err)
	default:
		printError(ios, err, g.hintFlags())
	}
	if g.UI == "json" && !ios.jsonDone {
		// JSON everywhere: stdout's last line says how the command ended
		writeJSONDone(ios, name, err, code, g.hintFlags())
	}
	return code
}

// printError renders an error for a tired operator: diagnostics with
// file:line:col and a snippet; refusals with the next command (with the
// flags of this invocation that it needs).
func printError(ios *IOStreams, err error, flags []string) {
	printErrorWith(ios, err, func(hint string) string { return withFlags(hint, flags) })
}

// printErrorWith is printError with the commands of a hint rewritten by
// fix (the flags of this invocation, the user's own command line).
func printErrorWith(ios *IOStreams, err error, fix func(hint string) string) {
	var de *rollout.DiagError
	if errors.As(err, &de) {
		files := map[string]*hcl.File{}
		for name, src := range de.Sources {
			files[name] = &hcl.File{Bytes: src}
		}
		w := hcl.NewDiagnosticTextWriter(ios.Err, files, 100, false)
		de = &rollout.DiagError{Diags: groupPerHost(de.Diags), Sources: de.Sources}
		for _, d := range de.Diags {
			if d.Subject != nil { // file:line:col first, so editors and people can jump to it
				fmt.Fprintf(ios.Err, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
			}
			_ = w.WriteDiagnostic(d)
		}
		n := len(de.Diags.Errs())
		next := diagNext(de)
		fmt.Fprintf(ios.Err, "%d problem(s); nothing was touched\n  next: %s  # once they are fixed\n", n, fix(next))
		return
	}
	var r *rollout.Refusal
	if errors.As(err, &r) {
		fmt.Fprintf(ios.Err, "%s\n", r.Problem)
		if r.Next != "" {
			fmt.Fprintf(ios.Err, "  next: %s\n", fix(r.Next))
		}
		for _, m := range r.More {
			fmt.Fprintf(ios.Err, "  next: %s\n", fix(m))
		}
		return
	}
	fmt.Fprintf(ios.Err, "error: %v\n", err)
}

// diagNext is the command that checks a plan again once its diagnostics
// are fixed.
func diagNext(de *rollout.DiagError) string {
	next := "rollout validate"
	for name := range de.Sources {
		if !strings.Contains(name, "@") && name != "rollout.hcl" { // the plan file; "@" marks a template at a revision
			next += " " + shellWord(name)
		}
	}
	return next
}

var perHost = regexp.MustCompile(`^While rendering for host "([^"]+)": `)

// groupPerHost folds diagnostics that differ only in the host they were
// found for (a template error, rendered once per host) into one naming the
// hosts: 200 hosts give one problem, not 200.
func groupPerHost(diags hcl.Diagnostics) hcl.Diagnostics {
	type group struct {
		d     *hcl.Diagnostic
		hosts []string
	}
	var out hcl.Diagnostics
	groups := map[string]*group{}
	for _, d := range diags {
		m := perHost.FindStringSubmatch(d.Detail)
		if m == nil || d.Subject == nil {
			out = append(out, d)
			continue
		}
		key := fmt.Sprintf("%d|%s|%s|%s", d.Severity, d.Summary, d.Subject.String(), d.Detail[len(m[0]):])
		if g, ok := groups[key]; ok {
			g.hosts = append(g.hosts, m[1])
			continue
		}
		c := *d
		groups[key] = &group{d: &c, hosts: []string{m[1]}}
		out = append(out, &c)
	}
	for _, g := range groups {
		if len(g.hosts) > 1 {
			rest := g.d.Detail[len(perHost.FindString(g.d.Detail)):]
			others := g.hosts[1:]
			if len(others) > 8 {
				others = append(append([]string{}, others[:8]...), fmt.Sprintf("and %d more", len(g.hosts)-9))
			}
			g.d.Detail = fmt.Sprintf("While rendering for host %q and %d more (%s): %s", g.hosts[0], len(g.hosts)-1, strings.Join(others, ", "), rest)
		}
	}
	return out
}

// planCommand is a command on one plan: [PLAN] (default rollout.hcl) is
// stored in planFile before run is called.
func planCommand(use, short string, planFile *string, run func(context.Context) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			*planFile = planArg(args)
			return run(cmd.Context())
		},
	}
}

// planArg returns the plan file argument (default rollout.hcl).
func planArg(args []string) string {
	if len(args) > 0 && args[0] != "" {
		return args[0]
	}
	return "rollout.hcl"
}

// localDir is the local state dir: --state-dir, else .rollout beside the plan.
func localDir(g *GlobalOptions, planFile string) string {
	if g.StateDir != "" {
		return g.StateDir
	}
	return filepath.Join(filepath.Dir(planFile), ".rollout")
}

func journalPath(g *GlobalOptions, planFile string) string {
	return filepath.Join(localDir(g, planFile), "journal.jsonl")
}

// forks is --forks, else ansible.cfg's forks, else rollout.DefaultForks.
func (g *GlobalOptions) forks(fromConfig int) int {
	if g.Forks <= 0 && fromConfig > 0 {
		return fromConfig
	}
	return forks(g)
}
