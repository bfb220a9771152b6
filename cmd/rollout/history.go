package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/backend"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
	"github.com/rollout-sh/rollout/ui"
)

type historyOptions struct {
	*GlobalOptions
	PlanFile string
	Replay   string
	Speed    float64
	Follow   string
}

func newHistoryCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &historyOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "history [PLAN]",
		Short: "Past runs from the journal; --replay RUN plays one again",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return historyRun(cmd.Context(), ios, o)
		},
	}
	cmd.Flags().StringVar(&o.Replay, "replay", "", "play run RUN (an id from the list, or 'last') through the views")
	cmd.Flags().Float64Var(&o.Speed, "speed", 1, "replay speed factor (0 = as fast as possible)")
	cmd.Flags().StringVar(&o.Follow, "follow", "", "stream a run as it happens, from any machine sharing the backend: the run in progress (or the next to start), or --follow=RUN")
	cmd.Flags().Lookup("follow").NoOptDefVal = "current"
	return cmd
}

func historyRun(ctx context.Context, ios *IOStreams, o *historyOptions) error {
	store, planName, err := storeForPlanFile(ctx, o.GlobalOptions, o.PlanFile)
	if err != nil {
		return err
	}
	defer store.Close()
	if o.Follow != "" {
		return follow(ctx, ios, o, store, planName)
	}
	events, err := store.Events(ctx, planName)
	if err != nil {
		return err
	}
	runs := journal.Runs(events)
	if len(runs) == 0 {
		if o.UI == "json" {
			return nil // an empty list; run_done follows
		}
		fmt.Fprintf(ios.Out, "no runs recorded in %s\n", store.Describe())
		return nil
	}
	if o.Replay != "" {
		return replay(ctx, ios, o, runs)
	}
	if o.UI == "json" {
		enc := json.NewEncoder(ios.Out)
		for _, r := range runs {
			if err := enc.Encode(historyLine(r)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tKIND\tSTARTED\tBY\tREVISION\tEXIT\tHOSTS")
	for _, r := range runs {
		exit := fmt.Sprint(r.ExitCode)
		if !r.Finished {
			exit = "unfinished"
		}
		var hs []string
		for _, h := range r.Hosts {
			hs = append(hs, h.Host+"="+string(h.Outcome))
		}
		by := r.Operator
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.Start.Local().Format("2006-01-02 15:04:05"), by, plan.ShortRev(r.Revision), exit, strings.Join(hs, " "))
	}
	return tw.Flush()
}

// historyJSON is one run in `history --ui json`: the snake_case names of
// docs/json-events.md ("history").
type historyJSON struct {
	Event    string `json:"event"` // "run"
	Run      string `json:"run"`
	Kind     string `json:"kind,omitempty"`
	Plan     string `json:"plan,omitempty"`
	Revision string `json:"revision,omitempty"`
	Scope    string `json:"scope,omitempty"`
	// Operator, OperatorURL: who the run was for (its run_start's
	// operator and operator_url)
	Operator    string            `json:"operator,omitempty"`
	OperatorURL string            `json:"operator_url,omitempty"`
	Start       *time.Time        `json:"start,omitempty"`
	End         *time.Time        `json:"end,omitempty"`
	Finished    bool              `json:"finished"`
	Status      string            `json:"status,omitempty"`
	ExitCode    *int              `json:"exit_code,omitempty"`
	Message     string            `json:"message,omitempty"`
	Hosts       map[string]string `json:"hosts"` // host → outcome
}

func historyLine(r journal.RunSummary) historyJSON {
	h := historyJSON{Event: "run", Run: r.ID, Kind: r.Kind, Plan: r.Plan, Revision: r.Revision, Scope: r.Scope,
		Operator: r.Operator, OperatorURL: r.OperatorURL, Finished: r.Finished, Hosts: map[string]string{}}
	if !r.Start.IsZero() {
		h.Start = &r.Start
	}
	if !r.End.IsZero() {
		h.End = &r.End
	}
	if r.Finished {
		h.Status, h.ExitCode, h.Message = r.Status, event.Int(r.ExitCode), r.Message
	}
	for _, x := range r.Hosts {
		h.Hosts[x.Host] = string(x.Outcome)
	}
	return h
}

func replay(ctx context.Context, ios *IOStreams, o *historyOptions, runs []journal.RunSummary) error {
	var chosen *journal.RunSummary
	for i := range runs {
		if runs[i].ID == o.Replay || (o.Replay == "last" && i == len(runs)-1) {
			chosen = &runs[i]
		}
	}
	if chosen == nil {
		return &rollout.Refusal{Problem: fmt.Sprintf("no run %q in the journal", o.Replay), Next: "rollout history " + o.PlanFile}
	}
	return throughView(ctx, ios, o, "rollout history "+shellWord(o.PlanFile)+" --replay "+shellWord(o.Replay), func(ctx context.Context, s event.Sink) error {
		return ui.Replay(ctx, chosen.Events, s, o.Speed)
	})
}

// throughView feeds the events play produces into the view --ui chooses:
// the same plain, json and TUI views a live run uses. self is the command
// as typed, for the hint when a TUI is asked for without a terminal.
func throughView(ctx context.Context, ios *IOStreams, o *historyOptions, self string, play func(context.Context, event.Sink) error) error {
	mode, err := uiMode(ios, o.UI, self)
	if err != nil {
		return err
	}
	switch mode {
	case "json":
		ios.jsonDone = true // the played run ends with its own run_done
		return play(ctx, ui.NewJSON(ios.Out))
	case "tui":
		t := ui.NewTUI(rollout.NewControl(), ui.TUIOptions{Input: ios.In, Output: ios.Out})
		go func() { _ = play(ctx, t) }()
		return t.Run()
	default:
		return play(ctx, ui.NewPlain(ios.Out, ui.PlainOptions{Color: ios.Color(), Verbose: o.Verbose}))
	}
}

// follow streams a run as its records reach the journal (shared through
// etcd: a run started on another machine), until its run_done.
func follow(ctx context.Context, ios *IOStreams, o *historyOptions, store backend.Store, planName string) error {
	run := o.Follow
	if run == "current" {
		run = ""
	}
	self := "rollout history " + shellWord(o.PlanFile) + " --follow"
	if run != "" {
		self += "=" + shellWord(run)
	}
	return throughView(ctx, ios, o, self, func(ctx context.Context, s event.Sink) error {
		return store.Follow(ctx, planName, run, s.Emit)
	})
}

var _ event.Sink = (*ui.Plain)(nil)
