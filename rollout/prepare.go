package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
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
	// MaxInFlight is --max-in-flight ("" = the plan's): a rolling window
	// instead of batches
	MaxInFlight string
	Revision    string // --revision or --to ("" = the plan's)
	// LooseRevision accepts a branch, HEAD or a short hash (rollout plan
	// looks only); apply and rollback require a full SHA or a tag.
	LooseRevision bool
	// prepare: Select is called by Prepare, which adds the work tree's
	// warning itself (with the templates it reads)
	prepare bool
	// Rollback: Revision is what the hosts go back to, rendered with that
	// revision's variables; how hosts are reached (the inventory's
	// connection settings) still comes from the plan's pin.
	Rollback bool
}

// Rendered is one file of a host, rendered at a revision.
type Rendered = plan.Rendered

// Target is one host of the run with its plan evaluated and files rendered.
type Target struct {
	Host  *inventory.Host // how the host is reached (the connection revision's inventory)
	Spec  *plan.HostSpec
	Files []Rendered
	// Vars is the host as the rendered revision's inventory has it (its
	// groups and variables), VarsSHA256 their hash (inventory.VarsDigest),
	// recorded with the revision.
	Vars       *inventory.Host
	VarsSHA256 string
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
	// Window is the rolling window (max_in_flight, --max-in-flight): the
	// batches are then a canary host and the rest, which runs with at
	// most Window hosts out at a time. Unset: batches as BatchSpec says.
	Window  plan.Quantity
	Batches [][]string
	// waveOf puts every host of the pool in its wave (index into
	// Plan.Waves; nil without waves)
	waveOf   map[string]int
	Sources  map[string][]byte // for diagnostics snippets
	Warnings []string          // from Select, plus templates that look like Jinja2 but are not rendered as such
	Forks    int               // ansible.cfg's forks (0 = not set)
	// Release reads the inventory at other revisions (a rollback's
	// target, a host's deployed revision), or says it is not pinned.
	Release *Release

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
// with the inventory read at the revision that says how hosts are reached
// (the plan's pin, or --revision).
type Selection struct {
	Plan      *plan.Plan
	Inventory *inventory.Inventory
	Pool      []*inventory.Host // selected by the plan's hosts
	Hosts     []*inventory.Host // after --limit
	Sources   map[string][]byte
	Warnings  []string // ansible.cfg settings not honoured, inventory entries skipped, the work tree's changes not deployed
	Forks     int      // ansible.cfg's forks (0 = not set)

	Repo *plan.Repo
	// Revision is the full commit the inventory was read at.
	Revision string
	// Release says where the inventory, group_vars, host_vars and
	// ansible.cfg came from (pinned or not), and reads them at other
	// revisions.
	Release *Release

	// unprepared is why Prepare cannot go on from this selection (no
	// repository, a revision it cannot resolve); nil when it can
	unprepared error
}

// Select loads the plan, resolves its revision and reads the inventory
// at it, and selects hosts. It touches no host.
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
	// the inventory is read at the revision this command deploys or looks
	// at (a rollback reaches hosts as the plan's pin says today); without
	// a repository or a revision it is read from the disk, and Prepare
	// refuses
	rel, err := sel.openRelease(req)
	if err != nil {
		return nil, err
	}
	sel.Release = rel
	inv := rel.inv
	sel.Inventory = inv
	sel.Warnings = append(append([]string{}, rel.warnings...), inv.Warnings()...)
	if !req.prepare {
		sel.Warnings = append(sel.Warnings, rel.WorkTree()...)
	}
	sel.Forks = rel.forks
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

// openRelease reads the inventory at the revision req connects at, or
// from the disk when there is no repository or revision to read it at
// (the refusal is kept for Prepare).
func (sel *Selection) openRelease(req Request) (*Release, error) {
	p := sel.Plan
	var repo *plan.Repo
	var err error
	if p.Repo == "" {
		sel.unprepared = refuse(fmt.Sprintf("rollout validate %s  # once the plan is inside the git repository that holds the deployable files, or repo = \"PATH\" is set in it", req.PlanFile),
			"plan %q: no git repository: the plan sets no repo, and no directory from %s up holds a .git", p.Name, p.Dir)
	} else if repo, err = plan.OpenRepo(p.Repo); err != nil {
		sel.unprepared = refuse(fmt.Sprintf("rollout validate %s  # once repo = \"PATH\" in it names a git repository", req.PlanFile), "plan %q: repo: %v", p.Name, err)
	}
	connect := req
	if req.Rollback {
		connect.Revision = ""
	}
	if sel.unprepared == nil {
		sel.Repo = repo
		sel.Revision, sel.unprepared = resolveRevision(repo, p, req.PlanFile, connect)
		if sel.unprepared != nil && connect.Revision != "" {
			return nil, sel.unprepared // a --revision asked for explicitly
		}
	}
	var rel *Release
	if sel.unprepared != nil {
		rel, err = diskRelease(p)
	} else {
		rel, err = openRelease(repo, p, sel.Revision, revisionName(p, connect))
	}
	if err != nil {
		return nil, refuse("rollout validate "+req.PlanFile+"  # once the inventory is fixed", "inventory: %v", err)
	}
	return rel, nil
}

// resolveRevision resolves the revision req deploys or looks at: --revision
// (or rollback's --to) when given, else the plan's pin.
func resolveRevision(repo *plan.Repo, p *plan.Plan, planFile string, req Request) (string, error) {
	rev := p.Revision
	if req.Revision != "" {
		rev = req.Revision
	}
	var sha string
	var err error
	if req.LooseRevision {
		sha, err = repo.ResolveAny(rev)
	} else {
		sha, err = repo.ResolvePinned(rev)
	}
	if err == nil {
		return sha, nil
	}
	if req.Revision != "" { // --revision / rollback --to: the plan is not at fault
		return "", refuse("git -C "+shellQuote(repo.Path())+" log --oneline --decorate --all  # then name a full commit SHA or a tag the repo has", "plan %q: revision: %v", p.Name, err)
	}
	return "", refuse("git -C "+shellQuote(repo.Path())+" log --oneline --decorate  # then pin a full commit SHA or a tag in revision = \"...\" and check: rollout validate "+planFile, "plan %q: revision: %v", p.Name, err)
}

// revisionName is the revision as the user wrote it (a tag reads better
// than its hash in a warning).
func revisionName(p *plan.Plan, req Request) string {
	if req.Revision != "" {
		return plan.ShortRev(req.Revision)
	}
	return plan.ShortRev(p.Revision)
}

// Prepare loads the plan, inventory and repository, selects hosts, resolves
// the revision and renders every file for every targeted host. It touches no
// host. Every problem it can find is reported at once.
func Prepare(req Request) (*Prepared, error) {
	if req.PlanFile == "" {
		req.PlanFile = "rollout.hcl"
	}
	req.prepare = true
	sel, err := Select(req)
	req.prepare = false
	if err != nil {
		return nil, err
	}
	if sel.unprepared != nil {
		return nil, sel.unprepared
	}
	p := sel.Plan
	pr := &Prepared{Req: req, Plan: p, Inventory: sel.Inventory, Pool: sel.Pool, Sources: sel.Sources, Warnings: sel.Warnings, Forks: sel.Forks,
		Repo: sel.Repo, Revision: sel.Revision, Release: sel.Release}
	hosts := sel.Hosts
	if req.Rollback && req.Revision != "" {
		if pr.Revision, err = resolveRevision(sel.Repo, p, req.PlanFile, req); err != nil {
			return nil, err
		}
		if err := pr.checkHostsAt(hosts, pr.Revision, req.Revision); err != nil {
			return nil, err
		}
	}

	// a hook runs on an inventory host, or on the controller
	var hookDiags hcl.Diagnostics
	for _, h := range p.Hooks {
		if h.On != "" && sel.Inventory.Host(h.On) == nil {
			rng := h.OnRange
			hookDiags = append(hookDiags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown hook host", Subject: &rng,
				Detail: fmt.Sprintf("hook %q runs on %q, which the inventory does not have; name one of its hosts, or leave on out to run the hook on the controller.", h.Name, h.On)})
		}
	}
	waveOf, waveDiags := assignWaves(p, sel.Inventory, pr.Pool)
	hookDiags = append(hookDiags, waveDiags...)
	if hookDiags.HasErrors() {
		return nil, &DiagError{Diags: hookDiags, Sources: pr.Sources}
	}
	pr.waveOf = waveOf

	spec, window := p.Batch, p.MaxInFlight
	if req.Batch != "" && req.MaxInFlight != "" {
		return nil, refuse("rollout plan "+req.PlanFile+" --max-in-flight "+req.MaxInFlight+"  # or --batch "+req.Batch+", not both",
			"--batch %q and --max-in-flight %q: batch rolls in batches that each wait for their slowest host, max-in-flight keeps a rolling window; give one of them", req.Batch, req.MaxInFlight)
	}
	if req.Batch != "" {
		spec, err = plan.ParseBatchSpec(req.Batch)
		if err != nil {
			return nil, refuse("rollout plan "+req.PlanFile+" --batch 1  # shows the batches; --batch 1,25% works too", "--batch %q: %v", req.Batch, err)
		}
		window = plan.Quantity{}
	}
	if req.MaxInFlight != "" {
		window, err = plan.ParseQuantity(req.MaxInFlight)
		if err == nil && window.N < 1 {
			err = errors.New("want at least 1")
		}
		if err != nil {
			return nil, refuse("rollout plan "+req.PlanFile+" --max-in-flight 2  # shows the window; --max-in-flight 10% works too", "--max-in-flight %q: %v", req.MaxInFlight, err)
		}
		spec = nil
	}
	if window.Set {
		// a canary alone first, then the rest through the window
		spec = []plan.Quantity{{N: 1, Set: true}, {N: 100, Percent: true, Set: true}}
		pr.Window = window
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
	// the work tree's differences from what is deployed: the inventory's
	// files and, when the revision rendered is the one read, the templates
	if pr.Revision == sel.Revision {
		var sources []string
		have := map[string]bool{}
		for _, t := range pr.Targets {
			for _, f := range t.Files {
				paths := []string{f.Source}
				if f.Role != "" { // what plan reads of a role (plan.roleLayers)
					for _, dir := range []string{"defaults", "vars"} {
						for _, file := range []string{"main.yml", "main.yaml", "main.json", "main"} {
							paths = append(paths, path.Join(f.Role, dir, file))
						}
					}
				}
				for _, p := range paths {
					if !have[p] {
						have[p] = true
						sources = append(sources, p)
					}
				}
			}
		}
		pr.Warnings = append(pr.Warnings, pr.Release.WorkTree(sources...)...)
	} else {
		pr.Warnings = append(pr.Warnings, pr.Release.WorkTree()...)
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
	pr.Batches = pr.Schedule(names).Batches
	return pr, nil
}

// checkHostsAt refuses a rollback to rev when a targeted host is not in
// rev's inventory: there is nothing to render it from.
func (pr *Prepared) checkHostsAt(hosts []*inventory.Host, rev, name string) error {
	inv, err := pr.Release.At(rev)
	if err != nil {
		return refuse("git -C "+shellQuote(pr.Repo.Path())+" show "+plan.ShortRev(rev)+" --stat  # the inventory must be readable at the revision rolled back to", "inventory at %s: %v", plan.ShortRev(name), err)
	}
	var missing []*inventory.Host
	for _, h := range hosts {
		if inv.Host(h.Name) == nil {
			missing = append(missing, h)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	limit := pr.Req.Limit
	if limit == "" {
		limit = pr.Plan.Hosts
	}
	for _, h := range missing {
		limit += ":!" + h.Name
	}
	return refuse("rollout rollback "+shellQuote(pr.Req.PlanFile)+" --to "+shellQuote(name)+" --limit "+shellQuote(limit),
		"%s not in the inventory at %s, so there is nothing to roll back to for %s; nothing was touched",
		inventory.NameList(missing, 8, "… %d more")+map[bool]string{true: " is", false: " are"}[len(missing) == 1], plan.ShortRev(name), map[bool]string{true: "it", false: "them"}[len(missing) == 1])
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
	vh := h
	if pr.Release != nil {
		var err error
		if vh, err = pr.Release.HostAt(h, rev); err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("host %s: no variables at %s", h.Name, plan.ShortRev(rev)),
				Detail:  fmt.Sprintf("%v (a revision is rendered with the inventory and group_vars/host_vars it has)", err)}}
		}
	}
	spec, diags := pr.Plan.ForHost(vh, rev)
	if diags.HasErrors() {
		return nil, diags
	}
	t := &Target{Host: h, Spec: spec, Vars: vh, VarsSHA256: vh.VarsDigest()}
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
		out, rd := pr.Plan.RenderAt(pr.Repo, f, raw, vh, rev)
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
		Limited: pr.Req.Limit != "", Limit: pr.Req.Limit, Selected: len(pr.Targets), Batched: len(pr.BatchSpec) > 0})
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
