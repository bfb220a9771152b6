package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/notify"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/ui"
)

type applyOptions struct {
	*GlobalOptions
	Kind     string // apply | rollback
	PlanFile string
	Scope    ScopeOptions
	To       string // rollback --to
	Adopt    bool
	LockTTL  time.Duration
	// AutoApprove passes approve_after gates without a person; --yes
	// answers the start prompt only.
	AutoApprove bool
	// RerunHooks runs before_run hooks that an earlier run of the same
	// revision ran to success
	RerunHooks bool
	// Retry: apply a revision a rollback took the hosts back from
	Retry bool
	// Reason: why a rollback is run (rollback --reason)
	Reason string
}

func newApplyCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	cmd, o := newRunCmd(ios, g, "apply")
	cmd.Use = "apply [PLAN | SAVED] [scope]"
	o.Scope.bind(cmd, "deploy this revision instead of the plan's pin (a full SHA or a tag)")
	cmd.Flags().BoolVar(&o.Adopt, "adopt", false, "overwrite hosts whose live files were edited by hand (drift)")
	cmd.Flags().BoolVar(&o.Retry, "retry", false, "deploy a revision that a rollback took the hosts back from (refused without it)")
	return cmd
}

// newRunCmd is what apply and rollback share: a run of the plan's hosts
// through the pipeline (applyRun), and its flags.
func newRunCmd(ios *IOStreams, g *GlobalOptions, kind string) (*cobra.Command, *applyOptions) {
	o := &applyOptions{GlobalOptions: g, Kind: kind}
	cmd := &cobra.Command{
		Use:   kind + " [PLAN] [scope]",
		Short: "Roll the plan's pinned revision across its hosts, batch by batch",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return applyRun(cmd.Context(), ios, o)
		},
	}
	cmd.Flags().DurationVar(&o.LockTTL, "lock-ttl", journal.DefaultLockTTL, "how long the plan's locks outlive a run that died (they are renewed while it lives; on etcd, the lease TTL)")
	cmd.Flags().BoolVar(&o.RerunHooks, "rerun-hooks", false, "run the plan's before_run hooks even when an earlier run of this revision ran them to success (a resumed run skips them)")
	cmd.Flags().BoolVar(&o.AutoApprove, "auto-approve", false, "pass the plan's approve_after gates without a person (recorded in the output and the journal); --yes does not")
	return cmd, o
}

func newRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "r-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// operator is who a run is for: --operator, else ROLLOUT_OPERATOR, else
// the CI's variables, else user@host (rollout.ResolveOperator).
func (g *GlobalOptions) operator() rollout.Operator {
	return rollout.ResolveOperator(g.Operator, os.Getenv, owner())
}

// owner is user@host: who holds a run's locks (journal.OwnerDead reads
// the host back).
func owner() string {
	u := "unknown"
	if cu, err := user.Current(); err == nil {
		u = cu.Username
	}
	h, _ := os.Hostname()
	return u + "@" + h
}

// uiMode resolves --ui: auto is the TUI on a terminal, plain otherwise; the
// TUI without a terminal is refused before anything is touched (it would
// run blind).
func uiMode(ios *IOStreams, ui, again string) (string, error) {
	switch ui {
	case "auto":
		if ios.OutTTY && ios.InTTY {
			return "tui", nil
		}
		return "plain", nil
	case "tui":
		if !ios.OutTTY || !ios.InTTY {
			return "", &rollout.Refusal{Problem: "--ui tui needs a terminal on stdin and stdout; nothing was touched",
				Next: again + " --ui plain"}
		}
	}
	return ui, nil
}

