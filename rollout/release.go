package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/rollout-sh/rollout/inventory"
	"github.com/rollout-sh/rollout/plan"
)

// Release is what a revision pins besides the templates: the inventory,
// its group_vars/ and host_vars/ (beside it and beside the plan) and
// ansible.cfg, each read from the commit's tree when it lives in the
// config repository, and from the disk otherwise (not pinned: the
// warnings say so, and each host records a hash of the variables it was
// rendered with). It reads the same inventory at other revisions — a
// rollback's target, a host's deployed revision — so every revision is
// rendered with its own variables.
type Release struct {
	repo     *plan.Repo
	plan     *plan.Plan
	sources  []string           // the inventory's sources (OS paths)
	defaults inventory.Defaults // ansible.cfg's, read at the connection revision
	outside  []string           // sources read from the disk (outside the repository, or not in the commit)
	rev      string             // the revision inv was read at
	inv      *inventory.Inventory
	forks    int
	warnings []string

	pin  *plan.Pinned // what was read at rev, for WorkTree
	name string       // rev as the user wrote it

	mu sync.Mutex
	at map[string]releaseAt
}

type releaseAt struct {
	inv *inventory.Inventory
	err error
}

// openRelease reads ansible.cfg, the inventory and its variables at rev;
// name is the revision as the user wrote it, for the warnings.
func openRelease(repo *plan.Repo, p *plan.Plan, rev, name string) (*Release, error) {
	pin, err := repo.Pinned(rev)
	if err != nil {
		return nil, err
	}
	cfg, err := inventory.FindConfigIn(pin.WithFallback(), p.Dir)
	if err != nil {
		return nil, err
	}
	r := &Release{repo: repo, plan: p, rev: rev, defaults: cfg.Defaults, forks: cfg.Forks, at: map[string]releaseAt{}}
	p.AnsibleManaged = cfg.AnsibleManaged
	r.warnings = append(r.warnings, cfg.Warnings...)
	if _, in := pin.InRepo(cfg.Path); in && !pin.AtCommit(cfg.Path) && (p.Inventory == "" && len(cfg.Inventory) > 0 || cfg.Defaults != (inventory.Defaults{}) || cfg.AnsibleManaged != "") {
		r.warnings = append(r.warnings, fmt.Sprintf("%s is not in the repository at %s: it is read from the working tree, not pinned (it says where the inventory is, how hosts are reached and what ansible_managed renders as)", relTo(repo.Path(), cfg.Path), name))
	}
	r.sources = cfg.Inventory
	if p.Inventory != "" {
		r.sources = []string{p.Inventory}
	}
	if len(r.sources) == 0 {
		return nil, fmt.Errorf("plan %q sets no inventory, and no ansible.cfg names one: set inventory = \"inventory.ini\" in the plan", p.Name)
	}
	for _, src := range r.sources {
		if _, in := pin.InRepo(src); !in {
			r.outside = append(r.outside, src)
			r.warnings = append(r.warnings, fmt.Sprintf("inventory %s is outside the repository %s: its hosts and variables are read from the disk, not pinned by the revision; each host records a hash of the variables it was rendered with, and rollout status shows when they change", src, repo.Path()))
			continue
		}
		if !pin.AtCommit(src) {
			// with the group_vars/ and host_vars/ beside it: they belong
			// to the inventory the working tree has
			fromDisk(pin, src)
			r.outside = append(r.outside, src)
			r.warnings = append(r.warnings, fmt.Sprintf("inventory %s is not in the repository at %s: it is read from the working tree, not pinned; commit it and pin that commit to pin the hosts and their variables (git -C %s add %s)", src, name, repo.Path(), relTo(repo.Path(), src)))
		}
	}
	inv, err := r.load(pin)
	if err != nil {
		return nil, err
	}
	r.inv = inv
	r.at[rev] = releaseAt{inv: inv}
	r.pin, r.name = pin, name
	return r, nil
}

func (r *Release) load(fsys inventory.Files) (*inventory.Inventory, error) {
	return inventory.LoadWith(r.sources, inventory.Options{PlaybookDir: r.plan.Dir, Defaults: r.defaults, FS: fsys})
}

// diskRelease reads the inventory from the disk: a plan with no
// repository, or one whose revision cannot be resolved (Prepare refuses
// those; hosts, status and repair still show the hosts).
func diskRelease(p *plan.Plan) (*Release, error) {
	cfg, err := inventory.FindConfig(p.Dir)
	if err != nil {
		return nil, err
	}
	r := &Release{plan: p, defaults: cfg.Defaults, forks: cfg.Forks, at: map[string]releaseAt{}}
	p.AnsibleManaged = cfg.AnsibleManaged
	r.warnings = append(r.warnings, cfg.Warnings...)
	r.sources = cfg.Inventory
	if p.Inventory != "" {
		r.sources = []string{p.Inventory}
	}
	if len(r.sources) == 0 {
		return nil, fmt.Errorf("plan %q sets no inventory, and no ansible.cfg names one: set inventory = \"inventory.ini\" in the plan", p.Name)
	}
	r.outside = r.sources
	if r.inv, err = r.load(nil); err != nil {
		return nil, err
	}
	return r, nil
}

