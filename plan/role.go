package plan

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/hashicorp/hcl/v2"

	"github.com/rollout-sh/rollout/internal/jinja"
	"github.com/rollout-sh/rollout/inventory"
)

// RevReader reads a file of the repository at a commit; *Repo is one.
type RevReader interface {
	ReadFile(commit, path string) ([]byte, error)
}

// dirReader is a RevReader that also tells directories apart (*Repo).
type dirReader interface {
	IsDir(commit, path string) (bool, error)
}

// IsDir reports whether path is a directory in the tree of commit.
func (r *Repo) IsDir(commit, p string) (bool, error) {
	clean, err := cleanRepoPath(p)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.repo.CommitObject(plumbing.NewHash(strings.ToLower(commit)))
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, r.unknown(commit))
	}
	tree, err := c.Tree()
	if err != nil {
		return false, fmt.Errorf("read %s@%s: tree: %w", clean, ShortRev(commit), err)
	}
	_, err = tree.Tree(clean)
	return err == nil, nil
}

// RenderAt is Render with the repository at hand, for what a Jinja2
// template reads beyond its own bytes at the revision: the role's
// defaults/main.yml and vars/main.yml (when the file block names a role)
// and the files of lookup('file', ...) and lookup('template', ...).
// Without a repository (nil) a role is an error and lookups of files
// fail.
func (p *Plan) RenderAt(repo RevReader, f FileSpec, src []byte, h *inventory.Host, revision string) ([]byte, hcl.Diagnostics) {
	if !f.Template || f.Engine != EngineJinja2 || p == nil || h == nil {
		return p.Render(f, src, h, revision)
	}
	name := f.Source + "@" + ShortRev(revision)
	sc := &inventory.Scope{Extra: map[string]any{"rollout_revision": revision}, Shared: p.shared(revision, f.Role), AnsibleManaged: p.AnsibleManaged}
	if f.Role != "" {
		l, diags := p.roleLayers(repo, f, revision)
		if diags.HasErrors() {
			return nil, forHost(diags, "While rendering for host %q: ", h.Name)
		}
		sc.Defaults, sc.Vars = l.defaults, l.vars
	}
	lk := &lookups{repo: repo, rev: revision, role: f.Role, host: h, scope: sc}
	sc.Extra["lookup"] = jinja.Lookup(lk.lookup, false)
	sc.Extra["query"] = jinja.Lookup(lk.lookup, true)
	sc.Extra["q"] = sc.Extra["query"]
	return renderJinjaScope(name, src, h, sc)
}

// roleCache keeps each role's variable files as read at a revision, so a
// fleet reads and parses them once.
type roleCache struct {
	mu     sync.Mutex
	m      map[string]*roleVars
	shared map[string]*inventory.Shared // hosts' own rendered variables, per revision and role
}

// shared is the store of rendered host variables that every render at
// revision with role shares (nil without a parsed plan).
func (p *Plan) shared(revision, role string) *inventory.Shared {
	if p.impl == nil {
		return nil
	}
	c := &p.impl.roles
	c.mu.Lock()
	defer c.mu.Unlock()
	key := revision + "\x00" + role
	s := c.shared[key]
	if s == nil {
		s = &inventory.Shared{}
		if c.shared == nil {
			c.shared = map[string]*inventory.Shared{}
		}
		c.shared[key] = s
	}
	return s
}

type roleVars struct {
	once           sync.Once
	defaults, vars inventory.Layer
	diags          hcl.Diagnostics
}

// roleLayers reads f.Role's defaults and vars at revision.
func (p *Plan) roleLayers(repo RevReader, f FileSpec, revision string) (*roleVars, hcl.Diagnostics) {
	var e *roleVars
	if p.impl != nil {
		c := &p.impl.roles
		c.mu.Lock()
		key := revision + "\x00" + f.Role
		if e = c.m[key]; e == nil {
			e = &roleVars{}
			if c.m == nil {
				c.m = map[string]*roleVars{}
			}
			c.m[key] = e
		}
		c.mu.Unlock()
	} else {
		e = &roleVars{}
	}
	e.once.Do(func() { e.read(repo, f, revision) })
	return e, e.diags
}

