package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	udiff "github.com/aymanbagabas/go-udiff"
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
	Out              string
	Diff             bool
	NoPreflight      bool
}

func newPlanCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &planOptions{GlobalOptions: g}
	cmd := planCommand("plan [PLAN] [scope]", "Show what apply would do: commit, batches, per host the files that change (read-only)", &o.PlanFile,
		func(ctx context.Context) error { return planRun(ctx, ios, o) })
	o.Scope.bind(cmd, "look at this revision instead of the pin (any commit-ish: branch, tag, short hash)")
	cmd.Flags().BoolVar(&o.Offline, "offline", false, "do not contact hosts: show only what the repository and inventory say")
	cmd.Flags().BoolVar(&o.DetailedExitcode, "detailed-exitcode", false, "exit 0 when nothing would change, 4 when changes are pending")
	cmd.Flags().StringVar(&o.Out, "out", "", "save this plan to `FILE`; rollout apply FILE then applies exactly it, or refuses if anything changed")
	cmd.Flags().BoolVar(&o.Diff, "diff", false, "show unified diffs of the files that would change")
	cmd.Flags().BoolVar(&o.NoPreflight, "no-preflight", false, "do not stage the files and run their validators on the hosts that would change (online plan does, as apply's preflight)")
	return cmd
}

type planHostJSON struct {
	Host    string         `json:"host"`
	Batch   int            `json:"batch"`
	Wave    string         `json:"wave,omitempty"` // plans with wave blocks
	Action  string         `json:"action"`         // change | skip | drift | unknown
	Current string         `json:"current_revision,omitempty"`
	Files   []planFileJSON `json:"files"`
	Drift   []string       `json:"drift,omitempty"`
	// Vars: the host's merged variables that differ between the revision
	// it runs and the target (secrets redacted)
	Vars []rollout.VarChange `json:"vars,omitempty"`
	Lock string              `json:"lock,omitempty"`
	// Preflight: why apply's preflight would refuse this host (online
	// plan stages and validates the files of every host that changes)
	Preflight *rollout.PreflightRefusal `json:"preflight,omitempty"`
	Error     string                    `json:"error,omitempty"`
	Messages  []string                  `json:"-"`
}

type planFileJSON struct {
	Name   string `json:"name"`
	Dest   string `json:"dest"`
	SHA256 string `json:"sha256"`
	Live   string `json:"live_sha256,omitempty"`
	Change string `json:"change"` // new | changed | same | unknown
}

