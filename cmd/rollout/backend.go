package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/backend"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

// openStore opens the state backend of plan p (its backend block, then
// the ROLLOUT_BACKEND_* environment). A backend that does not answer is a
// refusal (exit 2) naming its endpoints: a run never falls back to the
// local journal on its own.
func openStore(ctx context.Context, g *GlobalOptions, planFile string, p *plan.Plan) (backend.Store, error) {
	cfg, err := backend.Resolve(p.Backend, os.Getenv)
	if err != nil {
		return nil, &rollout.Refusal{Problem: err.Error(), Next: "rollout validate " + planFile + "  # once the backend block in it (or the " + backend.EnvKind + "* variables) is fixed"}
	}
	st, err := backend.Open(ctx, cfg, p.Name, localDir(g, planFile))
	var ue *backend.UnreachableError
	if errors.As(err, &ue) {
		return nil, &rollout.Refusal{Problem: err.Error() + "; nothing was touched, and the run does not fall back to the local journal",
			Next: fmt.Sprintf("ETCDCTL_API=3 etcdctl --endpoints=%s endpoint health  # checks it; then rerun", strings.Join(ue.Endpoints, ","))}
	}
	return st, err
}

// planHosts are the options of the commands that act on the selected
// hosts of a plan and its state backend (repair, unlock): the plan file
// and --limit.
type planHosts struct {
	*GlobalOptions
	PlanFile string
	Limit    string
}

// command is the cobra command: [PLAN] and --limit bound to o; run gets
// the selected hosts and the plan's state backend, closed after it.
func (o *planHosts) command(use, short string, run func(context.Context, *rollout.Selection, backend.Store) error) *cobra.Command {
	cmd := planCommand(use, short, &o.PlanFile, func(ctx context.Context) error {
		sel, store, err := o.open(ctx)
		if err != nil {
			return err
		}
		defer store.Close()
		return run(ctx, sel, store)
	})
	cmd.Flags().StringVarP(&o.Limit, "limit", "l", "", "only these hosts")
	return cmd
}

// open selects the hosts and opens the plan's state backend.
func (o *planHosts) open(ctx context.Context) (*rollout.Selection, backend.Store, error) {
	sel, err := rollout.Select(rollout.Request{PlanFile: o.PlanFile, Limit: o.Limit})
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, o.GlobalOptions, o.PlanFile, sel.Plan)
	if err != nil {
		return nil, nil, err
	}
	return sel, store, nil
}

// storeForPlanFile loads the plan for its name and backend block, and
// opens its store. A plan that does not load still has a local journal
// beside it, unless the environment asks for etcd.
func storeForPlanFile(ctx context.Context, g *GlobalOptions, planFile string) (backend.Store, string, error) {
	p, diags := plan.Load(planFile)
	if diags.HasErrors() {
		if k := os.Getenv(backend.EnvKind); k != "" && k != "local" {
			return nil, "", &rollout.DiagError{Diags: diags, Sources: planSources(planFile)}
		}
		return journal.NewLocal(localDir(g, planFile)), "", nil
	}
	st, err := openStore(ctx, g, planFile, p)
	return st, p.Name, err
}

func planSources(planFile string) map[string][]byte {
	b, err := os.ReadFile(planFile)
	if err != nil {
		return nil
	}
	return map[string][]byte{planFile: b}
}

func newBackendCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "The state backend that holds the plan lock and the journal",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "migrate [PLAN]",
		Short: "Copy the local journal into the plan's etcd backend (only what etcd lacks; safe to run again)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return migrateRun(c.Context(), ios, g, planArg(args))
		},
	})
	return cmd
}

func migrateRun(ctx context.Context, ios *IOStreams, g *GlobalOptions, planFile string) error {
	p, diags := plan.Load(planFile)
	if diags.HasErrors() {
		return &rollout.DiagError{Diags: diags, Sources: planSources(planFile)}
	}
	st, err := openStore(ctx, g, planFile, p)
	if err != nil {
		return err
	}
	defer st.Close()
	et, ok := st.(*backend.Etcd)
	if !ok {
		return &rollout.Refusal{Problem: fmt.Sprintf("plan %q uses the local backend: there is nothing to migrate to", p.Name),
			Next: fmt.Sprintf(`rollout backend migrate %s  # once backend "etcd" { endpoints = [...] } is in it (or %s=etcd and %s are set)`, planFile, backend.EnvKind, backend.EnvEndpoints)}
	}
	path := journalPath(g, planFile)
	events, err := journal.Read(path)
	if err != nil {
		return err
	}
	res, err := et.Migrate(ctx, p.Name, events)
	if err != nil {
		return err
	}
	fmt.Fprintf(ios.Out, "%s: %d run(s); %d record(s) copied to %s, %d already there\n", path, res.Runs, res.Copied, et.Describe(), res.Present)
	return nil
}

// lastRunID is the last run in the plan's journal (shared when the
// backend is etcd), for a saved plan.
func lastRunID(ctx context.Context, g *GlobalOptions, planFile string, p *plan.Plan) (string, error) {
	st, err := openStore(ctx, g, planFile, p)
	if err != nil {
		return "", err
	}
	defer st.Close()
	evs, err := st.Events(ctx, p.Name)
	if err != nil {
		return "", err
	}
	runs := journal.Runs(evs)
	if len(runs) == 0 {
		return "", nil
	}
	return runs[len(runs)-1].ID, nil
}

// checkSavedAgainstJournal refuses a saved plan when a run that touched a
// host started after the plan was saved, on this machine or (etcd) on any
// other: what the plan was reviewed against is not what is there now.
func checkSavedAgainstJournal(ctx context.Context, st backend.Store, s *rollout.SavedPlan) error {
	evs, err := st.Events(ctx, s.Plan)
	if err != nil {
		return err
	}
	runs := journal.Runs(evs)
	start := 0
	if s.LastRun != "" {
		start = len(runs)
		for i, r := range runs {
			if r.ID == s.LastRun {
				start = i + 1
			}
		}
	}
	for _, r := range runs[start:] {
		for _, h := range r.Hosts {
			if h.Phase == "" {
				continue
			}
			state := "did not finish"
			if r.Finished {
				state = fmt.Sprintf("exit %d", r.ExitCode)
			}
			return &rollout.Refusal{
				Problem: fmt.Sprintf("stale plan: run %s (%s of %s, %s) touched %s after the plan was saved", r.ID, r.Kind, plan.ShortRev(r.Revision), state, h.Host),
				Next:    fmt.Sprintf("rollout plan %s --out FILE  # look again and save a new plan; see the run with: rollout history %s --replay %s", s.PlanFile, s.PlanFile, r.ID)}
		}
	}
	return nil
}
