package inventory

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The implicit groups every Ansible inventory has.
const (
	groupAll       = "all"
	groupUngrouped = "ungrouped"
)

// Inventory is a parsed Ansible inventory: hosts with their merged
// variables, and the groups they belong to.
type Inventory struct {
	hosts  []*Host
	byName map[string]*Host
	// members maps every group (including "all" and "ungrouped") to its
	// hosts, direct and through children, in inventory order.
	members  map[string][]*Host
	warnings []string
}

// Hosts returns every host in inventory order: the order in which hosts
// first appear in the file.
func (inv *Inventory) Hosts() []*Host {
	return append([]*Host(nil), inv.hosts...)
}

// Host returns the host with the given inventory name, or nil.
func (inv *Inventory) Host(name string) *Host {
	return inv.byName[name]
}

// GroupNames returns the names of the groups the inventory defines, sorted,
// without the implicit "all" and "ungrouped".
func (inv *Inventory) GroupNames() []string {
	names := make([]string, 0, len(inv.members))
	for name := range inv.members {
		if name != groupAll && name != groupUngrouped {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Warnings returns what Ansible would warn about and skip while reading
// the file (unknown YAML keys, a host and a group sharing a name), each
// prefixed with file:line where known.
func (inv *Inventory) Warnings() []string {
	return append([]string(nil), inv.warnings...)
}

// Load reads an Ansible inventory file. Files ending in .yml, .yaml or
// .json, and files whose first meaningful line looks like YAML (a "---"
// document marker, a "{", or a "key:" mapping entry), are read as YAML;
// everything else is read as INI.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	if isYAML(path, data) {
		return ParseYAML(path, data)
	}
	return ParseINI(path, data)
}

func isYAML(path string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml", ".json":
		return true
	case ".ini":
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line == "---" || line[0] == '{' {
			return true
		}
		if line[0] == '[' {
			return false
		}
		// A YAML mapping key: "all:", "web:" or "key: value". An INI host
		// line never has a colon followed by a space or the line end
		// ("host:" is not valid INI).
		first := strings.Fields(line)[0]
		return strings.HasSuffix(first, ":")
	}
	return false
}

// group is a group while the inventory is being built.
type group struct {
	name     string
	vars     map[string]any
	children []string
	parents  []string
	hosts    []string // direct members, in the order they were added
	priority int
}

// hostEntry is a host while the inventory is being built.
type hostEntry struct {
	name   string
	vars   map[string]any
	groups []string // direct groups
}

// builder collects groups and hosts the way Ansible's InventoryData does,
// then computes merged variables once everything is known.
type builder struct {
	filename string
	groups   map[string]*group
	hosts    map[string]*hostEntry
	order    []string
	warnings []string
}

func newBuilder(filename string) *builder {
	b := &builder{
		filename: filename,
		groups:   map[string]*group{},
		hosts:    map[string]*hostEntry{},
	}
	b.group(groupAll)
	b.group(groupUngrouped)
	return b
}

func (b *builder) warnf(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("%s:%d: %s", b.filename, line, msg)
	} else {
		msg = fmt.Sprintf("%s: %s", b.filename, msg)
	}
	b.warnings = append(b.warnings, msg)
}

// group returns the named group, creating it when absent.
func (b *builder) group(name string) *group {
	g, ok := b.groups[name]
	if !ok {
		g = &group{name: name, vars: map[string]any{}, priority: 1}
		b.groups[name] = g
	}
	return g
}

// addHost adds the host (if new) and makes it a member of groupName.
func (b *builder) addHost(name, groupName string) *hostEntry {
	h, ok := b.hosts[name]
	if !ok {
		h = &hostEntry{name: name, vars: map[string]any{}}
		b.hosts[name] = h
		b.order = append(b.order, name)
	}
	if groupName != "" && !contains(h.groups, groupName) {
		h.groups = append(h.groups, groupName)
		g := b.group(groupName)
		g.hosts = append(g.hosts, name)
	}
	return h
}

// addChild makes child a child group of parent, refusing loops as Ansible
// does.
func (b *builder) addChild(parent, child string) error {
	if child == groupAll {
		return fmt.Errorf("group %q cannot be a child of %q", groupAll, parent)
	}
	p, c := b.group(parent), b.group(child)
	if contains(p.children, child) {
		return nil
	}
	if parent == child || b.reaches(child, parent) {
		return fmt.Errorf("adding group %q as a child of %q creates a loop", child, parent)
	}
	p.children = append(p.children, child)
	c.parents = append(c.parents, parent)
	return nil
}