// again is this command line as a user would retype it, without --ui.
func (o *applyOptions) again() string {
	s := "rollout " + o.Kind + " " + shellWord(o.PlanFile)
	if o.Scope.Limit != "" {
		s += " --limit " + shellWord(o.Scope.Limit)
	}
	if o.Scope.MaxInFlight != "" {
		s += " --max-in-flight " + shellWord(o.Scope.MaxInFlight)
	}
	if o.Scope.Batch != "" {
		s += " --batch " + shellWord(o.Scope.Batch)
	}
	if o.Scope.Revision != "" {
		s += " --revision " + shellWord(o.Scope.Revision)
	}
	if o.To != "" {
		s += " --to " + shellWord(o.To)
	}
	if o.Adopt {
		s += " --adopt"
	}
	if o.Yes {
		s += " --yes"
	}
	if o.AutoApprove {
		s += " --auto-approve"
	}
	if o.Retry {
		s += " --retry"
	}
	if o.Reason != "" {
		s += " --reason " + shellWord(o.Reason)
	}
	return s
}

func applyRun(ctx context.Context, ios *IOStreams, o *applyOptions) error {
	mode, err := uiMode(ios, o.UI, o.again())
	if err != nil {
		return err
	}
	req := rollout.Request{PlanFile: o.PlanFile, Limit: o.Scope.Limit, Batch: o.Scope.Batch, MaxInFlight: o.Scope.MaxInFlight, Revision: o.Scope.Revision}
	if o.Kind == "rollback" {
		to, err := rollbackTarget(ctx, ios, o)
		if err != nil {
			return err
		}
		req.Revision, req.Rollback = to, true
	}
	var pr *rollout.Prepared
	var expect map[string]rollout.SavedHost
	saved, isSaved, err := rollout.LoadSaved(o.PlanFile)
	person := mode == "tui" || (mode == "plain" && ios.CanPrompt()) // someone can approve a gate
	switch {
	case err != nil:
		return err
	case isSaved && o.Kind != "apply":
		return &rollout.Refusal{Problem: o.PlanFile + " is a saved plan; only apply takes one", Next: "rollout " + o.Kind + " PLAN.hcl"}
	case isSaved && (o.Scope != ScopeOptions{} || o.Adopt):
		return &rollout.Refusal{Problem: "a saved plan carries its own scope and revision; --limit, --batch, --revision and --adopt cannot change it",
			Next: "rollout apply " + o.PlanFile + ", or save a new plan: rollout plan --out FILE [scope]"}
	case isSaved:
		pr, err = rollout.PrepareSaved(saved)
		expect = saved.Expect()
		o.PlanFile = saved.PlanFile
	default:
		pr, err = rollout.Prepare(req)
	}
	var refusal *rollout.Refusal
	if errors.As(err, &refusal) {
		// a refusal that says to run this again (with a narrower --limit)
		// keeps the user's own command line: --yes, --to, --ui
		refusal.Next = withRerun(refusal.Next, "rollout "+o.Kind+" "+shellWord(o.PlanFile), o.again())
	}
	if err != nil {
		return err
	}
	for _, w := range pr.Warnings {
		fmt.Fprintln(ios.Err, "warning: "+w)
	}
	if err := pr.CheckSafety(o.Kind); err != nil {
		return err
	}
	notes, err := newNotifier(pr.Plan, o.again())
	if err != nil {
		return err
	}
	defer notes.Close()
	if !o.Yes && !isSaved { // a saved plan was reviewed when it was made
		if !ios.CanPrompt() {
			problem := fmt.Sprintf("%s needs a confirmation, but stdin is not a terminal", o.Kind)
			next := fmt.Sprintf("rollout plan %s  # review; then: rollout %s %s --yes", o.PlanFile, o.Kind, o.PlanFile)
			if len(pr.Plan.ApproveAfter) > 0 && !o.AutoApprove {
				problem += fmt.Sprintf("; plan %q also asks a person to approve after batch(es) %v, and no one can answer here", pr.Plan.Name, pr.Plan.ApproveAfter)
				next += " --auto-approve (--yes answers the start prompt only; --auto-approve passes the gates and is recorded in the journal)"
			}
			return &rollout.Refusal{Problem: problem, Next: next}
		}
	}
	w, err := wire.New(pr.Inventory, wireOptions(o.GlobalOptions, pr.Plan))
	if err != nil {
		return err
	}
	defer w.Close()
	if !o.Yes && !isSaved {
		// the prompt shows what will happen: a read-only look at the hosts
		var hosts []*inventory.Host
		for _, t := range pr.Targets {
			hosts = append(hosts, t.Host)
		}
		views := rollout.Inspect(ctx, pr.Plan, hosts, w.Env(nil), o.forks(pr.Forks), false, nil)
		if o.Kind == "apply" && !o.Retry {
			// refused before anyone is asked (the run refuses it too)
			states := map[string]*journal.HostState{}
			var order []string
			for _, v := range views {
				if v.Err == nil {
					states[v.Name], order = v.State, append(order, v.Name)
				}
			}
			if err := rollout.RolledBackRefusal(shellWord(o.PlanFile), pr.Revision, order, states); err != nil {
				var r *rollout.Refusal
				if errors.As(err, &r) {
					r.Next = withRerun(r.Next, "rollout apply "+shellWord(o.PlanFile), o.again())
				}
				return err
			}
		}
		text, question := describeRun(pr, views, o.Kind)
		fmt.Fprint(ios.Err, text)
		if !confirm(ios, question) {
			fmt.Fprintln(ios.Err, "nothing was touched")
			return exitError{rollout.ErrRefused}
		}
	}

	store, err := openStore(ctx, o.GlobalOptions, o.PlanFile, pr.Plan)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			fmt.Fprintf(ios.Err, "warning: %v\n", err)
		}
	}()
	for _, w := range store.Warnings() {
		fmt.Fprintln(ios.Err, "warning: "+w)
	}

	ctl := rollout.NewControl()
	ios.setInterrupt(interruptNotice(ios, ctl, mode))
	defer ios.setInterrupt(nil)

	var view event.Sink
	var tui *ui.TUI
	switch mode {
	case "json":
		view = ui.NewJSON(ios.Out)
	case "tui":
		tui = ui.NewTUI(ctl, ui.TUIOptions{Input: ios.In, Output: ios.Out, AltScreen: false})
		view = tui
	case "plain":
		view = ui.NewPlain(ios.Out, ui.PlainOptions{Color: ios.Color(), Verbose: o.Verbose})
	default:
		return &rollout.Refusal{Problem: fmt.Sprintf("--ui %q: want auto, tui, plain or json", o.UI), Next: "rollout " + o.Kind + " --ui plain"}
	}
	sinks := multiSink{view, notes}
	if mode == "plain" && ios.CanPrompt() && !o.AutoApprove {
		sinks = append(sinks, &approvalPrompter{ios: ios, ctl: ctl})
	}
	hints := hintSink{flags: o.hintFlags(), rerun: [2]string{"rollout " + o.Kind + " " + o.PlanFile, o.again()}, next: sinks}
	env := w.Env(hints)
	env.Notifier = notes
	opts := rollout.Options{Kind: o.Kind, RunID: newRunID(time.Now()), Owner: owner(), Operator: o.operator(), Backend: store,
		Adopt: o.Adopt, AutoApprove: o.AutoApprove, Unattended: !person, Forks: o.forks(pr.Forks), Expect: expect, LockTTL: o.LockTTL,
		RerunHooks: o.RerunHooks, Retry: o.Retry, Reason: o.Reason}
	if saved != nil {
		opts.ExpectJournal = func(ctx context.Context) error { return checkSavedAgainstJournal(ctx, store, saved) }
	}

	var res *rollout.Result
	var runErr error
	if tui != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, runErr = rollout.Run(ctx, pr, env, opts, ctl)
		}()
		if err := tui.Run(); err != nil {
			fmt.Fprintf(ios.Err, "tui: %v\n", err)
		}
		<-done
	} else {
		res, runErr = rollout.Run(ctx, pr, env, opts, ctl)
	}
	if mode == "json" {
		ios.jsonDone = true // Run always ends its stream with run_done
	}
	// run_done's own notification: the journal has its end already
	for _, msg := range notes.Close() {
		fmt.Fprintln(ios.Err, "warning: "+msg)
	}
	if runErr != nil {
		code := rollout.ExitCode(runErr)
		switch {
		case code == rollout.ExitRefused:
			// a refusal is printed once, on stderr (the views leave it out)
			printErrorWith(ios, runErr, hints.hint)
		case mode == "tui" && res != nil:
			// the TUI is gone from the screen: say where things are
			fmt.Fprintf(ios.Err, "%s\nnext: %s\n", hints.hint(res.Summary), hints.hint(res.Next))
		}
		return exitError{runErr}
	}
	return nil
}