func (e *roleVars) read(repo RevReader, f FileSpec, revision string) {
	fail := func(summary, detail string) {
		e.diags = append(e.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: f.roleRange})
	}
	if repo == nil {
		fail("Role not readable", fmt.Sprintf("file %q names role %q, but no repository was given to read it from.", f.Name, f.Role))
		return
	}
	if dr, ok := repo.(dirReader); ok {
		isDir, err := dr.IsDir(revision, f.Role)
		if err != nil {
			fail("Role not readable", fmt.Sprintf("file %q: role %q: %v.", f.Name, f.Role, err))
			return
		}
		if !isDir {
			fail("Role not in the repository", fmt.Sprintf("file %q names role %q, which is not a directory of the repository at %s (roles are read from the pinned commit, never from the working tree: commit the role, then pin the new commit).", f.Name, f.Role, ShortRev(revision)))
			return
		}
	}
	for _, part := range []struct {
		dir string
		to  *inventory.Layer
	}{{"defaults", &e.defaults}, {"vars", &e.vars}} {
		// ansible-core's role loader tries main, main.yml, main.yaml,
		// main.json in its vars directories
		for _, file := range []string{"main.yml", "main.yaml", "main.json", "main"} {
			p := path.Join(f.Role, part.dir, file)
			b, err := repo.ReadFile(revision, p)
			if errors.Is(err, ErrNoSuchFile) {
				continue
			}
			if err != nil {
				fail("Role not readable", fmt.Sprintf("file %q: role %q: %v.", f.Name, f.Role, err))
				return
			}
			l, err := inventory.ParseVarsFile(p, b)
			if err != nil {
				fail("Invalid role variables", fmt.Sprintf("file %q: role %q: %v (read at %s).", f.Name, f.Role, err, ShortRev(revision)))
				return
			}
			*part.to = l
			break
		}
	}
}

// lookups answers lookup() and query() in a template: file and template
// read from the repository at the revision, searched as ansible-core
// searches a role task's paths (the role's files/ or templates/, the
// role's directory, then the same at the repository's root); env and
// pipe are refused, as is every other plugin.
type lookups struct {
	repo  RevReader
	rev   string
	role  string
	host  *inventory.Host
	scope *inventory.Scope
	depth int
}

func (l *lookups) lookup(kind, term string, kwargs map[string]any) (any, error) {
	switch kind {
	case "file", "template":
	case "env":
		return nil, errors.New("refused: the controller's environment is not pinned by the revision, so the same revision would render differently on another machine; put the value in group_vars or host_vars")
	case "pipe":
		return nil, errors.New("refused: a command's output on the controller is not pinned by the revision (and rollout runs no commands while rendering); put the value in group_vars or host_vars")
	default:
		return nil, fmt.Errorf("the %s lookup is not supported: rollout has the file and template lookups, read from the revision", kind)
	}
	if l.repo == nil {
		return nil, errors.New("no repository to read from")
	}
	if path.IsAbs(term) {
		return nil, fmt.Errorf("refused: %s is outside the repository, so not pinned by the revision; use a path inside the repository", term)
	}
	sub := "files"
	if kind == "template" {
		sub = "templates"
	}
	var tried []string
	var found string
	var b []byte
	for _, base := range l.searchPath() {
		for _, cand := range []string{path.Join(base, sub, term), path.Join(base, term)} {
			if _, err := cleanRepoPath(cand); err != nil {
				continue
			}
			data, err := l.repo.ReadFile(l.rev, cand)
			if errors.Is(err, ErrNoSuchFile) {
				tried = append(tried, cand)
				continue
			}
			if err != nil {
				return nil, err
			}
			found, b = cand, data
			break
		}
		if found != "" {
			break
		}
	}
	if found == "" {
		return nil, fmt.Errorf("not found in the repository at %s (searched %s)", ShortRev(l.rev), strings.Join(tried, ", "))
	}
	if kind == "file" {
		s := string(b)
		if v, ok := kwargs["rstrip"].(bool); !ok || v {
			s = strings.TrimRight(s, " \t\r\n\v\f")
		}
		if v, ok := kwargs["lstrip"].(bool); ok && v {
			s = strings.TrimLeft(s, " \t\r\n\v\f")
		}
		return s, nil
	}
	if l.depth >= 8 {
		return nil, errors.New("templates looked up from each other more than 8 deep")
	}
	l.depth++
	defer func() { l.depth-- }()
	out, err := l.host.RenderTemplate(found+"@"+ShortRev(l.rev), b, l.scope)
	if err != nil {
		return nil, err
	}
	return string(out), nil
}

// searchPath is where lookups look, first to last: the role's directory,
// then the repository's root (standing for the playbook's directory).
func (l *lookups) searchPath() []string {
	if l.role == "" {
		return []string{"."}
	}
	return []string{l.role, "."}
}
