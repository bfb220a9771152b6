package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rollout-sh/rollout/internal/jinja"
)

// Scope is what a Jinja2 template sees beside a host's own variables, with
// ansible-core's precedence: a role's defaults below the inventory's
// variables, a role's vars above them, and Extra (rollout_revision) above
// everything. The zero Scope adds nothing.
type Scope struct {
	Defaults Layer
	Vars     Layer
	Extra    map[string]any
	// Shared, when set, keeps hosts' own variables (what hostvars gives,
	// and everything when there is no role) rendered by one render for
	// the next ones: a fleet renders each host's variable once, not once
	// per host that reads it. Every scope given the same Shared must
	// have the same Extra.
	Shared *Shared
	// AnsibleManaged is ansible.cfg's ansible_managed for the
	// template ("" = ansible-core's default, "Ansible managed").
	AnsibleManaged string
}

// Shared is a store of rendered variables for renders that share a
// scope; it is safe for concurrent use.
type Shared struct {
	mu        sync.Mutex
	m         map[cellKey]any
	hostNames map[*Host][]string
}

func (s *Shared) get(k cellKey) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}

// names is names(h), computed once.
func (s *Shared) names(h *Host, names func(*Host) []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.hostNames[h]; ok {
		return n
	}
	if s.hostNames == nil {
		s.hostNames = map[*Host][]string{}
	}
	n := names(h)
	s.hostNames[h] = n
	return n
}

func (s *Shared) put(k cellKey, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[cellKey]any{}
	}
	s.m[k] = v
}

// VarError is a variable that could not be rendered for a host: an
// undefined name or a failing expression inside its value (at any depth),
// a variable it uses that failed, or a cycle. Its raw text is never used
// instead.
type VarError struct {
	Host   string
	Var    string
	Origin string // file:line of the value, "" when unknown
	Msg    string // what went wrong, in Jinja2's words
	// Undefined is a failure because a name (or an attribute or item) is
	// undefined, inside the variable or one it uses. As in ansible-core,
	// such a variable is undefined to the template (an error only where
	// it is used; `is defined` is false; default applies); any other
	// failure (a cycle, a failing filter) fails every template that
	// names the variable.
	Undefined bool
	// Used is the template line that read the variable, when a template
	// failed because of it.
	Used *jinja.Error

	id int // its place in the resolver's errs, for String
}

// ErrVariable is wrapped by every *VarError.
var ErrVariable = errors.New("variable failed to render")

