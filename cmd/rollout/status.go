package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/internal/wire"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

type statusOptions struct {
	*GlobalOptions
	PlanFile         string
	Limit            string
	DetailedExitcode bool
}

func newStatusCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &statusOptions{GlobalOptions: g}
	cmd := planCommand("status [PLAN]", "Per host: deployed revision, previous revision, last run, drift, lock, LB state", &o.PlanFile,
		func(ctx context.Context) error { return statusRun(ctx, ios, o) })
	cmd.Flags().StringVarP(&o.Limit, "limit", "l", "", "narrow with an Ansible host pattern")
	cmd.Flags().BoolVar(&o.DetailedExitcode, "detailed-exitcode", false, "exit 0 when every host is at its recorded revision and serving, 4 when one needs attention (left drained, stale lock, drift, unreachable) or a change is pending (the plan pins a revision the hosts were rolled back from, a mixed fleet)")
	return cmd
}

// readStates looks at the selected hosts read-only.
func readStates(ctx context.Context, g *GlobalOptions, planFile, limit string) ([]rollout.HostView, error) {
	views, _, err := inspect(ctx, g, planFile, limit, false)
	return views, err
}

func inspect(ctx context.Context, g *GlobalOptions, planFile, limit string, withLB bool) ([]rollout.HostView, *rollout.Selection, error) {
	sel, err := rollout.Select(rollout.Request{PlanFile: planFile, Limit: limit})
	if err != nil {
		return nil, nil, err
	}
	w, err := wire.New(sel.Inventory, wireOptions(g, sel.Plan))
	if err != nil {
		return nil, nil, err
	}
	defer w.Close()
	views := rollout.Inspect(ctx, sel.Plan, sel.Hosts, w.Env(nil), g.forks(sel.Forks), withLB, nil)
	return views, sel, nil
}

// statusJSON is one host in `status --ui json` (docs/json-events.md,
// "host_status"): one line per host.
type statusJSON struct {
	Time             time.Time `json:"time"`
	Event            string    `json:"event"` // "host_status"
	Host             string    `json:"host"`
	Revision         string    `json:"revision,omitempty"`
	PreviousRevision string    `json:"previous_revision,omitempty"`
	LastRun          string    `json:"last_run,omitempty"`
	// DeployedBy: the operator of the run that wrote the host's marker
	// (its current.json's deployed_by)
	DeployedBy string     `json:"deployed_by,omitempty"`
	RecordedAt *time.Time `json:"recorded_at,omitempty"` // absent when nothing is recorded
	Drift      []string   `json:"drift"`
	Lock       string     `json:"lock,omitempty"`
	LB         string     `json:"lb,omitempty"`
	Serving    bool       `json:"serving"`
	Health     string     `json:"health,omitempty"`
	Error      string     `json:"error,omitempty"`
	// Attention says why the host needs a person (left drained, a stale
	// lock, drift, unreachable); Next is the command that resolves it.
	Attention string `json:"attention,omitempty"`
	Next      string `json:"next,omitempty"`
	// VarsChanged: the inventory is not pinned by the revision, and the
	// host's variables today hash otherwise than those it was rendered
	// with (its current.json's vars_sha256): an apply would change it.
	VarsChanged bool `json:"vars_changed,omitempty"`
	// RolledBackFrom: the host's marker says a rollback took it back
	// from this revision (by whom, when, in which run, why)
	RolledBackFrom *journal.RollbackMark `json:"rolled_back_from,omitempty"`
	// Pending says why the fleet has a change pending that involves this
	// host: the plan pins a revision it was rolled back from, or the
	// fleet is mixed (its hosts at different revisions); status
	// --detailed-exitcode then exits 4
	Pending string `json:"pending,omitempty"`
	// LastTouchedBy is the last run in the journal that touched the host
	// (apply, rollback or repair; LastTouchedKind says which): what its
	// state is attributed to, which is not always the run that wrote its
	// marker (last_run) — a repair writes none
	LastTouchedBy   string `json:"last_touched_by,omitempty"`
	LastTouchedKind string `json:"last_touched_kind,omitempty"`
	// Artifacts: each artifact's release the host's current.json records
	// (docs/artifacts.md)
	Artifacts map[string]journal.ArtifactState `json:"artifacts,omitempty"`
}

