package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

type planOptions struct {
	*GlobalOptions
	PlanFile         string
	Scope            ScopeOptions
	Offline          bool
	DetailedExitcode bool
}

func newPlanCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &planOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "plan [PLAN] [scope]",
		Short: "Show what apply would do: commit, batches, per host the files that change (read-only)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return planRun(cmd.Context(), ios, o)
		},
	}
	o.Scope.bind(cmd, "look at this revision instead of the pin (any commit-ish: branch, tag, short hash)")
	cmd.Flags().BoolVar(&o.Offline, "offline", false, "do not contact hosts: show only what the repository and inventory say")
	cmd.Flags().BoolVar(&o.DetailedExitcode, "detailed-exitcode", false, "exit 0 when nothing would change, 4 when changes are pending")
	return cmd
}

type planHostJSON struct {
	Host     string         `json:"host"`
	Batch    int            `json:"batch"`
	Action   string         `json:"action"` // change | skip | drift | unknown
	Current  string         `json:"current_revision,omitempty"`
	Files    []planFileJSON `json:"files"`
	Drift    []string       `json:"drift,omitempty"`
	Lock     string         `json:"lock,omitempty"`
	Error    string         `json:"error,omitempty"`
	Messages []string       `json:"-"`
}

type planFileJSON struct {
	Name   string `json:"name"`
	Dest   string `json:"dest"`
	SHA256 string `json:"sha256"`
	Live   string `json:"live_sha256,omitempty"`
	Change string `json:"change"` // new | changed | same | unknown
}

func planRun(ctx context.Context, ios *IOStreams, o *planOptions) error {
	pr, err := rollout.Prepare(rollout.Request{PlanFile: o.PlanFile, Limit: o.Scope.Limit, Batch: o.Scope.Batch,
		Revision: o.Scope.Revision, LooseRevision: true})
	if err != nil {
		return err
	}
	batchOf := map[string]int{}
	for i, b := range pr.Batches {
		for _, h := range b {
			batchOf[h] = i + 1
		}
	}
	var views map[string]rollout.HostView
	if !o.Offline {
		w, err := wire.New(pr.Inventory, wireOptions(o.GlobalOptions))
		if err != nil {
			return err
		}
		defer w.Close()
		var hosts = pr.Inventory.Hosts()[:0:0]
		for _, t := range pr.Targets {
			hosts = append(hosts, t.Host)
		}
		views = map[string]rollout.HostView{}
		for _, v := range rollout.Inspect(ctx, pr.Plan, hosts, w.Env(nil), o.Forks, false, nil) {
			views[v.Name] = v
		}
	}
	var rows []planHostJSON
	changes, problems := 0, 0
	for _, t := range pr.Targets {
		row := planHostJSON{Host: t.Host.Name, Batch: batchOf[t.Host.Name], Action: "change"}
		v, looked := views[t.Host.Name]
		if looked && v.Err != nil {
			row.Action, row.Error = "unknown", v.Err.Error()
			problems++
		}
		same := looked && v.Err == nil
		for _, f := range t.Files {
			fj := planFileJSON{Name: f.Name, Dest: f.Dest, SHA256: f.SHA256, Change: "unknown"}
			if looked && v.Err == nil {
				fj.Live = v.Live[f.Dest]
				switch {
				case fj.Live == "":
					fj.Change = "new"
				case fj.Live == f.SHA256:
					fj.Change = "same"
				default:
					fj.Change = "changed"
				}
				if fj.Change != "same" {
					same = false
				}
			}
			row.Files = append(row.Files, fj)
		}
		if looked && v.Err == nil {
			if v.State != nil {
				row.Current = v.State.Revision
			}
			if v.Lock != nil {
				row.Lock = fmt.Sprintf("locked by %s (run %s)", v.Lock.Owner, v.Lock.RunID)
			}
			switch {
			case len(v.Drift) > 0:
				row.Action, row.Drift = "drift", v.Drift
			case same && v.State != nil && v.State.Revision == pr.Revision:
				row.Action = "skip"
			}
		}
		if row.Action == "change" || row.Action == "drift" {
			changes++
		}
		rows = append(rows, row)
	}
	if o.UI == "json" {
		out := map[string]any{"plan": pr.Plan.Name, "revision": pr.Revision, "batches": pr.Batches, "hosts": rows}
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printPlan(ios, pr, rows, o)
	}
	switch {
	case problems > 0:
		return exitError{code: rollout.ExitFailed}
	case o.DetailedExitcode && changes > 0:
		return exitError{code: rollout.ExitChanges}
	}
	return nil
}

func printPlan(ios *IOStreams, pr *rollout.Prepared, rows []planHostJSON, o *planOptions) {
	w := ios.Out
	fmt.Fprintf(w, "plan %q\n  revision  %s\n  commit    %s\n", pr.Plan.Name, pr.Repo.Describe(pr.Revision), pr.Revision)
	if pr.Plan.Revision != pr.Revision && o.Scope.Revision == "" {
		fmt.Fprintf(w, "  pinned as %s\n", pr.Plan.Revision)
	}
	if o.Scope.Revision != "" {
		fmt.Fprintf(w, "  (looking at --revision %s instead of the pin %s)\n", o.Scope.Revision, pr.Plan.Revision)
	}
	fmt.Fprintf(w, "  on_failure %s, max_failures allows %d, min_in_service %d of %d\n", pr.Plan.OnFailure,
		pr.Plan.FailureLimit(len(pr.Targets)), pr.Plan.MinServing(len(pr.Pool)), len(pr.Pool))
	fmt.Fprintln(w)
	for i, b := range pr.Batches {
		fmt.Fprintf(w, "batch %d: %s\n", i+1, strings.Join(b, ", "))
	}
	if len(pr.BatchSpec) == 0 && pr.Req.Limit == "" {
		fmt.Fprintf(w, "  (no batch in the plan and no --limit: apply will refuse until you give one)\n")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		head := fmt.Sprintf("%-12s batch %d  ", r.Host, r.Batch)
		switch r.Action {
		case "skip":
			fmt.Fprintf(w, "%sskip: already at %s with matching files\n", head, plan.ShortRev(r.Current))
			continue
		case "unknown":
			fmt.Fprintf(w, "%sunknown: %s\n", head, r.Error)
		case "drift":
			fmt.Fprintf(w, "%sDRIFT: %s edited by hand since %s; apply refuses without --adopt\n", head, strings.Join(r.Drift, ", "), plan.ShortRev(r.Current))
		default:
			from := "nothing recorded"
			if r.Current != "" {
				from = plan.ShortRev(r.Current)
			}
			if o.Offline {
				from = "not contacted (--offline)"
			}
			fmt.Fprintf(w, "%schange: %s → %s\n", head, from, plan.ShortRev(pr.Revision))
		}
		for _, f := range r.Files {
			fmt.Fprintf(w, "    %-8s %s  sha256:%s\n", f.Change, f.Dest, f.SHA256[:12])
		}
		if r.Lock != "" {
			fmt.Fprintf(w, "    %s\n", r.Lock)
		}
	}
}