// newNotifier starts the plan's notify blocks. A header or url naming an
// environment variable that is not set refuses the run, before anything
// is touched.
func newNotifier(p *plan.Plan, again string) (*notify.Notifier, error) {
	n, err := notify.New(p.Name, p.Notify, notify.Options{Lookup: os.LookupEnv})
	var unset *plan.UnsetEnvError
	switch {
	case errors.As(err, &unset):
		return nil, &rollout.Refusal{Problem: err.Error() + "; nothing was touched",
			Next: fmt.Sprintf("%s  # with %s set in the environment (the plan's notify block reads it)", again, unset.Var)}
	case err != nil:
		return nil, &rollout.Refusal{Problem: err.Error() + "; nothing was touched", Next: "rollout validate " + shellWord(p.Filename)}
	}
	return n, nil
}

// wireOptions are the connection settings of this invocation: the flags,
// else the plan's ssh_keepalive and ssh_keepalive_count (p may be nil).
func wireOptions(g *GlobalOptions, p *plan.Plan) wire.Options {
	o := wire.Options{KnownHosts: g.KnownHosts, AcceptNewHostKeys: g.AcceptNewHostKeys, SSHConfig: g.SSHConfig,
		KeepaliveInterval: g.SSHKeepalive, KeepaliveCountMax: g.SSHKeepaliveCount}
	if p != nil && o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = p.SSHKeepalive
	}
	if p != nil && o.KeepaliveCountMax == 0 {
		o.KeepaliveCountMax = p.SSHKeepaliveCount
	}
	return o
}

