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
	hosts  []*Host // the "all" group's hosts, in Ansible's order
	byName map[string]*Host
	// members maps every group (including "all" and "ungrouped") to its
	// hosts, direct and through children, in Ansible's order (a group's
	// own hosts, then its children's, level by level).
	members map[string][]*Host
	// groupOrder and hostOrder are the order in which groups and hosts
	// were first defined: the order Ansible matches pattern terms in.
	groupOrder []string
	hostOrder  []*Host
	// implicit holds Ansible's implicit localhost under each of its names
	// (localhost, 127.0.0.1, ::1) the inventory does not define: selected
	// when a pattern names it and matches nothing else.
	implicit map[string]*Host
	warnings []string
}

// Hosts returns every host in the order Ansible lists the "all" group:
// hosts defined directly under all, then the ungrouped hosts, then each
// top-level group's hosts in the order the groups were defined (a
// group's own hosts before its children's).
func (inv *Inventory) Hosts() []*Host {
	return append([]*Host(nil), inv.hosts...)
}

// Host returns the host with the given inventory name, or nil. The
// implicit localhost is returned for "localhost", "127.0.0.1" and "::1"
// when the inventory does not define them.
func (inv *Inventory) Host(name string) *Host {
	if h := inv.byName[name]; h != nil {
		return h
	}
	return inv.implicit[name]
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

// GroupHosts returns the names of a group's hosts in Ansible's order
// (what Ansible's "groups" variable holds), or nil for an unknown group.
func (inv *Inventory) GroupHosts(group string) []string {
	hs, ok := inv.members[group]
	if !ok {
		return nil
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// Warnings returns what Ansible would warn about and skip while reading
// the inventory (unknown YAML keys, a host and a group sharing a name,
// ansible.cfg settings rollout does not honour), each prefixed with
// file:line where known.
func (inv *Inventory) Warnings() []string {
	return append([]string(nil), inv.warnings...)
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
	origins  map[string]string // variable name to file:line, where known
	children []string
	parents  []string
	hosts    []string // direct members, in the order they were added
	priority int
}

// hostEntry is a host while the inventory is being built.
type hostEntry struct {
	name    string
	vars    map[string]any
	origins map[string]string // variable name to file:line, where known
	groups  []string          // direct groups
}

// set sets a host variable written at origin (file:line, or "").
func (h *hostEntry) set(key string, value any, origin string) {
	h.vars[key] = value
	if origin != "" {
		if h.origins == nil {
			h.origins = map[string]string{}
		}
		h.origins[key] = origin
	}
}

// varLayer is one directory's group_vars and host_vars: entity name to
// variables.
type varLayer struct {
	groups map[string]map[string]any
	hosts  map[string]map[string]any
	// origins map a group's or host's variable to the file:line it was
	// read from
	groupOrigins map[string]map[string]string
	hostOrigins  map[string]map[string]string
}

// builder collects groups and hosts the way Ansible's InventoryData does,
// then computes merged variables once everything is known.
type builder struct {
	filename   string
	groups     map[string]*group
	groupOrder []string
	hosts      map[string]*hostEntry
	order      []string
	warnings   []string
	// invVars are the group_vars/host_vars beside each inventory source,
	// in source order; playVars those beside the plan (the playbook).
	invVars  []varLayer
	playVars *varLayer
	defaults Defaults
	files    reader // where files are read
}

func newBuilder(filename string) *builder {
	b := &builder{
		filename: filename,
		groups:   map[string]*group{},
		hosts:    map[string]*hostEntry{},
	}
	b.group(groupAll)
	b.group(groupUngrouped)
	// as in ansible-core's InventoryData: "ungrouped" is the first child
	// of "all"
	_ = b.addChild(groupAll, groupUngrouped)
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
		b.groupOrder = append(b.groupOrder, name)
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

// at is file:line of the file being read, for a variable's origin.
func (b *builder) at(line int) string {
	if line <= 0 {
		return b.filename
	}
	return fmt.Sprintf("%s:%d", b.filename, line)
}

// setGroupVar sets a group variable written at line of the file being
// read; ansible_group_priority sets the group's merge priority instead,
// as in Ansible.
func (b *builder) setGroupVar(groupName, key string, value any, line int) error {
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
	if g.origins == nil {
		g.origins = map[string]string{}
	}
	g.origins[key] = b.at(line)
	return nil
}

// reconcile does what ansible-core's reconcile_inventory does once every
// source is read: groups without a parent become children of "all" (in
// the order they were defined), hosts in no other group become
// ungrouped, and hosts a parser put into "ungrouped" that belong
// elsewhere leave it.
func (b *builder) reconcile() {
	for _, name := range b.groupOrder {
		if name != groupAll && len(b.groups[name].parents) == 0 {
			_ = b.addChild(groupAll, name)
		}
	}
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
}

// finish reconciles the implicit groups and computes every host.
func (b *builder) finish() (*Inventory, error) {
	b.reconcile()
	for _, name := range b.groupNames() {
		if _, ok := b.hosts[name]; ok && name != groupAll && name != groupUngrouped {
			b.warnf(0, "found both a group and a host named %q; patterns select the host", name)
		}
	}

	ancestors := b.ancestorSets()
	depth := b.depths()
	inv := &Inventory{
		byName:     map[string]*Host{},
		members:    map[string][]*Host{},
		groupOrder: append([]string(nil), b.groupOrder...),
	}
	for _, name := range b.order {
		h, err := b.host(b.hosts[name], ancestors, depth)
		if err != nil {
			return nil, fmt.Errorf("%s: host %s: %w", b.filename, name, err)
		}
		inv.hostOrder = append(inv.hostOrder, h)
		inv.byName[name] = h
	}
	for _, gname := range b.groupOrder {
		members := []*Host{}
		for _, hname := range b.groupHosts(gname) {
			members = append(members, inv.byName[hname])
		}
		inv.members[gname] = members
	}
	inv.hosts = inv.members[groupAll]
	inv.implicit = map[string]*Host{}
	for _, name := range localhostNames {
		if _, defined := b.hosts[name]; defined {
			continue
		}
		h, err := b.implicitLocalhost(name)
		if err != nil {
			return nil, fmt.Errorf("%s: implicit %s: %w", b.filename, name, err)
		}
		h.inv = inv
		inv.implicit[name] = h
	}
	for _, h := range inv.hostOrder {
		h.inv = inv
	}
	inv.warnings = b.warnings
	return inv, nil
}

// groupHosts is ansible-core's Group.get_hosts(): the group's own hosts,
// then those of its descendants, level by level, each host once.
//
// ansible-core walks the levels below the direct children through a
// Python set, so when two groups of one level both have children, the
// order of those grandchildren's hosts can change from one run to the
// next. rollout keeps it stable: within a level, groups come in the order
// of their parents and, under one parent, in the order they were added.
func (b *builder) groupHosts(name string) []string {
	var out []string
	seenHost := map[string]bool{}
	seenGroup := map[string]bool{name: true}
	level := []string{name}
	for len(level) > 0 {
		var next []string
		for _, gname := range level {
			for _, h := range b.groups[gname].hosts {
				if !seenHost[h] {
					seenHost[h] = true
					out = append(out, h)
				}
			}
			for _, c := range b.groups[gname].children {
				if !seenGroup[c] {
					seenGroup[c] = true
					next = append(next, c)
				}
			}
		}
		level = next
	}
	return out
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

// host merges the host's variables (see mergeVars) and maps the
// connection variables.
func (b *builder) host(e *hostEntry, ancestors map[string]map[string]bool, depth map[string]int) (*Host, error) {
	all := map[string]bool{}
	for _, g := range e.groups {
		for a := range ancestors[g] {
			all[a] = true
		}
	}
	delete(all, groupAll)
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
	h := &Host{Name: e.name, Groups: []string{}}
	for _, g := range groups {
		if g.name != groupUngrouped {
			h.Groups = append(h.Groups, g.name)
		}
	}
	sort.Strings(h.Groups)
	h.Vars, h.origins = b.mergeVars(groups, e.name, e.vars, e.origins)
	if err := h.applyConnectionVars(b.defaults); err != nil {
		return nil, err
	}
	return h, nil
}

// mergeVars layers variables with ansible-core's precedence (its default
// VARIABLE_PRECEDENCE; lowest first): the inventory's own variables of
// "all", then of the host's groups (sorted by depth, ansible_group_priority
// and name); group_vars/all beside the inventory, then beside the plan;
// group_vars/<group> beside the inventory, then beside the plan (groups in
// the same order); the inventory's own host variables; host_vars/<host>
// beside the inventory, then beside the plan. A later layer replaces a
// whole value (hash_behaviour = replace).
//
// The second map gives, for each variable, the file:line of the value
// that won (where known), for errors naming a variable.
func (b *builder) mergeVars(groups []*group, hostName string, hostVars map[string]any, hostOrigins map[string]string) (map[string]any, map[string]string) {
	vars := map[string]any{}
	origins := map[string]string{}
	merge := func(m map[string]any, o map[string]string) {
		for k, v := range m {
			vars[k] = v
			if o[k] != "" {
				origins[k] = o[k]
			} else {
				delete(origins, k)
			}
		}
	}
	merge(b.groups[groupAll].vars, b.groups[groupAll].origins)
	for _, g := range groups {
		merge(g.vars, g.origins)
	}
	for _, l := range b.invVars {
		merge(l.groups[groupAll], l.groupOrigins[groupAll])
	}
	if b.playVars != nil {
		merge(b.playVars.groups[groupAll], b.playVars.groupOrigins[groupAll])
	}
	for _, l := range b.invVars {
		for _, g := range groups {
			merge(l.groups[g.name], l.groupOrigins[g.name])
		}
	}
	if b.playVars != nil {
		for _, g := range groups {
			merge(b.playVars.groups[g.name], b.playVars.groupOrigins[g.name])
		}
	}
	merge(hostVars, hostOrigins)
	for _, l := range b.invVars {
		merge(l.hosts[hostName], l.hostOrigins[hostName])
	}
	if b.playVars != nil {
		merge(b.playVars.hosts[hostName], b.playVars.hostOrigins[hostName])
	}
	return vars, origins
}

// implicitLocalhost is ansible-core's implicit localhost: in no group (and
// so not selected by "all"), run on this machine, with the variables of
// "all".
func (b *builder) implicitLocalhost(name string) (*Host, error) {
	h := &Host{Name: name, Groups: []string{}, Implicit: true}
	h.Vars, h.origins = b.mergeVars(nil, name, map[string]any{"ansible_connection": ConnectionLocal}, nil)
	if err := h.applyConnectionVars(b.defaults); err != nil {
		return nil, err
	}
	return h, nil
}

// localhostNames are ansible-core's C.LOCALHOST.
var localhostNames = []string{"localhost", "127.0.0.1", "::1"}

// The connections rollout makes: SSH (its own client), or commands run on
// this machine for ansible_connection=local. Every other
// ansible_connection is refused by CheckConnection.
const (
	ConnectionSSH   = "ssh"
	ConnectionLocal = "local"
)

// applyConnectionVars maps the ansible_* connection variables to fields.
// When both a current name and its legacy ansible_ssh_* alias are set,
// the alias wins, as in ansible-core (the ssh connection plugin lists
// ansible_host before ansible_ssh_host, and the last one set wins).
// Connection values holding Jinja2 ({{ ... }}) are rendered with the
// host's variables, as Ansible does when it connects.
func (h *Host) applyConnectionVars(d Defaults) error {
	h.Address = h.Name
	h.Connection = ConnectionSSH
	if v, name, ok := lastVar(h.Vars, "ansible_connection"); ok {
		s, err := h.connString(name, v)
		if err != nil {
			return err
		}
		switch s {
		case "", "ssh", "smart", "paramiko", "paramiko_ssh":
		default:
			h.Connection = s
		}
	}
	if v, name, ok := lastVar(h.Vars, "ansible_host", "ansible_ssh_host"); ok {
		s, err := h.connString(name, v)
		if err != nil {
			return err
		}
		if s != "" {
			h.Address = s
		}
	}
	if v, name, ok := lastVar(h.Vars, "ansible_port", "ansible_ssh_port"); ok {
		if s, isStr := v.(string); isStr && strings.Contains(s, "{{") {
			r, err := h.connString(name, v)
			if err != nil {
				return err
			}
			v = r
		}
		n, ok := toInt(v)
		if !ok || n < 1 || n > 65535 {
			return fmt.Errorf("%s: expected a port number (1-65535), got %v", name, v)
		}
		h.Port = n
	}
	h.User = d.RemoteUser
	if v, name, ok := lastVar(h.Vars, "ansible_user", "ansible_ssh_user"); ok {
		s, err := h.connString(name, v)
		if err != nil {
			return err
		}
		h.User = s
	}
	h.KeyFile = d.PrivateKeyFile
	if v, name, ok := lastVar(h.Vars, "ansible_private_key_file", "ansible_ssh_private_key_file"); ok {
		s, err := h.connString(name, v)
		if err != nil {
			return err
		}
		h.KeyFile = expandTilde(s)
	}
	if v, ok := h.Vars["ansible_become"]; ok {
		h.Become = truthy(v)
	}
	if v, name, ok := lastVar(h.Vars, "ansible_become_user"); ok {
		s, err := h.connString(name, v)
		if err != nil {
			return err
		}
		h.BecomeUser = s
	}
	if v, name, ok := lastVar(h.Vars, "ansible_become_method"); ok {
		s, err := h.connString(name, v)
		if err != nil {
			return err
		}
		h.BecomeMethod = s
	}
	return nil
}

// CheckConnection reports a host rollout cannot reach the way Ansible
// would: a connection plugin other than ssh or local, or a become method
// other than sudo. The error names the host and the variable.
func (h *Host) CheckConnection() error {
	switch h.Connection {
	case ConnectionSSH, ConnectionLocal:
	default:
		return fmt.Errorf("host %s: ansible_connection=%s is not supported: rollout reaches hosts over SSH, or runs ansible_connection=local hosts on this machine; it will not contact this host over SSH instead", h.Name, h.Connection)
	}
	if h.BecomeMethod != "" && h.BecomeMethod != "sudo" {
		return fmt.Errorf("host %s: ansible_become_method=%s is not supported: rollout becomes another user with sudo -n only", h.Name, h.BecomeMethod)
	}
	return nil
}

// lastVar returns the value of the last of names that is set (ansible-core
// reads a connection option from a list of variables; the last one
// defined wins).
func lastVar(vars map[string]any, names ...string) (any, string, bool) {
	for i := len(names) - 1; i >= 0; i-- {
		if v, ok := vars[names[i]]; ok && v != nil {
			return v, names[i], true
		}
	}
	return nil, "", false
}

func (h *Host) connString(name string, v any) (string, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case int64, float64, bool:
		s = fmt.Sprint(t)
	default:
		return "", fmt.Errorf("%s: expected a string, got %T", name, v)
	}
	if strings.Contains(s, "{{") || strings.Contains(s, "{%") {
		out, err := renderVar(h, name, s)
		if err != nil {
			return "", err
		}
		s = out
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