// Pinned reports whether the inventory is read from the revision (every
// source of it is in the repository at the commit).
func (r *Release) Pinned() bool { return len(r.outside) == 0 }

// WorkTree is the warning that names the files read at the revision that
// the work tree has otherwise — the inventory's, and the repository paths
// given (the templates rendered) — and the hosts only the work tree's
// inventory has. Nothing when they agree, or when nothing is pinned.
func (r *Release) WorkTree(paths ...string) []string {
	if r.pin == nil {
		return nil
	}
	for _, p := range paths {
		_, _ = r.pin.ReadFile(inventory.FSName(filepath.Join(r.pin.Root(), p)))
	}
	return r.workTreeWarning(r.pin, r.name)
}

// workTreeWarning names the files read at the revision that the work
// tree has otherwise, and the hosts only the work tree's inventory has.
func (r *Release) workTreeWarning(pin *plan.Pinned, name string) []string {
	changes := pin.Changes()
	if len(changes) == 0 {
		return nil
	}
	phrase := func(c plan.Change) string {
		switch {
		case c.Missing && c.How == "committed after":
			return "not in " + name + ", committed after it"
		case c.Missing:
			return "not in " + name + ", uncommitted"
		case c.How == "committed after":
			return "committed after " + name
		case c.How == "deleted":
			return "deleted in the working tree; " + name + "'s is used"
		}
		return c.How
	}
	var out []string
	if len(changes) == 1 {
		c := changes[0]
		what := "differs from " + name
		if c.Missing {
			what = "is not in " + name
		}
		how := c.How
		switch how {
		case "committed after":
			how = "committed after it"
		case "deleted":
			how = "deleted in the working tree; " + name + "'s is used"
		}
		out = append(out, fmt.Sprintf("%s %s (%s); not deployed", c.Path, what, how))
	} else {
		items := make([]string, len(changes))
		for i, c := range changes {
			items[i] = c.Path + " (" + phrase(c) + ")"
		}
		out = append(out, fmt.Sprintf("the working tree differs from %s in %s; not deployed", name, strings.Join(items, ", ")))
	}
	// hosts that only the work tree's inventory has are not targeted
	if disk, err := r.load(nil); err == nil {
		var only []string
		for _, h := range disk.Hosts() {
			if r.inv.Host(h.Name) == nil || r.inv.Host(h.Name).Implicit {
				only = append(only, h.Name)
			}
		}
		sort.Strings(only)
		if len(only) > 0 {
			verb := "are"
			if len(only) == 1 {
				verb = "is"
			}
			out = append(out, fmt.Sprintf("%s %s only in the working tree's inventory: not targeted (commit the inventory and pin that commit to roll %s)",
				strings.Join(only, ", "), verb, map[bool]string{true: "it", false: "them"}[len(only) == 1]))
		}
	}
	return out
}

// At is the inventory as the revision rev has it. An inventory that is
// not pinned is the same at every revision.
func (r *Release) At(rev string) (*inventory.Inventory, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if got, ok := r.at[rev]; ok {
		return got.inv, got.err
	}
	if r.repo == nil || !r.Pinned() && !r.readsRepo() {
		r.at[rev] = releaseAt{inv: r.inv}
		return r.inv, nil
	}
	pin, err := r.repo.Pinned(rev)
	if err != nil {
		r.at[rev] = releaseAt{err: err}
		return nil, err
	}
	for _, src := range r.outside {
		fromDisk(pin, src)
	}
	inv, err := r.load(pin)
	if err != nil {
		err = fmt.Errorf("at %s: %w", plan.ShortRev(rev), err)
	}
	r.at[rev] = releaseAt{inv: inv, err: err}
	return inv, err
}

// readsRepo reports whether anything the inventory loader reads may be
// in the repository: a pinned source, or group_vars beside the plan.
func (r *Release) readsRepo() bool {
	root := r.repo.Path()
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	dir := r.plan.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir == root || strings.HasPrefix(dir, root+string(filepath.Separator))
}

// HostAt is the host h (as the connection revision has it) with its
// groups and variables as revision rev has them: what rev is rendered
// with. How the host is reached (address, port, user, key, become,
// connection) stays h's: that is today's truth, whatever rev said.
func (r *Release) HostAt(h *inventory.Host, rev string) (*inventory.Host, error) {
	if rev == r.rev {
		return h, nil
	}
	inv, err := r.At(rev)
	if err != nil {
		return nil, err
	}
	if inv == r.inv {
		return h, nil
	}
	vh := inv.Host(h.Name)
	if vh == nil || vh.Implicit && !h.Implicit {
		return nil, fmt.Errorf("host %s is not in the inventory at %s", h.Name, plan.ShortRev(rev))
	}
	return vh.WithConnectionOf(h), nil
}

// fromDisk makes pin read an inventory source from the disk, with the
// group_vars/ and host_vars/ beside it.
func fromDisk(pin *plan.Pinned, src string) {
	pin.FromDisk(src)
	dir := src
	if !pin.AtCommit(src) {
		if st, err := os.Stat(src); err != nil || !st.IsDir() {
			dir = filepath.Dir(src)
		}
	}
	pin.FromDisk(filepath.Join(dir, "group_vars"))
	pin.FromDisk(filepath.Join(dir, "host_vars"))
}

func relTo(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil {
		return rel
	}
	return path
}