// reaches reports whether to is from or one of its descendants.
func (b *builder) reaches(from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(name string) bool {
		if name == to {
			return true
		}
		if seen[name] {
			return false
		}
		seen[name] = true
		for _, c := range b.groups[name].children {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// setGroupVar sets a group variable; ansible_group_priority sets the
// group's merge priority instead, as in Ansible.
func (b *builder) setGroupVar(groupName, key string, value any) error {
	g := b.group(groupName)
	if key == "ansible_group_priority" {
		n, ok := toInt(value)
		if !ok {
			return fmt.Errorf("group %s: ansible_group_priority: expected an integer, got %v", groupName, value)
		}
		g.priority = n
		return nil
	}
	g.vars[key] = value
	return nil
}

// finish reconciles the implicit groups and computes every host.
func (b *builder) finish() (*Inventory, error) {
	// Hosts in no group other than "all" are ungrouped; hosts that a parser
	// put into "ungrouped" but that belong elsewhere are not (Ansible's
	// reconcile_inventory).
	ancestors := b.ancestorSets()
	dropUngrouped := map[string]bool{}
	for _, name := range b.order {
		h := b.hosts[name]
		inOther := false
		for _, g := range h.groups {
			for a := range ancestors[g] {
				if a != groupAll && a != groupUngrouped {
					inOther = true
				}
			}
		}
		switch {
		case inOther && contains(h.groups, groupUngrouped):
			h.groups = remove(h.groups, groupUngrouped)
			dropUngrouped[name] = true
		case !inOther && !contains(h.groups, groupUngrouped):
			b.addHost(name, groupUngrouped)
		}
	}
	if len(dropUngrouped) > 0 {
		ug := b.groups[groupUngrouped]
		kept := ug.hosts[:0]
		for _, name := range ug.hosts {
			if !dropUngrouped[name] {
				kept = append(kept, name)
			}
		}
		ug.hosts = kept
	}
	for _, name := range b.groupNames() {
		if _, ok := b.hosts[name]; ok && name != groupAll && name != groupUngrouped {
			b.warnf(0, "found both a group and a host named %q; patterns select the host", name)
		}
	}

	depth := b.depths()
	inv := &Inventory{
		byName:   map[string]*Host{},
		members:  map[string][]*Host{},
		warnings: b.warnings,
	}
	for _, name := range b.order {
		h, err := b.host(b.hosts[name], ancestors, depth)
		if err != nil {
			return nil, fmt.Errorf("%s: host %s: %w", b.filename, name, err)
		}
		inv.hosts = append(inv.hosts, h)
		inv.byName[name] = h
	}
	for gname := range b.groups {
		inv.members[gname] = nil
	}
	for _, h := range inv.hosts {
		closure := map[string]bool{}
		for _, g := range b.hosts[h.Name].groups {
			for a := range ancestors[g] {
				closure[a] = true
			}
		}
		for a := range closure {
			inv.members[a] = append(inv.members[a], h)
		}
	}
	inv.members[groupAll] = append([]*Host(nil), inv.hosts...)
	return inv, nil
}

func (b *builder) groupNames() []string {
	names := make([]string, 0, len(b.groups))
	for name := range b.groups {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// ancestorSets maps each group to itself, its ancestors and "all".
func (b *builder) ancestorSets() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name := range b.groups {
		set := map[string]bool{groupAll: true}
		var walk func(string)
		walk = func(n string) {
			if set[n] && n != groupAll {
				return
			}
			set[n] = true
			for _, p := range b.groups[n].parents {
				walk(p)
			}
		}
		walk(name)
		out[name] = set
	}
	return out
}

// depths gives each group its Ansible depth: "all" is 0, a group without
// parents is a child of "all" (1), and a child is one deeper than its
// deepest parent.
func (b *builder) depths() map[string]int {
	depth := map[string]int{groupAll: 0}
	var calc func(string) int
	calc = func(name string) int {
		if d, ok := depth[name]; ok {
			return d
		}
		d := 1
		for _, p := range b.groups[name].parents {
			if pd := calc(p) + 1; pd > d {
				d = pd
			}
		}
		depth[name] = d
		return d
	}
	for name := range b.groups {
		calc(name)
	}
	return depth
}

// host merges variables (groups sorted by depth, priority, name; then the
// host's own) and maps the connection variables.
func (b *builder) host(e *hostEntry, ancestors map[string]map[string]bool, depth map[string]int) (*Host, error) {
	all := map[string]bool{groupAll: true}
	for _, g := range e.groups {
		for a := range ancestors[g] {
			all[a] = true
		}
	}
	groups := make([]*group, 0, len(all))
	for name := range all {
		groups = append(groups, b.groups[name])
	}
	sort.Slice(groups, func(i, j int) bool {
		gi, gj := groups[i], groups[j]
		if depth[gi.name] != depth[gj.name] {
			return depth[gi.name] < depth[gj.name]
		}
		if gi.priority != gj.priority {
			return gi.priority < gj.priority
		}
		return gi.name < gj.name
	})
	vars := map[string]any{}
	h := &Host{Name: e.name, Vars: vars, Groups: []string{}}
	for _, g := range groups {
		for k, v := range g.vars {
			vars[k] = v
		}
		if g.name != groupAll && g.name != groupUngrouped {
			h.Groups = append(h.Groups, g.name)
		}
	}
	for k, v := range e.vars {
		vars[k] = v
	}
	sort.Strings(h.Groups)
	if err := h.applyConnectionVars(); err != nil {
		return nil, err
	}
	return h, nil
}

// applyConnectionVars maps the ansible_* connection variables to fields.
// When both the current name and its old ansible_ssh_* alias are set, the
// current name wins, as in ansible-core's ssh connection plugin.
func (h *Host) applyConnectionVars() error {
	h.Address = h.Name
	if v, name, ok := firstVar(h.Vars, "ansible_host", "ansible_ssh_host"); ok {
		s, err := connString(name, v)
		if err != nil {
			return err
		}
		if s != "" {
			h.Address = s
		}
	}
	if v, name, ok := firstVar(h.Vars, "ansible_port", "ansible_ssh_port"); ok {
		n, ok := toInt(v)
		if !ok || n < 1 || n > 65535 {
			if s, isStr := v.(string); isStr && strings.Contains(s, "{{") {
				return fmt.Errorf("%s: jinja templates are not supported, got %q", name, s)
			}
			return fmt.Errorf("%s: expected a port number (1-65535), got %v", name, v)
		}
		h.Port = n
	}
	if v, name, ok := firstVar(h.Vars, "ansible_user", "ansible_ssh_user"); ok {
		s, err := connString(name, v)
		if err != nil {
			return err
		}
		h.User = s
	}
	if v, name, ok := firstVar(h.Vars, "ansible_ssh_private_key_file", "ansible_private_key_file"); ok {
		s, err := connString(name, v)
		if err != nil {
			return err
		}
		h.KeyFile = expandTilde(s)
	}
	if v, ok := h.Vars["ansible_become"]; ok {
		h.Become = truthy(v)
	}
	return nil
}

func firstVar(vars map[string]any, names ...string) (any, string, bool) {
	for _, n := range names {
		if v, ok := vars[n]; ok && v != nil {
			return v, n, true
		}
	}
	return nil, "", false
}

func connString(name string, v any) (string, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case int64, float64, bool:
		s = fmt.Sprint(t)
	default:
		return "", fmt.Errorf("%s: expected a string, got %T", name, v)
	}
	if strings.Contains(s, "{{") {
		return "", fmt.Errorf("%s: jinja templates are not supported, got %q", name, s)
	}
	return s, nil
}

// toInt converts an integral variable value (int64, integral float64, or a
// decimal string) to int.
func toInt(v any) (int, bool) {
	switch t := v.(type) {
	case int64:
		if t < math.MinInt32 || t > math.MaxInt32 {
			return 0, false
		}
		return int(t), true
	case int:
		return t, true
	case float64:
		if t != math.Trunc(t) || t < math.MinInt32 || t > math.MaxInt32 {
			return 0, false
		}
		return int(t), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 32)
		if err != nil {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}

// truthy is Ansible's boolean(): true for True, 1 and the strings
// y, yes, on, 1, true, t (any case); false for everything else.
func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case int64:
		return t == 1
	case int:
		return t == 1
	case float64:
		return t == 1
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "y", "yes", "on", "1", "true", "t", "1.0":
			return true
		}
	}
	return false
}

// expandTilde expands a leading ~ or ~user as os.path.expanduser does.
func expandTilde(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	rest := p[1:]
	name := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		name, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	var home string
	if name == "" {
		home = homeDir()
	} else if u, err := user.Lookup(name); err == nil {
		home = u.HomeDir
	}
	if home == "" {
		return p
	}
	return home + rest
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// parseError is a parse error at file:line.
type parseError struct {
	file string
	line int
	msg  string
}

func (e *parseError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s: %s", e.file, e.msg)
}

// ErrParse is wrapped by every inventory parse error.
var ErrParse = errors.New("invalid inventory")

func (e *parseError) Unwrap() error { return ErrParse }
