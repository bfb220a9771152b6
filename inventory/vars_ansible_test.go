package inventory

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// varsProject is an Ansible project whose variables are templates at
// every depth, with a role's defaults and vars; each template of
// varsTemplates reads them one way. TestVariablesMatchAnsible renders
// every template for every host with ansible-playbook (ansible-core) and
// with RenderTemplate, and requires the same bytes, or both to fail.
var varsProject = map[string]string{
	"inventory.ini": "[web]\nweb1 port=8080\nweb2 port=8081\n[canary]\nweb2\n",
	"group_vars/all.yml": `ntp_area: ""
ntp_servers: ["0{{ '.' + ntp_area if ntp_area else '' }}.pool.ntp.org", "1.{{ ntp_area or 'pool' }}.ntp.org"]
url: "http://{{ inventory_hostname }}:{{ port }}"
upstream:
  name: "{{ inventory_hostname_short }}"
  urls: ["{{ url }}/a", {deep: "{{ url }}/b"}]
chain1: "{{ chain2 }}!"
chain2: "{{ chain3 | upper }}"
chain3: "{{ port }}"
a_list: "{{ [1, 'two', true] }}"
a_dict: "{{ {'k': port} }}"
a_bool: "{{ port == 8080 }}"
a_num: "{{ port + 1 }}"
peer: "{{ hostvars['web2'].url }}"
undef_inside: "{{ nope }}"
via_undef: "x-{{ undef_inside }}"
nested_undef: [{a: "{{ nope }}"}]
cyc_a: "{{ cyc_b }}"
cyc_b: "{{ cyc_a }}"
bad_filter: "{{ 1 | no_such_filter }}"
both: groupvars
uses_default: "{{ role_default }}-inv"
`,
	"group_vars/canary.yml": "ntp_area: de\n",
	"roles/r/defaults/main.yml": `role_default: "rd-{{ port }}"
port: 1
both: default
`,
	"roles/r/vars/main.yml": "role_var: \"rv-{{ both }}\"\n",
}

var varsTemplates = []string{
	"{{ ntp_servers | join(' ') }}\n",
	"{% for s in ntp_servers %}server {{ s }} iburst\n{% endfor %}",
	"{{ upstream.name }} {{ upstream.urls[0] }} {{ upstream.urls[1].deep }}\n",
	"{{ chain1 }}\n",
	"{{ a_list | length }} {{ a_list[1] }} {{ a_dict.k }} {{ a_bool is sameas true }} {{ a_num }}\n",
	"{{ hostvars['web2'].url }} {{ hostvars.web2.upstream.urls[1].deep }} {{ peer }}\n",
	"{% for o in groups['web'] %}{{ hostvars[o]['url'] }};{% endfor %}end\n",
	"{{ 'url' in hostvars['web2'] }}\n",
	"{{ undef_inside is defined }} {{ undef_inside | default('d') }} {{ via_undef | default('dv') }}\n",
	"{{ undef_inside }}\n",
	"{{ via_undef }}\n",
	"{{ nested_undef[0].a }}\n",
	"{{ cyc_a }}\n",
	"{{ 1 if true else bad_filter }}\n",
	"{{ both }} {{ role_default }} {{ role_var }} {{ uses_default }} {{ port }}\n",
	"{{ hostvars['web1'].both }} {{ hostvars['web1'].role_default is defined }}\n",
	// last: where rollout is stricter (ansible-core gives the raw text)
	"{{ hostvars['web1'].undef_inside }}\n",
}

func TestVariablesMatchAnsible(t *testing.T) {
	fleet.RequireTool(t, "ansible-playbook")
	dir := t.TempDir()
	files := map[string]string{}
	for k, v := range varsProject {
		files[k] = v
	}
	var tasks strings.Builder
	for i, src := range varsTemplates {
		files[fmt.Sprintf("roles/r/templates/t%02d.j2", i)] = src
		fmt.Fprintf(&tasks, "- template: {src: t%02d.j2, dest: \"{{ out }}/{{ inventory_hostname }}-%02d\"}\n  ignore_errors: true\n", i, i)
	}
	files["roles/r/tasks/main.yml"] = tasks.String()
	files["site.yml"] = "- hosts: web\n  gather_facts: no\n  roles: [r]\n"
	files["ansible.cfg"] = "[defaults]\n"
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("ansible-playbook", "-i", "inventory.ini", "site.yml", "-e", "out="+out,
		"-e", "ansible_connection=local", "-e", "ansible_python_interpreter=/usr/bin/python3")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"), "ANSIBLE_NOCOLOR=1")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, o)
	}

	inv, err := Load(filepath.Join(dir, "inventory.ini"))
	if err != nil {
		t.Fatal(err)
	}
	sc := &Scope{}
	for _, l := range []struct {
		file string
		to   *Layer
	}{{"roles/r/defaults/main.yml", &sc.Defaults}, {"roles/r/vars/main.yml", &sc.Vars}} {
		if *l.to, err = ParseVarsFile(l.file, []byte(varsProject[l.file])); err != nil {
			t.Fatal(err)
		}
	}
	bothFailed := 0
	last := len(varsTemplates) - 1
	for _, h := range inv.Hosts() {
		for i, src := range varsTemplates {
			want, aerr := os.ReadFile(filepath.Join(out, fmt.Sprintf("%s-%02d", h.Name, i)))
			got, rerr := h.RenderTemplate(fmt.Sprintf("t%02d.j2", i), []byte(src), sc)
			if i == last {
				// ansible-core templates hostvars entries with
				// fail_on_undefined off: its raw text reaches the file
				if aerr != nil || string(want) != "{{ nope }}\n" || rerr == nil {
					t.Errorf("%s %q: ansible %q (%v), rollout %q (%v); want ansible's raw text and a rollout error", h.Name, src, want, aerr, got, rerr)
				}
				continue
			}
			switch {
			case aerr != nil && rerr != nil:
				bothFailed++
			case aerr != nil:
				t.Errorf("%s %q: ansible fails, rollout renders %q", h.Name, src, got)
			case rerr != nil:
				t.Errorf("%s %q: ansible renders %q, rollout fails: %v", h.Name, src, want, rerr)
			case string(got) != string(want):
				t.Errorf("%s %q: rollout %q, ansible %q", h.Name, src, got, want)
			}
		}
	}
	// the failing templates fail on both sides, for both hosts
	if bothFailed != 2*5 {
		t.Errorf("%d renders failed on both sides, want 10", bothFailed)
	}
	names, _ := filepath.Glob(filepath.Join(out, "*"))
	sort.Strings(names)
	if len(names) != 2*(len(varsTemplates)-5) {
		t.Errorf("ansible wrote %d files, want %d: %v", len(names), 2*(len(varsTemplates)-5), names)
	}
}
