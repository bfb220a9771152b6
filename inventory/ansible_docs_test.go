package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// writeTree writes files (path → content) under a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Ansible's "Patterns: targeting hosts and groups" guide, with the answers
// it gives. Where the guide and ansible-core 2.14 disagree, rollout follows
// ansible-core and the case says so.
func TestDocPatternsGuide(t *testing.T) {
	inv := mustINI(t, `
[webservers]
cobweb
webbing
weber

[dbservers]
one.example.com
two.example.com

[atlanta]
webbing
one.example.com

[staging]
cobweb
one.example.com
two.example.com

[phoenix]
two.example.com

[other]
192.0.2.10
192.0.2.11
host1
host2
`)
	tests := []struct {
		pattern string
		want    []string // nil: no host (an error)
	}{
		// "Common patterns" table
		{"all", []string{"cobweb", "webbing", "weber", "one.example.com", "two.example.com", "192.0.2.10", "192.0.2.11", "host1", "host2"}},
		{"*", []string{"cobweb", "webbing", "weber", "one.example.com", "two.example.com", "192.0.2.10", "192.0.2.11", "host1", "host2"}},
		{"host1", []string{"host1"}},
		{"host1:host2", []string{"host1", "host2"}},
		{"host1,host2", []string{"host1", "host2"}},
		{"webservers", []string{"cobweb", "webbing", "weber"}},
		{"webservers:dbservers", []string{"cobweb", "webbing", "weber", "one.example.com", "two.example.com"}},
		{"webservers:!atlanta", []string{"cobweb", "weber"}},
		{"webservers:&staging", []string{"cobweb"}},
		// "all machines in the groups webservers and dbservers ... if they
		// are in the group staging also, but not ... in the group phoenix"
		{"webservers:dbservers:&staging:!phoenix", []string{"cobweb", "one.example.com"}},
		// wildcards
		{"*.example.com", []string{"one.example.com", "two.example.com"}},
		{"192.0.*", []string{"192.0.2.10", "192.0.2.11"}},
		{"one*.com:dbservers", []string{"one.example.com", "two.example.com"}},
		// regular expressions
		{`~(web|db).*\.example\.com`, nil},
		{`~(one|two)\.example\.com`, []string{"one.example.com", "two.example.com"}},
		// subscripts: "webservers[0] == cobweb", "[-1] == weber",
		// "[0:2] == cobweb,webbing,weber", "[1:] == webbing,weber"
		{"webservers[0]", []string{"cobweb"}},
		{"webservers[-1]", []string{"weber"}},
		{"webservers[0:2]", []string{"cobweb", "webbing", "weber"}},
		{"webservers[1:]", []string{"webbing", "weber"}},
		// the guide also lists "webservers[:3] == cobweb,webbing,weber",
		// but ansible-core 2.14 matches no host for it (its subscript
		// needs a start index); rollout does as ansible-core does
		{"webservers[:3]", nil},
		// "the order of the patterns does not matter" for & and !
		{"webservers:!atlanta:&staging", []string{"cobweb"}},
		{"!atlanta:webservers", []string{"cobweb", "weber"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := inv.Select(tt.pattern)
			if tt.want == nil {
				if !errors.Is(err, ErrNoMatch) {
					t.Fatalf("got %v, %v; want no hosts", names(got), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("got %v, want %v", names(got), tt.want)
			}
		})
	}
}

// Ansible's "Understanding variable precedence" list, items 3 to 9
// (inventory file group vars < inventory group_vars/all < playbook
// group_vars/all < inventory group_vars/* < playbook group_vars/* <
// inventory file host vars < inventory host_vars/* < playbook
// host_vars/*): v is set at every level; removing the winner each time
// shows the next one wins.
func TestDocVariablePrecedence(t *testing.T) {
	levels := []struct {
		name  string
		files map[string]string
	}{
		{"playbook host_vars", map[string]string{"play/host_vars/h1.yml": "v: playbook host_vars\n"}},
		{"inventory host_vars", map[string]string{"inv/host_vars/h1.yml": "v: inventory host_vars\n"}},
		{"inventory file host vars", map[string]string{"inv/hosts.host": "v='inventory file host vars'"}},
		{"playbook group_vars/*", map[string]string{"play/group_vars/web.yml": "v: playbook group_vars/*\n"}},
		{"inventory group_vars/*", map[string]string{"inv/group_vars/web.yml": "v: inventory group_vars/*\n"}},
		{"playbook group_vars/all", map[string]string{"play/group_vars/all.yml": "v: playbook group_vars/all\n"}},
		{"inventory group_vars/all", map[string]string{"inv/group_vars/all.yml": "v: inventory group_vars/all\n"}},
		{"inventory file group vars", map[string]string{"inv/hosts.group": "v='inventory file group vars'"}},
	}
	for i := range levels {
		files := map[string]string{}
		hostVar, groupVar := "", ""
		for _, l := range levels[i:] {
			for k, v := range l.files {
				switch k {
				case "inv/hosts.host":
					hostVar = " " + v
				case "inv/hosts.group":
					groupVar = "[web:vars]\n" + v + "\n"
				default:
					files[k] = v
				}
			}
		}
		files["inv/hosts"] = "[web]\nh1" + hostVar + "\n" + groupVar
		dir := writeTree(t, files)
		inv, err := loadBoth(t, dir, []string{filepath.Join(dir, "inv", "hosts")}, Options{PlaybookDir: filepath.Join(dir, "play")})
		if err != nil {
			t.Fatal(err)
		}
		if got := inv.Host("h1").Vars["v"]; got != levels[i].name {
			t.Errorf("with levels %d.. set, v = %v, want %q", i, got, levels[i].name)
		}
	}
}

// Ansible's inventory guide, "How variables are merged": a child group's
// variables win over its parent's, groups of the same depth merge in name
// order, and ansible_group_priority (the guide's a_group/b_group example)
// changes that order.
func TestDocGroupMergeOrder(t *testing.T) {
	inv := mustYAML(t, `
a_group:
  hosts:
    h1:
  vars:
    testvar: a
    ansible_group_priority: 10
b_group:
  hosts:
    h1:
  vars:
    testvar: b
c_group:
  hosts:
    h2:
  vars:
    testvar: c
d_group:
  hosts:
    h2:
  vars:
    testvar: d
`)
	if got := inv.Host("h1").Vars["testvar"]; got != "a" {
		t.Errorf("h1 testvar = %v, want a (a_group has the higher priority)", got)
	}
	if got := inv.Host("h2").Vars["testvar"]; got != "d" {
		t.Errorf("h2 testvar = %v, want d (same priority: by name, the last wins)", got)
	}
}

// Ansible's inventory guide, "Organizing host and group variables":
// group_vars/raleigh may be a file (with or without .yml, .yaml, .json) or
// a directory of files, read in name order.
func TestDocGroupVarsDirectories(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hosts":                               "[raleigh]\nh1\n[atlanta]\nh2\n",
		"group_vars/raleigh/db_settings":      "db_primary: db1\nshared: db_settings\n",
		"group_vars/raleigh/cluster_settings": "cluster: c1\nshared: cluster_settings\n",
		"group_vars/atlanta.json":             `{"ntp_server": "acme.example.org"}`,
		"host_vars/h1":                        "ansible_port: 2201\n",
	})
	inv, err := loadBoth(t, dir, []string{filepath.Join(dir, "hosts")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := inv.Host("h1"), inv.Host("h2")
	// db_settings sorts after cluster_settings: its value wins
	if h1.Vars["db_primary"] != "db1" || h1.Vars["cluster"] != "c1" || h1.Vars["shared"] != "db_settings" || h1.Port != 2201 {
		t.Errorf("h1 = %+v", h1)
	}
	if h2.Vars["ntp_server"] != "acme.example.org" {
		t.Errorf("h2 = %+v", h2)
	}
}
