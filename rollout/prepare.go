package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/validate"
)

// Request is what the user asked for on the command line.
type Request struct {
	PlanFile string
	Limit    string // --limit ("" = none)
	Batch    string // --batch ("" = the plan's)
	Revision string // --revision or --to ("" = the plan's)
	// LooseRevision accepts a branch, HEAD or a short hash (rollout plan
	// looks only); apply and rollback require a full SHA or a tag.
	LooseRevision bool
}

// Rendered is one file of a host, rendered at a revision.
type Rendered = plan.Rendered

// Target is one host of the run with its plan evaluated and files rendered.
type Target struct {
	Host  *inventory.Host
	Spec  *plan.HostSpec
	Files []Rendered
}

// Prepared is everything that can be known without touching a host.
type Prepared struct {
	Req       Request
	Plan      *plan.Plan
	Inventory *inventory.Inventory
	Repo      *plan.Repo
	Revision  string            // full 40-hex commit
	Pool      []*inventory.Host // selected by the plan's hosts (before --limit)
	Targets   []*Target         // after --limit, in inventory order
	BatchSpec []plan.Quantity
	Batches   [][]string
	Sources   map[string][]byte // for diagnostics snippets
	Warnings  []string          // from Select, plus templates that look like Jinja2 but are not rendered as such
	Forks     int               // ansible.cfg's forks (0 = not set)

	sourcesMu sync.Mutex // Sources is written by renderAll's workers
}

// Target returns the target named name, or nil.
func (pr *Prepared) Target(name string) *Target {
	for _, t := range pr.Targets {
		if t.Host.Name == name {
			return t
		}
	}
	return nil
}

// Selection is the plan, the inventory and the hosts a run would target,
// without the repository.
type Selection struct {
	Plan      *plan.Plan
	Inventory *inventory.Inventory
	Pool      []*inventory.Host // selected by the plan's hosts
	Hosts     []*inventory.Host // after --limit
	Sources   map[string][]byte
	Warnings  []string // ansible.cfg settings not honoured, inventory entries skipped
	Forks     int      // ansible.cfg's forks (0 = not set)
}

// Select loads the plan and inventory and selects hosts. It touches
// neither the repository nor any host.
func Select(req Request) (*Selection, error) {
	if req.PlanFile == "" {
		req.PlanFile = "rollout.hcl"
	}
	src, err := os.ReadFile(req.PlanFile)
	if err != nil {
		return nil, refuse("rollout validate path/to/plan.hcl (PLAN defaults to rollout.hcl in the current directory)", "cannot read plan: %v", err)
	}
	sel := &Selection{Sources: map[string][]byte{req.PlanFile: src}}
	p, diags := plan.Parse(req.PlanFile, src)
	if diags.HasErrors() {
		return nil, &DiagError{Diags: diags, Sources: sel.Sources}
	}
	sel.Plan = p
	inv, cfg, err := loadInventory(p)
	if err != nil {
		return nil, refuse("rollout validate "+req.PlanFile+"  # once the inventory is fixed", "inventory: %v", err)
	}
	sel.Inventory = inv
	sel.Warnings = append(cfg.Warnings, inv.Warnings()...)
	sel.Forks = cfg.Forks
	pool, err := inv.Select(p.Hosts)
	if err != nil {
		return nil, refuse(fmt.Sprintf("rollout hosts %s  # once hosts = \"...\" in %s names a group or host of %s (its groups are listed above)", req.PlanFile, req.PlanFile, p.Inventory),
			"plan %q: hosts = %q: %v", p.Name, p.Hosts, err)
	}
	sel.Pool = pool
	sel.Hosts = pool
	if r := p.ExpectHosts; r != nil && !r.Contains(len(pool)) {
		// the selection comes back with the refusal: `rollout hosts`, the
		// command the hint names, shows it
		return sel, refuse("rollout hosts "+req.PlanFile+"  # shows what the pattern selects",
			"plan %q: hosts = %q selects %d hosts (%s), but expect_hosts = %s; a pattern that selects the wrong number of hosts is refused",
			p.Name, p.Hosts, len(pool), inventory.NameList(pool, 8, "… %d more"), r.String())
	}
	if req.Limit != "" {
		sel.Hosts, err = inv.Limit(p.Hosts, req.Limit)
		if err != nil {
			return nil, refuse("rollout hosts "+req.PlanFile+"  # the hosts the plan selects: pick a --limit among them", "--limit %q: %v", req.Limit, err)
		}
	}
	for _, h := range pool {
		if err := h.CheckConnection(); err != nil {
			return nil, refuse("rollout hosts "+req.PlanFile+" --vars  # then exclude it with hosts = \""+p.Hosts+":!"+h.Name+"\" in the plan, or set ansible_connection=ssh for it in the inventory", "plan %q: %v", p.Name, err)
		}
	}
	return sel, nil
}

