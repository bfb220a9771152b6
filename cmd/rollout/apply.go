package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
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
}

func newApplyCmd(ios *IOStreams, g *GlobalOptions, kind string) *cobra.Command {
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
	if kind == "rollback" {
		cmd.Short = "Deploy an earlier revision through the same safe pipeline (never a revert commit)"
		cmd.Flags().StringVar(&o.To, "to", "", "the revision to go back to: a full SHA or a tag (default: the last revision that completed on every targeted host before the current one)")
		o.Scope.bind(cmd, "")
	} else {
		cmd.Use = "apply [PLAN | SAVED] [scope]"
		o.Scope.bind(cmd, "deploy this revision instead of the plan's pin (a full SHA or a tag)")
		cmd.Flags().BoolVar(&o.Adopt, "adopt", false, "overwrite hosts whose live files were edited by hand (drift)")
	}
	return cmd
}

func newRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "r-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

func owner() string {
	u := "unknown"
	if cu, err := user.Current(); err == nil {
		u = cu.Username
	}
	h, _ := os.Hostname()
	return u + "@" + h
}

func applyRun(ctx context.Context, ios *IOStreams, o *applyOptions) error {
	req := rollout.Request{PlanFile: o.PlanFile, Limit: o.Scope.Limit, Batch: o.Scope.Batch, Revision: o.Scope.Revision}
	if o.Kind == "rollback" {
		to, err := rollbackTarget(ctx, ios, o)
		if err != nil {
			return err
		}
		req.Revision = to
	}
	var pr *rollout.Prepared
	var expect map[string]rollout.SavedHost
	saved, isSaved, err := rollout.LoadSaved(o.PlanFile)
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
	if err != nil {
		return err
	}
	for _, w := range pr.Warnings {
		fmt.Fprintln(ios.Err, "warning: "+w)
	}
	if err := pr.CheckSafety(o.Kind); err != nil {
		return err
	}
	if len(pr.Plan.ApproveAfter) > 0 && !o.Yes && !ios.CanPrompt() {
		return &rollout.Refusal{
			Problem: fmt.Sprintf("plan %q asks for approval after batch(es) %v, but no one can answer: stdin/stdout is not a terminal", pr.Plan.Name, pr.Plan.ApproveAfter),
			Next:    fmt.Sprintf("rollout %s %s --yes (approves every batch), or run it in a terminal", o.Kind, o.PlanFile)}
	}
	if !o.Yes && !isSaved { // a saved plan was reviewed when it was made
		if !ios.CanPrompt() {
			return &rollout.Refusal{
				Problem: fmt.Sprintf("%s needs a confirmation, but stdin is not a terminal", o.Kind),
				Next:    fmt.Sprintf("review with: rollout plan %s; then: rollout %s %s --yes", o.PlanFile, o.Kind, o.PlanFile)}
		}
		describePlan(ios, pr)
		if !confirm(ios, fmt.Sprintf("%s %s to %d host(s)? [y/N] ", o.Kind, plan.ShortRev(pr.Revision), len(pr.Targets))) {
			fmt.Fprintln(ios.Err, "nothing was touched")
			return exitError{code: rollout.ExitRefused}
		}
	}

	w, err := wire.New(pr.Inventory, wireOptions(o.GlobalOptions))
	if err != nil {
		return err
	}
	defer w.Close()

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
	ios.setInterrupt(ctl.Interrupt)
	defer ios.setInterrupt(nil)

	mode := o.UI
	if mode == "auto" {
		mode = "plain"
		if ios.OutTTY && ios.InTTY {
			mode = "tui"
		}
	}
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
	sinks := multiSink{view}
	if mode == "plain" && ios.CanPrompt() && !o.Yes {
		sinks = append(sinks, &approvalPrompter{ios: ios, ctl: ctl})
	}
	env := w.Env(sinks)
	opts := rollout.Options{Kind: o.Kind, RunID: newRunID(time.Now()), Owner: owner(), Backend: store,
		Adopt: o.Adopt, AutoApprove: o.Yes, Forks: o.forks(pr.Forks), Expect: expect, LockTTL: o.LockTTL}
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
	if runErr != nil {
		if mode != "json" {
			printError(ios, runErr)
			if res != nil && res.Next != "" && rollout.ExitCode(runErr) != rollout.ExitRefused {
				fmt.Fprintf(ios.Err, "next: %s\n", res.Next)
			}
		}
		return exitError{code: rollout.ExitCode(runErr)}
	}
	return nil
}

func wireOptions(g *GlobalOptions) wire.Options {
	return wire.Options{KnownHosts: g.KnownHosts, AcceptNewHostKeys: g.AcceptNewHostKeys, SSHConfig: g.SSHConfig}
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
	if e.Event != event.Waiting || e.Status != "approval" {
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

func describePlan(ios *IOStreams, pr *rollout.Prepared) {
	fmt.Fprintf(ios.Err, "plan %q: %s\n", pr.Plan.Name, pr.Repo.Describe(pr.Revision))
	for i, b := range pr.Batches {
		fmt.Fprintf(ios.Err, "  batch %d: %s\n", i+1, strings.Join(b, ", "))
	}
	fmt.Fprintf(ios.Err, "  on_failure = %s, max_failures allows %d\n", pr.Plan.OnFailure, pr.Plan.FailureLimit(len(pr.Targets)))
}
