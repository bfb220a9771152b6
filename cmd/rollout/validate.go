package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/validate"
)

type validateOptions struct {
	*GlobalOptions
	PlanFile string
	Scope    ScopeOptions
}

func newValidateCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &validateOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "validate [PLAN]",
		Short: "Static checks of a plan: decode, revision, sources, templates, batches; touches no host",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return validateRun(cmd.Context(), ios, o)
		},
	}
	o.Scope.bind(cmd, "")
	return cmd
}

func validateRun(_ context.Context, ios *IOStreams, o *validateOptions) error {
	pr, err := rollout.Prepare(rollout.Request{PlanFile: o.PlanFile, Limit: o.Scope.Limit, Batch: o.Scope.Batch, MaxInFlight: o.Scope.MaxInFlight})
	if err != nil {
		return err
	}
	// the rules apply enforces, in apply's words: a missing scope is only a
	// note here (it is given on apply's command line)
	var problems, fixes, notes []string
	for _, p := range validate.Safety(pr.Plan, validate.Scope{Command: "apply", PlanFile: o.PlanFile, Pool: pr.Pool,
		Limited: o.Scope.Limit != "", Limit: o.Scope.Limit, Selected: len(pr.Targets), Batched: len(pr.BatchSpec) > 0}) {
		if p.Rule == validate.RuleScope {
			notes = append(notes, "note: apply will need --batch or --limit: "+p.Text)
			continue
		}
		problems = append(problems, fmt.Sprintf("%s: apply will refuse it: %s", o.PlanFile, p.Text))
		fixes = append(fixes, p.Fix...)
	}
	if len(problems) > 0 {
		return &rollout.Refusal{Problem: strings.Join(problems, "\n"), Next: strings.Join(slices.Compact(fixes), "\n        ")}
	}
	for _, w := range pr.Warnings {
		fmt.Fprintln(ios.Err, "warning: "+w)
	}
	files := 0
	for _, t := range pr.Targets {
		files += len(t.Files)
	}
	sizes := make([]string, len(pr.Batches))
	for i, b := range pr.Batches {
		sizes[i] = fmt.Sprint(len(b))
	}
	if o.UI == "json" {
		return json.NewEncoder(ios.Out).Encode(validatedJSON{Event: "validated", Plan: pr.Plan.Name, Revision: pr.Revision,
			Hosts: len(pr.Targets), Batches: pr.Batches, Files: files, Warnings: nonNil(pr.Warnings)})
	}
	fmt.Fprintf(ios.Out, "ok: plan %q at %s: %d host(s) in %d batch(es) [%s], %d file(s) rendered; nothing was touched\n",
		pr.Plan.Name, pr.Repo.Describe(pr.Revision), len(pr.Targets), len(pr.Batches), strings.Join(sizes, " "), files)
	for _, n := range notes {
		fmt.Fprintln(ios.Out, n)
	}
	return nil
}

// validatedJSON is `validate --ui json` (docs/json-events.md, "validated").
type validatedJSON struct {
	Event    string     `json:"event"` // "validated"
	Plan     string     `json:"plan"`
	Revision string     `json:"revision"`
	Hosts    int        `json:"hosts"`
	Batches  [][]string `json:"batches"`
	Files    int        `json:"files"` // files rendered, over all hosts
	// Warnings: the work tree's changes not deployed, an inventory not
	// pinned, settings not honoured (also on stderr)
	Warnings []string `json:"warnings"`
}

type hostsOptions struct {
	*GlobalOptions
	PlanFile    string
	Limit       string
	Vars        bool
	ShowSecrets bool
	Revision    string
}

func newHostsCmd(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	o := &hostsOptions{GlobalOptions: g}
	cmd := &cobra.Command{
		Use:   "hosts [PLAN]",
		Short: "List the hosts the plan's pattern (and --limit) selects",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.PlanFile = planArg(args)
			return hostsRun(ios, o)
		},
	}
	cmd.Flags().StringVarP(&o.Limit, "limit", "l", "", "narrow with an Ansible host pattern")
	cmd.Flags().BoolVar(&o.Vars, "vars", false, "show each host's merged variables, as ansible-inventory --host does (secrets redacted)")
	cmd.Flags().StringVar(&o.Revision, "revision", "", "read the inventory and its variables at this revision instead of the plan's pin (any revision git understands)")
	cmd.Flags().BoolVar(&o.ShowSecrets, "show-secrets", false, "with --vars: show the values of keys that look secret (*password*, *secret*, *token*, *_key)")
	return cmd
}

// hostJSON is one host in `hosts --ui json` (docs/json-events.md, "host").
type hostJSON struct {
	Event      string         `json:"event"` // "host"
	Name       string         `json:"host"`
	Address    string         `json:"address"`
	Port       int            `json:"port"`
	User       string         `json:"user,omitempty"`
	KeyFile    string         `json:"key_file,omitempty"`
	Connection string         `json:"connection,omitempty"`
	BecomeUser string         `json:"become_user,omitempty"`
	Groups     []string       `json:"groups"`
	Vars       map[string]any `json:"vars,omitempty"`
}

func hostsRun(ios *IOStreams, o *hostsOptions) error {
	sel, err := rollout.Select(rollout.Request{PlanFile: o.PlanFile, Limit: o.Limit, Revision: o.Revision, LooseRevision: true})
	if err != nil && sel == nil {
		return err
	}
	if err != nil {
		// expect_hosts: showing what the pattern selects is this command's
		// job, so it shows it and warns (refusing would point at itself)
		var r *rollout.Refusal
		if errors.As(err, &r) {
			fmt.Fprintf(ios.Err, "warning: %s; apply refuses this plan until hosts or expect_hosts in %s is fixed\n", r.Problem, o.PlanFile)
		}
	}
	for _, w := range sel.Warnings {
		fmt.Fprintln(ios.Err, "warning: "+w)
	}
	if o.UI == "json" {
		enc := json.NewEncoder(ios.Out)
		enc.SetEscapeHTML(false)
		for _, h := range sel.Hosts {
			hj := hostJSON{Event: "host", Name: h.Name, Address: h.Address, Port: portOr22(h.Port), User: h.User, KeyFile: h.KeyFile,
				Connection: h.Connection, BecomeUser: h.BecomeUser, Groups: nonNil(h.Groups)}
			if o.Vars {
				hj.Vars = inventory.Redact(h.Vars, o.ShowSecrets)
				if hj.Vars == nil {
					hj.Vars = map[string]any{}
				}
			}
			if err := enc.Encode(hj); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tPORT\tUSER\tGROUPS")
	for _, h := range sel.Hosts {
		user := h.User
		if user == "" {
			user = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", h.Name, h.Address, portOr22(h.Port), user, strings.Join(h.Groups, ","))
	}
	_ = tw.Flush()
	if o.Vars {
		for _, h := range sel.Hosts {
			fmt.Fprintf(ios.Out, "\n%s:\n", h.Name)
			enc := json.NewEncoder(ios.Out)
			enc.SetIndent("", "    ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(inventory.Redact(h.Vars, o.ShowSecrets)); err != nil {
				return fmt.Errorf("host %s: vars: %w", h.Name, err)
			}
		}
	}
	fmt.Fprintf(ios.Out, "%d of %d host(s) selected by hosts = %q", len(sel.Hosts), len(sel.Pool), sel.Plan.Hosts)
	if o.Limit != "" {
		fmt.Fprintf(ios.Out, " and --limit %q", o.Limit)
	}
	fmt.Fprintln(ios.Out)
	return nil
}

func portOr22(p int) int {
	if p == 0 {
		return 22
	}
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