// loadInventory reads the plan's inventory (or, when the plan names none,
// ansible.cfg's) with group_vars/host_vars beside it and beside the plan,
// and ansible.cfg's connection defaults.
func loadInventory(p *plan.Plan) (*inventory.Inventory, *inventory.AnsibleConfig, error) {
	cfg, err := inventory.FindConfig(p.Dir)
	if err != nil {
		return nil, nil, err
	}
	sources := cfg.Inventory
	if p.Inventory != "" {
		sources = []string{p.Inventory}
	}
	if len(sources) == 0 {
		return nil, nil, fmt.Errorf("plan %q sets no inventory, and no ansible.cfg names one: set inventory = \"inventory.ini\" in the plan", p.Name)
	}
	inv, err := inventory.LoadWith(sources, inventory.Options{PlaybookDir: p.Dir, Defaults: cfg.Defaults})
	if err != nil {
		return nil, nil, err
	}
	return inv, cfg, nil
}

// Prepare loads the plan, inventory and repository, selects hosts, resolves
// the revision and renders every file for every targeted host. It touches no
// host. Every problem it can find is reported at once.
func Prepare(req Request) (*Prepared, error) {
	if req.PlanFile == "" {
		req.PlanFile = "rollout.hcl"
	}
	sel, err := Select(req)
	if err != nil {
		return nil, err
	}
	p := sel.Plan
	pr := &Prepared{Req: req, Plan: p, Inventory: sel.Inventory, Pool: sel.Pool, Sources: sel.Sources, Warnings: sel.Warnings, Forks: sel.Forks}
	hosts := sel.Hosts

	if p.Repo == "" {
		return nil, refuse(fmt.Sprintf("rollout validate %s  # once the plan is inside the git repository that holds the deployable files, or repo = \"PATH\" is set in it", req.PlanFile),
			"plan %q: no git repository: the plan sets no repo, and no directory from %s up holds a .git", p.Name, p.Dir)
	}
	repo, err := plan.OpenRepo(p.Repo)
	if err != nil {
		return nil, refuse(fmt.Sprintf("rollout validate %s  # once repo = \"PATH\" in it names a git repository", req.PlanFile), "plan %q: repo: %v", p.Name, err)
	}
	pr.Repo = repo
	rev := p.Revision
	if req.Revision != "" {
		rev = req.Revision
	}
	if req.LooseRevision {
		pr.Revision, err = repo.ResolveAny(rev)
	} else {
		pr.Revision, err = repo.ResolvePinned(rev)
	}
	if err != nil {
		if req.Revision != "" { // --revision / rollback --to: the plan is not at fault
			return nil, refuse("git -C "+shellQuote(repo.Path())+" log --oneline --decorate --all  # then name a full commit SHA or a tag the repo has", "plan %q: revision: %v", p.Name, err)
		}
		return nil, refuse("git -C "+shellQuote(repo.Path())+" log --oneline --decorate  # then pin a full commit SHA or a tag in revision = \"...\" and check: rollout validate "+req.PlanFile, "plan %q: revision: %v", p.Name, err)
	}

	spec := p.Batch
	if req.Batch != "" {
		spec, err = plan.ParseBatchSpec(req.Batch)
		if err != nil {
			return nil, refuse("rollout plan "+req.PlanFile+" --batch 1  # shows the batches; --batch 1,25% works too", "--batch %q: %v", req.Batch, err)
		}
	}
	pr.BatchSpec = spec

	var all hcl.Diagnostics
	for _, r := range pr.renderAll(hosts, pr.Revision) {
		all = append(all, r.diags...)
		if r.t != nil {
			pr.Targets = append(pr.Targets, r.t)
		}
	}
	if all.HasErrors() {
		return nil, &DiagError{Diags: all, Sources: pr.Sources}
	}
	seen := map[string]bool{}
	for _, dg := range all {
		if dg.Severity != hcl.DiagWarning {
			continue
		}
		msg := dg.Summary + ": " + dg.Detail
		if dg.Subject != nil {
			msg = fmt.Sprintf("%s:%d: %s", dg.Subject.Filename, dg.Subject.Start.Line, msg)
		}
		if !seen[msg] {
			seen[msg] = true
			pr.Warnings = append(pr.Warnings, msg)
		}
	}
	names := make([]string, len(pr.Targets))
	for i, t := range pr.Targets {
		names[i] = t.Host.Name
	}
	pr.Batches = plan.Batches(spec, names)
	return pr, nil
}

