package main

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout"
)

// registerCompletions adds dynamic values to the flags of every command:
// group and host names for --limit (from the plan's inventory), tags for
// --revision and --to (from the plan's repository), run ids for --replay
// (from the journal), the choices of --ui, and plan files for PLAN.
// Completion never touches a host, and a plan that does not load simply
// completes nothing.
func registerCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("ui", cobra.FixedCompletions(
		[]string{"auto\tTUI on a terminal, plain otherwise", "tui\tinteractive view", "plain\tone line per event", "json\tone JSON object per line"},
		cobra.ShellCompDirectiveNoFileComp))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root || c.Name() == "completion" || c.Name() == "help" {
			return
		}
		if c.Flags().Lookup("limit") != nil {
			_ = c.RegisterFlagCompletionFunc("limit", completeLimit)
		}
		for _, name := range []string{"revision", "to"} {
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, completeTags)
			}
		}
		if c.Flags().Lookup("replay") != nil {
			_ = c.RegisterFlagCompletionFunc("replay", completeRuns)
		}
		if c.ValidArgsFunction == nil && strings.Contains(c.Use, "[PLAN") {
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return []string{"hcl", "json"}, cobra.ShellCompDirectiveFilterFileExt
			}
		}
	}
	walk(root)
}

// completeLimit offers the plan's hosts and the groups they are in. A
// pattern being typed keeps what comes before its last ':' or ',' and a
// leading '&' or '!', so `web:!we<TAB>` completes to `web:!web3`.
func completeLimit(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	sel, err := rollout.Select(rollout.Request{PlanFile: planArg(args)})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cut := strings.LastIndexAny(toComplete, ":,") + 1
	for cut < len(toComplete) && (toComplete[cut] == '&' || toComplete[cut] == '!') {
		cut++
	}
	prefix, word := toComplete[:cut], toComplete[cut:]
	groups := map[string]bool{}
	var out []string
	for _, h := range sel.Pool {
		for _, g := range h.Groups {
			groups[g] = true
		}
		if strings.HasPrefix(h.Name, word) {
			out = append(out, prefix+h.Name+"\thost "+h.Address)
		}
	}
	var gs []string
	for g := range groups {
		if strings.HasPrefix(g, word) {
			gs = append(gs, prefix+g+"\tgroup")
		}
	}
	sort.Strings(gs)
	return append(gs, out...), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeTags offers the tags of the plan's repository.
func completeTags(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	planFile := planArg(args)
	p, diags := plan.Load(planFile)
	if diags.HasErrors() {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	repo, err := plan.OpenRepo(p.Repo)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	tags, err := repo.Tags()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, t := range tags {
		if strings.HasPrefix(t, toComplete) {
			out = append(out, t)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeRuns offers the run ids of the plan's journal, newest first,
// and "last".
func completeRuns(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	g := &GlobalOptions{}
	if f := cmd.Flag("state-dir"); f != nil {
		g.StateDir = f.Value.String()
	}
	events, err := journal.Read(journalPath(g, planArg(args)))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	runs := journal.Runs(events)
	out := []string{"last\tthe newest run"}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if strings.HasPrefix(r.ID, toComplete) {
			out = append(out, r.ID+"\t"+r.Kind+" "+plan.ShortRev(r.Revision)+" "+r.Start.Local().Format("2006-01-02 15:04"))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