func planRun(ctx context.Context, ios *IOStreams, o *planOptions) error {
	if o.Out != "" && o.Offline {
		return &rollout.Refusal{Problem: "--out needs to look at the hosts; it cannot be combined with --offline", Next: "rollout plan " + o.PlanFile + " --out " + o.Out}
	}
	if o.Out != "" && o.Scope.Revision != "" {
		return &rollout.Refusal{Problem: "--out saves what apply will do, and apply deploys the plan's pin; --revision is for looking only", Next: "rollout plan " + o.PlanFile + " --out " + o.Out + "  # once the revision is pinned in the plan"}
	}
	pr, err := rollout.Prepare(rollout.Request{PlanFile: o.PlanFile, Limit: o.Scope.Limit, Batch: o.Scope.Batch, MaxInFlight: o.Scope.MaxInFlight,
		Revision: o.Scope.Revision, LooseRevision: o.Out == ""})
	if err != nil {
		return err
	}
	for _, w := range pr.Warnings {
		fmt.Fprintln(ios.Err, "warning: "+w)
	}
	var diffs map[string]string // host/dest → diff
	// the batches apply will run: without a look at the hosts (--offline),
	// every target changes
	run := planBatches{batches: pr.Batches}
	var views map[string]rollout.HostView
	var preflight map[string]rollout.PreflightRefusal // host → why apply's preflight would refuse it
	if !o.Offline {
		w, err := wire.New(pr.Inventory, wireOptions(o.GlobalOptions, pr.Plan))
		if err != nil {
			return err
		}
		defer w.Close()
		var hosts = pr.Inventory.Hosts()[:0:0]
		for _, t := range pr.Targets {
			hosts = append(hosts, t.Host)
		}
		views = map[string]rollout.HostView{}
		all := rollout.Inspect(ctx, pr.Plan, hosts, w.Env(nil), o.forks(pr.Forks), false, nil)
		for _, v := range all {
			views[v.Name] = v
		}
		run.batches, run.skip, run.unknown = rollout.RunBatches(pr, all)
		run.fleet = fleetOf(all, pr.Revision)
		if !o.NoPreflight {
			// apply's fleet-wide preflight on the hosts it would change:
			// staged copies validated and removed, nothing drained
			var todo []string
			for _, b := range run.batches {
				todo = append(todo, b...)
			}
			if preflight, err = rollout.PlanPreflight(ctx, pr, todo, w.Env(nil), o.forks(pr.Forks)); err != nil {
				return err
			}
		}
		if o.Out != "" {
			saved, err := rollout.NewSaved(pr, all, time.Now())
			if err != nil {
				return &rollout.Refusal{Problem: "cannot save the plan: " + err.Error(), Next: "rollout plan " + o.PlanFile + " --out " + o.Out + "  # once the host is fixed"}
			}
			if saved.LastRun, err = lastRunID(ctx, o.GlobalOptions, o.PlanFile, pr.Plan); err != nil {
				return err
			}
			if err := saved.Write(o.Out); err != nil {
				return fmt.Errorf("writing %s: %w", o.Out, err)
			}
			defer fmt.Fprintf(ios.Err, "saved plan to %s; apply exactly it with: %s\n", o.Out, withFlags("rollout apply "+shellWord(o.Out), o.hintFlags()))
		}
		if o.Diff {
			diffs = liveDiffs(ctx, w, pr, views)
		}
	}
	batchOf := map[string]int{}
	for i, b := range run.batches {
		for _, h := range b {
			batchOf[h] = i + 1
		}
	}
	var rows []planHostJSON
	changes, problems := 0, 0
	for _, t := range pr.Targets {
		var c rollout.Class
		v, looked := views[t.Host.Name]
		if looked {
			c = v.Class(t, pr.Revision)
		} else {
			c = rollout.Classify(t.Tracked(), pr.Revision, nil, nil) // --offline
		}
		row := planHostJSON{Host: t.Host.Name, Batch: batchOf[t.Host.Name], Wave: pr.WaveOf(t.Host.Name), Action: string(c.Action), Current: c.Current}
		for _, f := range c.Files {
			row.Files = append(row.Files, planFileJSON{Name: f.Name, Dest: f.Dest, SHA256: f.SHA256, Live: f.Live, Change: string(f.Change)})
		}
		if looked && v.Err == nil {
			row.Vars = pr.VarsChanges(t, v.State)
		}
		switch c.Action {
		case rollout.HostUnknown:
			row.Error = v.Err.Error()
			problems++
		case rollout.HostDrift:
			row.Drift = c.Drift
		}
		if looked && v.Err == nil && v.Lock != nil {
			row.Lock = fmt.Sprintf("locked by %s (run %s)", v.Lock.Owner, v.Lock.RunID)
		}
		if c.Action == rollout.HostChange || c.Action == rollout.HostDrift {
			changes++
		}
		if pf, ok := preflight[t.Host.Name]; ok {
			row.Preflight = &pf
			problems++
		}
		rows = append(rows, row)
	}
	if o.UI == "json" {
		out := map[string]any{"event": "plan", "plan": pr.Plan.Name, "revision": pr.Revision, "batches": run.batches, "hosts": rows, "warnings": nonNil(pr.Warnings)}
		if pr.Window.Set {
			out["max_in_flight"] = max(1, pr.Window.Of(hostsIn(run.batches)))
		}
		if rb := run.fleet.rolledBack; rb != nil {
			out["rolled_back_from"] = map[string]any{"revision": rb.Mark.Revision, "run_id": rb.Mark.RunID, "by": rb.Mark.By,
				"reason": rb.Mark.Reason, "time": rb.Mark.Time, "hosts": rb.Hosts}
		}
		enc := json.NewEncoder(ios.Out)
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printPlan(ios, pr, run, rows, o, diffs)
	}
	switch {
	case problems > 0:
		return exitError{errReported}
	case o.DetailedExitcode && changes > 0:
		return exitError{rollout.ErrChanges}
	}
	return nil
}