func (e *VarError) Error() string {
	s := fmt.Sprintf("variable %q", e.Var)
	if e.Origin != "" {
		s += " (" + e.Origin + ")"
	}
	s += fmt.Sprintf(" of host %q: %s", e.Host, e.Msg)
	if e.Used != nil {
		s += " (used by " + e.Used.Name
		if e.Used.Line > 0 {
			s += fmt.Sprintf(":%d", e.Used.Line)
		}
		s += ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrVariable) hold.
func (e *VarError) Unwrap() error { return ErrVariable }

// String is what the template engine prints when a failed variable
// reaches it in a way it does not treat as an error (inside a list
// literal, or in a filter's message): a marker that cannot come from a
// template, which the resolver finds in the output or the message and
// turns back into this error. (fmt prints Error, not String, for an
// error.)
func (e *VarError) String() string { return fmt.Sprintf("\x00%d\x00", e.id) }

var markerRE = regexp.MustCompile("\x00([0-9]+)\x00")

// RenderTemplate renders the Jinja2 template src (named name in errors)
// for h, as ansible-core renders a template: every variable is itself a
// template, at every depth (strings inside lists and dicts, chains of
// variables, other hosts' variables through hostvars), rendered when the
// template can read it. A variable that fails to render is an error (a
// *VarError naming the variable, its file:line and the host) when the
// template uses it, and nothing when it does not; `x is defined` is false
// and `x | default(...)` takes the default for such a variable, as in
// Ansible. sc may be nil.
func (h *Host) RenderTemplate(name string, src []byte, sc *Scope) ([]byte, error) {
	r := newResolver(sc)
	ctx := r.context(h, jinja.Names(src))
	if ve := hardFailure(ctx); ve != nil {
		c := *ve
		c.Used = &jinja.Error{Name: name}
		return nil, &c
	}
	var opts jinja.Options
	if sc != nil {
		opts.AnsibleManaged = sc.AnsibleManaged
	}
	out, err := jinja.RenderWith(name, src, ctx, opts)
	if err == nil {
		if ve := r.marked(out); ve != nil {
			c := *ve
			c.Used = &jinja.Error{Name: name, Line: 1 + bytes.Count(out[:markerRE.FindIndex(out)[0]], []byte("\n"))}
			return nil, &c
		}
		return out, nil
	}
	if ve := r.cause(err); ve != nil {
		c := *ve
		errors.As(err, &c.Used)
		return nil, &c
	}
	return nil, err
}

// renderVar renders a connection variable holding Jinja2 with the host's
// variables, as Ansible does when it connects.
func renderVar(h *Host, name, s string) (string, error) {
	out, err := h.RenderTemplate(name, []byte(s), nil)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// TemplateVars are the names a Jinja2 template sees for this host, as in
// Ansible: every merged host variable, inventory_hostname,
// inventory_hostname_short, group_names, groups (every group's hosts, in
// Ansible's order) and hostvars (every host's variables, rendered when
// read). Variables holding templates are rendered (at every depth); one
// that fails is an error value (a *VarError) that fails any template
// using it. RenderTemplate renders only what a template names: prefer it.
func (h *Host) TemplateVars() map[string]any {
	r := newResolver(nil)
	return r.context(h, r.names(h))
}

// resolver renders the variables of hosts for one template, each once,
// when first read.
type resolver struct {
	sc    *Scope
	cells map[cellKey]*cell
	stack []cellKey
	errs  *[]*VarError // every failure handed out, to name the cause of a failed render
	hv    jinja.LazyMap
	// bare renders the variables hostvars gives: a host's own, without a
	// role's defaults and vars (ansible-core's hostvars do not hold
	// them); it is r itself when the scope has no role.
	bare *resolver
}

type cellKey struct {
	host *Host
	name string
}

type cell struct {
	busy    bool // being rendered (further up the stack)
	tainted bool // read a variable that was being rendered: not final
	val     any
}

var noScope = &Scope{}

func newResolver(sc *Scope) *resolver {
	if sc == nil {
		sc = noScope
	}
	r := &resolver{sc: sc, cells: map[cellKey]*cell{}, errs: &[]*VarError{}}
	r.bare = r
	if len(sc.Defaults.Vars) > 0 || len(sc.Vars.Vars) > 0 {
		r.bare = &resolver{sc: &Scope{Extra: sc.Extra, Shared: sc.Shared}, cells: map[cellKey]*cell{}, errs: r.errs}
		r.bare.bare = r.bare
	}
	return r
}

// context is the template scope of h for a template that may read names.
func (r *resolver) context(h *Host, names []string) map[string]any {
	ctx := make(map[string]any, len(names))
	for _, n := range names {
		if v, ok := r.lookup(h, n); ok {
			ctx[n] = v
		}
	}
	return ctx
}

// names are every name h's templates can read, sorted.
func (r *resolver) names(h *Host) []string {
	if r.sc.Shared != nil && r.bare == r {
		return r.sc.Shared.names(h, r.namesOf)
	}
	return r.namesOf(h)
}

func (r *resolver) namesOf(h *Host) []string {
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for k := range r.sc.Defaults.Vars {
		add(k)
	}
	for k := range h.Vars {
		add(k)
	}
	for k := range r.sc.Vars.Vars {
		add(k)
	}
	for _, k := range magicNames {
		add(k)
	}
	for k := range r.sc.Extra {
		add(k)
	}
	sort.Strings(out)
	return out
}

var magicNames = []string{"inventory_hostname", "inventory_hostname_short", "group_names", "groups", "hostvars"}

// lookup is the value of name for h: a magic variable, an Extra name, or
// a variable rendered (a *VarError when it fails).
func (r *resolver) lookup(h *Host, name string) (any, bool) {
	switch name {
	case "inventory_hostname":
		return h.Name, true
	case "inventory_hostname_short":
		short, _, _ := strings.Cut(h.Name, ".")
		return short, true
	case "group_names":
		return toAnyList(groupNames(h)), true
	case "groups":
		groups := map[string]any{}
		if h.inv != nil {
			for _, g := range h.inv.groupOrder {
				groups[g] = toAnyList(h.inv.GroupHosts(g))
			}
		}
		return groups, true
	case "hostvars":
		return r.hostvars(h), true
	}
	if v, ok := r.sc.Extra[name]; ok {
		return v, true
	}
	return r.resolve(h, name)
}

// raw is name's value for h before rendering, with its origin, by
// precedence: role vars, the host's merged variables, role defaults.
func (r *resolver) raw(h *Host, name string) (any, string, bool) {
	if v, ok := r.sc.Vars.Vars[name]; ok {
		return v, r.sc.Vars.Origins[name], true
	}
	if v, ok := h.Vars[name]; ok {
		return v, h.origins[name], true
	}
	if v, ok := r.sc.Defaults.Vars[name]; ok {
		return v, r.sc.Defaults.Origins[name], true
	}
	return nil, "", false
}

// resolve renders h's variable name, once.
func (r *resolver) resolve(h *Host, name string) (any, bool) {
	raw, origin, ok := r.raw(h, name)
	if !ok {
		return nil, false
	}
	if !holdsTemplate(raw) {
		return raw, true
	}
	key := cellKey{h, name}
	c := r.cells[key]
	if c != nil && !c.busy {
		return c.val, true
	}
	if c != nil {
		return r.cycle(key, origin), true
	}
	shared := r.sc.Shared
	if r.bare != r {
		shared = nil // with a role's variables: this render's own
	}
	if shared != nil {
		if v, ok := shared.get(key); ok {
			if ve, isErr := v.(*VarError); isErr {
				// a failure rendered by another render: one of ours now,
				// so that its marker points into our errs
				cp := *ve
				cp.id = len(*r.errs)
				*r.errs = append(*r.errs, &cp)
				v = &cp
			}
			r.cells[key] = &cell{val: v}
			return v, true
		}
	}
	c = &cell{busy: true}
	r.cells[key] = c
	r.stack = append(r.stack, key)
	v := r.render(h, name, origin, raw)
	r.stack = r.stack[:len(r.stack)-1]
	c.busy = false
	if c.tainted {
		// it read a variable still being rendered: render it again when
		// read again, once that one has its value
		delete(r.cells, key)
	} else {
		c.val = v
		if shared != nil {
			shared.put(key, v)
		}
	}
	return v, true
}

// cycle is the error of a variable read while it is being rendered: the
// chain of variables from it back to it.
func (r *resolver) cycle(key cellKey, origin string) *VarError {
	i := len(r.stack) - 1
	for i > 0 && r.stack[i] != key {
		i--
	}
	var chain []string
	for _, k := range r.stack[i:] {
		chain = append(chain, r.label(key.host, k))
		if k != key {
			r.cells[k].tainted = true
		}
	}
	chain = append(chain, r.label(key.host, key))
	return r.fail(key.host, key.name, origin, "it is defined in terms of itself: "+strings.Join(chain, " → "), false)
}

func (r *resolver) label(from *Host, k cellKey) string {
	if k.host == from {
		return k.name
	}
	return fmt.Sprintf("hostvars[%q].%s", k.host.Name, k.name)
}

// undefinedRE matches the errors of an undefined name, attribute or item.
var undefinedRE = regexp.MustCompile(`is undefined|\(undefined\)|(?:item|attribute) '[^']*' not found`)

// hardFailure is a variable of ctx that failed otherwise than by being
// undefined, or nil: naming it in a template is an error, as ansible-core
// renders every variable a template names before rendering the template.
func hardFailure(ctx map[string]any) *VarError {
	names := make([]string, 0, len(ctx))
	for k := range ctx {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if ve, ok := ctx[k].(*VarError); ok && !ve.Undefined {
			return ve
		}
	}
	return nil
}

func (r *resolver) fail(h *Host, name, origin, msg string, undefined bool) *VarError {
	e := &VarError{Host: h.Name, Var: name, Origin: origin, Msg: msg, Undefined: undefined, id: len(*r.errs)}
	*r.errs = append(*r.errs, e)
	return e
}

// render renders every string of v that holds a template; the first
// failure is the whole variable's value.
func (r *resolver) render(h *Host, name, origin string, v any) any {
	switch t := v.(type) {
	case string:
		if !jinja.HasSyntax(t) {
			return t
		}
		ctx := r.context(h, jinja.Names([]byte(t)))
		if ve := hardFailure(ctx); ve != nil {
			return r.fail(h, name, origin, "it uses "+ve.Error(), false)
		}
		out, err := jinja.Render(name, []byte(t), ctx)
		if err == nil {
			if ve := r.marked(out); ve != nil {
				err = ve
			}
		}
		if err != nil {
			if ve := r.cause(err); ve != nil {
				return r.fail(h, name, origin, "it uses "+ve.Error(), ve.Undefined)
			}
			msg := err.Error()
			var je *jinja.Error
			if errors.As(err, &je) {
				msg = je.Msg
			}
			return r.fail(h, name, origin, msg, undefinedRE.MatchString(msg))
		}
		return evalConcat(string(out))
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = r.render(h, name, origin, x)
			if ve, ok := out[i].(*VarError); ok {
				return ve
			}
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = r.render(h, name, origin, x)
			if ve, ok := out[k].(*VarError); ok {
				return ve
			}
		}
		return out
	}
	return v
}

// cause is the failed variable whose error err holds (the outermost, when
// one failed because of another), or nil.
func (r *resolver) cause(err error) *VarError {
	msg := err.Error()
	var best *VarError
	for _, e := range *r.errs {
		if s := e.Error(); strings.Contains(msg, s) && (best == nil || len(s) > len(best.Error())) {
			best = e
		}
	}
	if m := r.marked([]byte(msg)); m != nil && (best == nil || len(m.Error()) > len(best.Error())) {
		best = m
	}
	return best
}

// marked is the failed variable whose marker (VarError.String) is in out,
// or nil.
func (r *resolver) marked(out []byte) *VarError {
	m := markerRE.FindSubmatch(out)
	if m == nil {
		return nil
	}
	id, err := strconv.Atoi(string(m[1]))
	if err != nil || id >= len(*r.errs) {
		return nil
	}
	return (*r.errs)[id]
}

// holdsTemplate reports whether a string anywhere in v holds Jinja2.
func holdsTemplate(v any) bool {
	switch t := v.(type) {
	case string:
		return jinja.HasSyntax(t)
	case []any:
		for _, x := range t {
			if holdsTemplate(x) {
				return true
			}
		}
	case map[string]any:
		for _, x := range t {
			if holdsTemplate(x) {
				return true
			}
		}
	}
	return false
}

// hostvars is Ansible's hostvars: every host's variables, each rendered
// (for that host) only when a template reads it by name.
func (r *resolver) hostvars(h *Host) jinja.LazyMap {
	if r.bare != r {
		return r.bare.hostvars(h)
	}
	if r.hv != nil {
		return r.hv
	}
	hosts := []*Host{h}
	if h.inv != nil {
		hosts = h.inv.hostOrder
		if h.inv.byName[h.Name] != h {
			hosts = append(append([]*Host(nil), hosts...), h)
		}
	}
	r.hv = make(jinja.LazyMap, len(hosts))
	for _, o := range hosts {
		r.hv[o.Name] = &deferredHost{r: r, host: o}
	}
	return r.hv
}

// deferredHost is one host of hostvars: the mapping of its variables,
// made when a template reads the host.
type deferredHost struct {
	r    *resolver
	host *Host
	m    jinja.LazyMap
}

func (d *deferredHost) Value() any {
	if d.m == nil {
		names := d.r.names(d.host)
		d.m = make(jinja.LazyMap, len(names))
		cells := make([]deferred, len(names))
		for i, k := range names {
			if k != "hostvars" && k != "groups" {
				cells[i] = deferred{r: d.r, host: d.host, name: k}
				d.m[k] = &cells[i]
			}
		}
	}
	return d.m
}

func (d *deferredHost) Error() string {
	return fmt.Sprintf("hostvars was iterated over: rollout gives a host's variables only when a template reads the host by name, as hostvars[%q]", d.host.Name)
}

// deferred is one variable of hostvars, rendered when read.
type deferred struct {
	r    *resolver
	host *Host
	name string
}

func (d *deferred) Value() any {
	v, _ := d.r.lookup(d.host, d.name)
	return v
}

func (d *deferred) Error() string {
	return fmt.Sprintf("hostvars[%q] was iterated over: rollout renders a host's variable only when a template reads it by name, as hostvars[%q].%s", d.host.Name, d.host.Name, d.name)
}

// groupNames are the groups h is in (not "all"), sorted.
func groupNames(h *Host) []string {
	names := []string{}
	if h.inv == nil {
		names = append(names, h.Groups...)
	} else {
		for _, g := range h.inv.groupOrder {
			if g == groupAll {
				continue
			}
			for _, m := range h.inv.members[g] {
				if m == h {
					names = append(names, g)
					break
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

func toAnyList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
