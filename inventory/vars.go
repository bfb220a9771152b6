package inventory

import (
	"sort"
	"strings"

	"github.com/rollout-sh/rollout/internal/jinja"
)

// renderVar renders a connection variable holding Jinja2 with the host's
// variables, as Ansible does when it connects.
func renderVar(h *Host, name, s string) (string, error) {
	vars := h.TemplateVars()
	out, err := jinja.Render(name, []byte(s), vars)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// TemplateVars are the names a Jinja2 template sees for this host, as in
// Ansible: every merged host variable, inventory_hostname,
// inventory_hostname_short, group_names, groups (every group's hosts, in
// Ansible's order) and hostvars (every host's merged variables). String
// values that hold Jinja2 themselves are rendered first, as Ansible
// renders variables lazily (top-level variables of this host only;
// hostvars of other hosts are given as written).
func (h *Host) TemplateVars() map[string]any {
	vars := make(map[string]any, len(h.Vars)+8)
	for k, v := range h.Vars {
		vars[k] = v
	}
	vars["inventory_hostname"] = h.Name
	vars["inventory_hostname_short"], _, _ = strings.Cut(h.Name, ".")
	names := []string{}
	if h.inv != nil {
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
	if h.inv == nil {
		names = append(names, h.Groups...)
	}
	sort.Strings(names)
	vars["group_names"] = toAnyList(names)
	groups := map[string]any{}
	hostvars := map[string]any{}
	if h.inv != nil {
		for _, g := range h.inv.groupOrder {
			groups[g] = toAnyList(h.inv.GroupHosts(g))
		}
		for _, o := range h.inv.hostOrder {
			hostvars[o.Name] = magicVars(o)
		}
	}
	if _, ok := hostvars[h.Name]; !ok {
		hostvars[h.Name] = magicVars(h)
	}
	vars["groups"] = groups
	vars["hostvars"] = hostvars
	// render variables that are templates themselves (a few passes, so
	// that a variable may use another)
	for pass := 0; pass < 5; pass++ {
		changed := false
		for k, v := range vars {
			s, ok := v.(string)
			if !ok || !(strings.Contains(s, "{{") || strings.Contains(s, "{%")) {
				continue
			}
			out, err := jinja.Render(k, []byte(s), vars)
			if err != nil {
				continue
			}
			vars[k] = string(out)
			changed = true
		}
		if !changed {
			break
		}
	}
	return vars
}

func magicVars(h *Host) map[string]any {
	m := make(map[string]any, len(h.Vars)+2)
	for k, v := range h.Vars {
		m[k] = v
	}
	m["inventory_hostname"] = h.Name
	m["inventory_hostname_short"], _, _ = strings.Cut(h.Name, ".")
	return m
}

func toAnyList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