type multiSink []event.Sink

func (m multiSink) Emit(e event.Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

// approvalPrompter asks on a plain terminal when the run waits for approval.
type approvalPrompter struct {
	ios *IOStreams
	ctl *rollout.Control
	mu  sync.Mutex
}

func (a *approvalPrompter) Emit(e event.Event) {
	if e.WaitReason() != event.WaitApproval {
		return
	}
	go func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if confirm(a.ios, fmt.Sprintf("approve batch %d? [y/N] ", e.Batch)) {
			a.ctl.Approve()
		} else {
			a.ctl.Abort()
		}
	}()
}

func confirm(ios *IOStreams, prompt string) bool {
	fmt.Fprint(ios.Err, prompt)
	line, _ := bufio.NewReader(ios.In).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}

// describeRun says what a run would do, from a read-only look at its hosts
// (views, in target order): the hosts it changes in their real batches, the
// hosts it skips (already at the revision), and those it could not read. It
// returns the description and the confirmation question.
func describeRun(pr *rollout.Prepared, views []rollout.HostView, kind string) (text, question string) {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %q: %s\n", pr.Plan.Name, pr.Repo.Describe(pr.Revision))
	batches, skip, unknown := rollout.RunBatches(pr, views)
	writeRunBatches(&b, "  ", pr, batches, skip, unknown)
	todo := 0
	for _, batch := range batches {
		todo += len(batch)
	}
	fmt.Fprintf(&b, "  on_failure = %s, max_failures allows %d\n", pr.Plan.OnFailure, pr.Plan.FailureLimit(todo))
	q := fmt.Sprintf("%s %s to %d host(s)", kind, plan.ShortRev(pr.Revision), todo)
	if len(skip) > 0 {
		q += fmt.Sprintf(" (%d skipped)", len(skip))
	}
	return b.String(), q + "? [y/N] "
}