// planBatches are the batches apply will run and the hosts it skips.
type planBatches struct {
	batches       [][]string
	skip, unknown []string
	fleet         fleetView // the hosts by revision; the target rolled back from
}

func printPlan(ios *IOStreams, pr *rollout.Prepared, run planBatches, rows []planHostJSON, o *planOptions, diffs map[string]string) {
	w := ios.Out
	fmt.Fprintf(w, "plan %q\n  revision  %s\n  commit    %s\n", pr.Plan.Name, pr.Repo.Describe(pr.Revision), pr.Revision)
	if pr.Plan.Revision != pr.Revision && o.Scope.Revision == "" {
		fmt.Fprintf(w, "  pinned as %s\n", pr.Plan.Revision)
	}
	if o.Scope.Revision != "" {
		fmt.Fprintf(w, "  (looking at --revision %s instead of the pin %s)\n", o.Scope.Revision, pr.Plan.Revision)
	}
	if rb := run.fleet.rolledBack; rb != nil {
		fmt.Fprintf(w, "  ROLLED BACK: %s was %s; hosts are at %s\n", plan.ShortRev(pr.Revision), rb.Describe(), rollout.GroupsString(run.fleet.groups))
		fmt.Fprintf(w, "  apply refuses to deploy it again without --retry\n")
	}
	fmt.Fprintf(w, "  on_failure %s, max_failures allows %d, min_in_service %d of %d\n", pr.Plan.OnFailure,
		pr.Plan.FailureLimit(len(pr.Targets)), pr.Plan.MinServing(len(pr.Pool)), len(pr.Pool))
	fmt.Fprintln(w)
	writeRunBatches(w, "", pr, run.batches, run.skip, run.unknown)
	if len(pr.BatchSpec) == 0 && pr.Req.Limit == "" {
		fmt.Fprintf(w, "  (no batch in the plan and no --limit: apply will refuse until you give one)\n")
	}
	fmt.Fprintln(w)
	if len(rows) > planGroupAbove && !o.Diff && !o.Verbose {
		printPlanGroups(w, pr, rows, o)
		rows = nil
	}
	for _, r := range rows {
		printPlanHost(w, pr, r, o, diffs)
	}
	if !o.Offline && !o.NoPreflight && len(run.batches) > 0 {
		failed := 0
		for _, r := range rows {
			if r.Preflight != nil {
				failed++
			}
		}
		if failed == 0 {
			fmt.Fprintf(w, "\npreflight: every file staged and validated on the hosts that change; nothing was drained\n")
		} else {
			fmt.Fprintf(w, "\npreflight: apply would refuse %d of the hosts that change (above); nothing was drained or changed\n", failed)
		}
	}
}

// printPlanHost prints one host of plan (or one group of hosts with the
// same changes), with its files' diffs when there are any.
func printPlanHost(w io.Writer, pr *rollout.Prepared, r planHostJSON, o *planOptions, diffs map[string]string) {
	col := "-" // skipped: in no batch
	switch {
	case r.Batch > 0:
		col = fmt.Sprintf("batch %d", r.Batch)
	case r.Batch < -1: // a group across batches
		col = fmt.Sprintf("%d batches", -r.Batch)
	case r.Batch == -1:
		col = "1 batch"
	}
	head := fmt.Sprintf("%-12s %-8s ", r.Host, col)
	switch rollout.HostAction(r.Action) {
	case rollout.HostSkip:
		fmt.Fprintf(w, "%sskip: already at %s with matching files\n", head, plan.ShortRev(r.Current))
		return
	case rollout.HostUnknown:
		fmt.Fprintf(w, "%sunknown: %s\n", head, r.Error)
	case rollout.HostDrift:
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
		sum := "sha256:(differs per host; --ui json lists each)"
		if len(f.SHA256) >= 12 {
			sum = "sha256:" + f.SHA256[:12]
		}
		if strings.HasPrefix(f.Name, "artifact ") { // the link current: its release, not a hash of its target
			sum = f.Name
		}
		fmt.Fprintf(w, "    %-8s %s  %s\n", f.Change, f.Dest, sum)
		if d := diffs[r.Host+"\x00"+f.Dest]; d != "" {
			for _, line := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
				fmt.Fprintf(w, "      %s\n", line)
			}
		}
	}
	for _, v := range r.Vars {
		fmt.Fprintf(w, "    vars     %s\n", v)
	}
	if r.Lock != "" {
		fmt.Fprintf(w, "    %s\n", r.Lock)
	}
	if r.Preflight != nil {
		fmt.Fprintf(w, "    PREFLIGHT: %s; apply would stop in preflight, before any host is drained\n", r.Preflight.What)
		for _, line := range strings.Split(strings.TrimRight(r.Preflight.Message, "\n"), "\n") {
			fmt.Fprintf(w, "      %s\n", line)
		}
	}
}