// Render evaluates the plan for h at revision rev and renders its files.
func (pr *Prepared) Render(h *inventory.Host, rev string) (*Target, error) {
	t, diags := pr.render(h, rev)
	if diags.HasErrors() {
		return nil, &DiagError{Diags: diags, Sources: pr.Sources}
	}
	return t, nil
}

type rendered struct {
	t     *Target
	diags hcl.Diagnostics
}

// renderAll renders every host at rev on every CPU: hosts are
// independent, and at fleet sizes of thousands rendering is most of what
// `plan --offline` and the start of `apply` cost. Results keep the order
// of hosts.
func (pr *Prepared) renderAll(hosts []*inventory.Host, rev string) []rendered {
	out := make([]rendered, len(hosts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(hosts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(hosts); i = int(next.Add(1)) - 1 {
				t, diags := pr.render(hosts[i], rev)
				out[i] = rendered{t, diags}
			}
		}()
	}
	wg.Wait()
	return out
}

func (pr *Prepared) render(h *inventory.Host, rev string) (*Target, hcl.Diagnostics) {
	spec, diags := pr.Plan.ForHost(h, rev)
	if diags.HasErrors() {
		return nil, diags
	}
	t := &Target{Host: h, Spec: spec}
	for _, f := range spec.Files {
		raw, err := pr.Repo.ReadFile(rev, f.Source)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("file %q: source not in the repository at %s", f.Name, plan.ShortRev(rev)),
				Detail:   fmt.Sprintf("%v (files are read from the pinned commit, never from the working tree: commit the file, then pin the new commit)", err),
			})
			continue
		}
		if f.Template {
			pr.sourcesMu.Lock()
			pr.Sources[f.Source+"@"+plan.ShortRev(rev)] = raw
			pr.sourcesMu.Unlock()
		}
		out, rd := pr.Plan.Render(f, raw, h, rev)
		diags = append(diags, rd...)
		if rd.HasErrors() {
			continue
		}
		sum := sha256.Sum256(out)
		t.Files = append(t.Files, Rendered{FileSpec: f, Revision: rev, Content: out, SHA256: hex.EncodeToString(sum[:])})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return t, diags
}

// CheckSafety enforces the refusals that need no host (validate.Safety:
// scope, drain block, a pool of one) for cmd, "apply" or "rollback".
func (pr *Prepared) CheckSafety(cmd string) error {
	problems := validate.Safety(pr.Plan, validate.Scope{Command: cmd, PlanFile: pr.Req.PlanFile, Pool: pr.Pool,
		Limited: pr.Req.Limit != "", Batched: len(pr.BatchSpec) > 0})
	if len(problems) == 0 {
		return nil
	}
	var text, next []string
	for _, p := range problems {
		text = append(text, p.Text)
		next = append(next, p.Fix...)
	}
	return &Refusal{Problem: "refused: " + strings.Join(text, "\nrefused: "), Next: strings.Join(next, "\n        ")}
}