// writeRunBatches writes the batches a run makes and the hosts it skips
// (rollout.RunBatches), as the apply prompt and plan show them.
func writeRunBatches(w io.Writer, indent string, pr *rollout.Prepared, batches [][]string, skip, unknown []string) {
	for i, batch := range batches {
		// at fleet size: the first batches and the last, the middle counted
		if len(batches) > 8 && i == 4 {
			n := 0
			for _, b := range batches[4 : len(batches)-2] {
				n += len(b)
			}
			fmt.Fprintf(w, "%sbatches %d-%d: %s hosts\n", indent, 5, len(batches)-2, groupCount(n))
		}
		if len(batches) > 8 && i >= 4 && i < len(batches)-2 {
			continue
		}
		in := indent
		if len(batch) > 0 {
			if wv := pr.WaveOf(batch[0]); wv != "" {
				if i == 0 || pr.WaveOf(batches[i-1][0]) != wv {
					fmt.Fprintf(w, "%swave %s%s:\n", indent, wv, waveGates(pr, wv))
				}
				in += "  "
			}
		}
		window := ""
		if pr.Window.Set && i > 0 {
			window = fmt.Sprintf(" (a rolling window: at most %d out at a time, the next starting as one finishes)", max(1, pr.Window.Of(hostsIn(batches))))
		}
		fmt.Fprintf(w, "%sbatch %d%s: %s\n", in, i+1, window, nameList(batch))
	}
	if len(skip) > 0 {
		fmt.Fprintf(w, "%sskipped, already at %s: %s\n", indent, plan.ShortRev(pr.Revision), nameList(skip))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(w, "%scould not be read now (the run will connect again): %s\n", indent, nameList(unknown))
	}
}

// waveGates says what stands before a wave: " (approve first, pause 5m)".
func waveGates(pr *rollout.Prepared, name string) string {
	for _, w := range pr.Plan.Waves {
		if w.Name != name {
			continue
		}
		var g []string
		if w.Approve {
			g = append(g, "a person approves first")
		}
		if w.Pause > 0 {
			g = append(g, "after a pause of "+w.Pause.String())
		}
		if len(g) > 0 {
			return " (" + strings.Join(g, ", ") + ")"
		}
	}
	return ""
}

func hostsIn(batches [][]string) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

// nameList is names joined with commas, or, for more than 12, the first
// ten and how many more: a batch line stays a line at 10,000 hosts.
func nameList(names []string) string {
	if len(names) <= 12 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s hosts: %s, … and %s more", groupCount(len(names)), strings.Join(names[:10], ", "), groupCount(len(names)-10))
}

// groupCount is n with thousands separators: 9,996.
func groupCount(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// interruptNotice is what Ctrl-C does during a run: the run stops safely
// (ctl.Interrupt), and outside the TUI (which shows its own notice) the
// person who pressed it is told at once, on stderr, what happens now —
// not only when the batch in flight ends.
func interruptNotice(ios *IOStreams, ctl *rollout.Control, mode string) func() {
	n := 0 // the signal goroutine is the only caller
	return func() {
		n++
		if mode != "tui" {
			if n == 1 {
				fmt.Fprintln(ios.Err, "stopping safely: the hosts in flight finish (or go back untouched), no new host starts… (Ctrl-C again to stop now)")
			} else {
				fmt.Fprintln(ios.Err, "stopping now: hosts in flight are left where they are; the summary names them and the command that puts them back")
			}
		}
		ctl.Interrupt()
	}
}