// releases is the RELEASE column: name=id for each recorded artifact.
func (r statusJSON) releases() string {
	if len(r.Artifacts) == 0 {
		return "-"
	}
	var out []string
	for name, a := range r.Artifacts {
		out = append(out, name+"="+a.ID)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func statusRun(ctx context.Context, ios *IOStreams, o *statusOptions) error {
	views, sel, err := inspect(ctx, o.GlobalOptions, o.PlanFile, o.Limit, true)
	if err != nil {
		return err
	}
	var runs []journal.RunSummary
	if events, err := journal.Read(journalPath(o.GlobalOptions, o.PlanFile)); err == nil {
		runs = journal.Runs(events)
	}
	flags := o.hintFlags()
	var rows []statusJSON
	failed, attention := 0, 0
	now := time.Now()
	for _, v := range views {
		r := statusJSON{Time: now, Event: "host_status", Host: v.Name, Drift: nonNil(v.Drift), LB: v.LB, Serving: v.Serving, Health: v.Health}
		if v.Err != nil {
			r.Error = v.Err.Error()
			failed++
		}
		if v.State != nil {
			r.Revision, r.PreviousRevision, r.LastRun = v.State.Revision, v.State.PreviousRevision, v.State.RunID
			r.Artifacts = v.State.Artifacts
			r.DeployedBy = v.State.DeployedBy
			r.RolledBackFrom = v.State.RolledBackFrom
			if !v.State.Time.IsZero() {
				t := v.State.Time
				r.RecordedAt = &t
			}
		}
		if v.Lock != nil {
			r.Lock = fmt.Sprintf("%s (run %s, pid %d)", v.Lock.Owner, v.Lock.RunID, v.Lock.PID)
		}
		if v.State != nil && v.State.VarsSHA256 != "" && !sel.Release.Pinned() {
			if h := sel.Inventory.Host(v.Name); h != nil && h.VarsDigest() != v.State.VarsSHA256 {
				r.VarsChanged = true
			}
		}
		if lr, _ := v.LastRun(runs); lr != nil {
			r.LastTouchedBy, r.LastTouchedKind = lr.ID, lr.Kind
		}
		r.Attention, r.Next = v.Attention(sel.Inventory.Host(v.Name), runs, shellWord(o.PlanFile), now)
		r.Next = withFlags(r.Next, flags)
		if r.Attention != "" {
			attention++
		}
		rows = append(rows, r)
	}
	fl := fleetOf(views, sel.Revision)
	for i := range rows {
		rows[i].Pending = fl.pending[rows[i].Host]
	}
	if o.UI == "json" {
		enc := json.NewEncoder(ios.Out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
		withRel := false // a RELEASE column when the hosts record artifacts
		for _, r := range rows {
			withRel = withRel || len(r.Artifacts) > 0
		}
		if withRel {
			fmt.Fprintln(tw, "HOST\tREVISION\tRELEASE\tPREVIOUS\tLAST RUN\tBY\tDRIFT\tLOCK\tHEALTH\tLB")
		} else {
			fmt.Fprintln(tw, "HOST\tREVISION\tPREVIOUS\tLAST RUN\tBY\tDRIFT\tLOCK\tHEALTH\tLB")
		}
		for _, r := range rows {
			if r.Error != "" {
				empty := strings.Repeat("\t", 7) // PREVIOUS … HEALTH, and RELEASE
				if withRel {
					empty += "\t"
				}
				fmt.Fprintf(tw, "%s\t?%serror: %s\n", r.Host, empty, r.Error)
				continue
			}
			rev, prev, last := "-", "-", "-"
			if withRel && r.Revision == "" {
				rev = "-\t-"
			}
			if r.Revision != "" {
				rev = plan.ShortRev(r.Revision)
				if withRel {
					rev += "\t" + r.releases()
				}
				last = r.LastRun
				if r.RecordedAt != nil {
					last = r.RecordedAt.Local().Format("2006-01-02 15:04") + " " + r.LastRun
				}
			}
			if r.LastTouchedBy != "" && r.LastTouchedBy != r.LastRun {
				if last == "-" {
					last = ""
				} else {
					last += " "
				}
				last += "(then " + strings.TrimSpace(r.LastTouchedKind+" "+r.LastTouchedBy) + ")"
			}
			if r.PreviousRevision != "" {
				prev = plan.ShortRev(r.PreviousRevision)
			}
			drift := "-"
			if len(r.Drift) > 0 {
				drift = "DRIFT " + strings.Join(r.Drift, ",")
			}
			lock := "-"
			if r.Lock != "" {
				lock = r.Lock
			}
			health := r.Health
			if health == "" {
				health = "-"
			}
			by := "-"
			if r.DeployedBy != "" {
				by = r.DeployedBy
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Host, rev, prev, last, by, drift, lock, health, r.LB)
		}
		_ = tw.Flush()
		pf := shellWord(o.PlanFile)
		switch {
		case fl.rolledBack != nil:
			fmt.Fprintf(ios.Out, "plan %q pins %s, %s; hosts are at %s\n", sel.Plan.Name, plan.ShortRev(sel.Revision),
				fl.rolledBack.Describe(), rollout.GroupsString(fl.groups))
			fmt.Fprintf(ios.Out, "  a plain apply refuses to deploy it again\n")
			fmt.Fprintf(ios.Out, "  next: %s\n", withFlags("rollout plan "+pf+"  # once "+pf+" pins another revision", flags))
			fmt.Fprintf(ios.Out, "  next: %s\n", withFlags("rollout apply "+pf+" --retry  # to deploy "+plan.ShortRev(sel.Revision)+" again, on purpose", flags))
		case len(fl.groups) > 1:
			fmt.Fprintf(ios.Out, "plan %q pins %s; the fleet is mixed, its hosts are at %d revisions:\n", sel.Plan.Name, sel.Plan.Revision, len(fl.groups))
			for _, g := range fl.groups {
				rev := "nothing recorded"
				if g.Revision != "" {
					rev = plan.ShortRev(g.Revision)
				}
				if g.Revision == sel.Revision {
					rev += " (pinned)"
				}
				fmt.Fprintf(ios.Out, "  %s: %s\n", rev, nameList(g.Hosts))
			}
			fmt.Fprintf(ios.Out, "  next: %s\n", withFlags("rollout plan "+pf+"  # shows what apply would change", flags))
		default:
			fmt.Fprintf(ios.Out, "plan %q pins %s\n", sel.Plan.Name, sel.Plan.Revision)
		}
		var moved []string
		for _, r := range rows {
			if r.VarsChanged {
				moved = append(moved, r.Host)
			}
		}
		if len(moved) > 0 {
			fmt.Fprintf(ios.Out, "variables changed since deployed (the inventory is not pinned): %s; see what apply would change with: rollout plan %s\n", strings.Join(moved, ", "), shellWord(o.PlanFile))
		}
		if attention > 0 {
			fmt.Fprintf(ios.Out, "\n%d host(s) need attention:\n", attention)
			for _, r := range rows {
				if r.Attention != "" {
					fmt.Fprintf(ios.Out, "  %s %s: %s\n", r.Host, r.Attention, r.Next)
				}
			}
		}
	}
	switch {
	case failed > 0 && !o.DetailedExitcode:
		return exitError{errReported}
	case o.DetailedExitcode && attention > 0:
		return exitError{rollout.ErrAttention}
	case o.DetailedExitcode && len(fl.pending) > 0:
		return exitError{rollout.ErrChanges}
	}
	return nil
}

// fleetView is what status says about the hosts together: the plan pins a
// revision they were rolled back from, or they are at different
// revisions (mixed). Either is a change pending.
type fleetView struct {
	groups     []rollout.RevisionGroup // the hosts read, by revision
	rolledBack *rollout.RolledBack     // the pin was rolled back from
	pending    map[string]string       // host → why it is a pending change
}

func fleetOf(views []rollout.HostView, pin string) fleetView {
	states := map[string]*journal.HostState{}
	var order []string
	for _, v := range views {
		if v.Err == nil {
			states[v.Name] = v.State
			order = append(order, v.Name)
		}
	}
	f := fleetView{groups: rollout.ByRevision(order, states), rolledBack: rollout.RolledBackFrom(pin, order, states), pending: map[string]string{}}
	if f.rolledBack != nil {
		for _, h := range f.rolledBack.Hosts {
			f.pending[h] = "the plan pins " + plan.ShortRev(pin) + ", which this host was " + f.rolledBack.Describe()
		}
	}
	if len(f.groups) > 1 {
		for _, g := range f.groups {
			at := "nothing recorded"
			if g.Revision != "" {
				at = "at " + plan.ShortRev(g.Revision)
			}
			for _, h := range g.Hosts {
				if f.pending[h] == "" {
					f.pending[h] = fmt.Sprintf("mixed fleet: this host is %s; the hosts are at %d revisions", at, len(f.groups))
				}
			}
		}
	}
	return f
}