// planGroupAbove is the number of hosts above which plan groups the hosts
// by what changes on them instead of listing each (-v and --diff list
// each; --ui json always does).
const planGroupAbove = 20

// printPlanGroups prints plan's hosts grouped by what changes: hosts with
// the same action, current revision, files and variable changes share one
// entry naming how many and the first few; a host with a problem (drift,
// unknown, a lock) is its own entry; hosts with the same preflight
// refusal share one.
func printPlanGroups(w io.Writer, pr *rollout.Prepared, rows []planHostJSON, o *planOptions) {
	type entry struct {
		rows  []planHostJSON
		batch map[int]bool
	}
	var order []string
	groups := map[string]*entry{}
	for _, r := range rows {
		key := r.Host // alone
		if r.Action == string(rollout.HostChange) || r.Action == string(rollout.HostSkip) {
			if r.Lock == "" && r.Error == "" {
				var b strings.Builder
				fmt.Fprintf(&b, "%s|%s", r.Action, r.Current)
				for _, f := range r.Files { // not the bytes: a template naming the host differs on each
					fmt.Fprintf(&b, "|%s %s", f.Dest, f.Change)
				}
				for _, v := range r.Vars {
					fmt.Fprintf(&b, "|%s", v)
				}
				if r.Preflight != nil { // the same refusal on many hosts is one entry
					fmt.Fprintf(&b, "|preflight %s\x00%s", r.Preflight.What, r.Preflight.Message)
				}
				key = b.String()
			}
		}
		g := groups[key]
		if g == nil {
			g = &entry{batch: map[int]bool{}}
			groups[key] = g
			order = append(order, key)
		}
		g.rows = append(g.rows, r)
		g.batch[r.Batch] = true
	}
	for _, key := range order {
		g := groups[key]
		r := g.rows[0]
		if len(g.rows) == 1 {
			printPlanHost(w, pr, r, o, nil)
			continue
		}
		var names []string
		for i, gr := range g.rows {
			if i == 4 {
				names = append(names, fmt.Sprintf("… %s", g.rows[len(g.rows)-1].Host))
				break
			}
			names = append(names, gr.Host)
		}
		r.Host = fmt.Sprintf("%d hosts (%s)", len(g.rows), strings.Join(names, ", "))
		r.Files = append([]planFileJSON(nil), r.Files...)
		for i := range r.Files {
			for _, gr := range g.rows[1:] {
				if gr.Files[i].SHA256 != r.Files[i].SHA256 {
					r.Files[i].SHA256 = "" // differs per host
					break
				}
			}
		}
		r.Batch = -len(g.batch) // the number of batches they are in
		printPlanHost(w, pr, r, o, nil)
	}
}

// liveDiffs diffs each changing file, as its host has it now, against what
// apply would write; keyed host+"\x00"+dest.
func liveDiffs(ctx context.Context, w *wire.Wiring, pr *rollout.Prepared, views map[string]rollout.HostView) map[string]string {
	out := map[string]string{}
	for _, lf := range rollout.ChangingFiles(ctx, pr, views, w.Env(nil)) {
		key := lf.Host + "\x00" + lf.File.Dest
		if lf.Err != nil {
			out[key] = "(cannot read the live file: " + lf.Err.Error() + ")"
			continue
		}
		out[key] = fileDiff(lf.Host+":"+lf.File.Dest, lf.File.Source+"@"+plan.ShortRev(pr.Revision), lf.Live, string(lf.File.Content))
	}
	return out
}

// fileDiff is the unified diff `plan --diff` shows for one file (3 lines of
// context, patch(1)-compatible), or "" when live already equals the target.
func fileDiff(liveName, targetName, live, target string) string {
	return udiff.Unified(liveName, targetName, live, target)
}
