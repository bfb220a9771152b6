package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// An Ansible role used as it is (role = "roles/app"): its defaults and
// vars, variables that are templates inside lists and dicts, chains of
// them and other hosts' through hostvars (which hold the inventory's
// variables, not the role's, as in ansible-core), and a lookup of the role's
// files/. Every host's deployed config must be byte for byte what
// ansible-playbook writes with the same role, inventory and group_vars.
func TestAnsibleRoleProject(t *testing.T) {
	fleet.RequireTool(t, "ansible-playbook")
	e := setup(t, 3, 1)
	proj := filepath.Join(e.dir, "project")
	files := map[string]string{
		"inventory.ini":         "[web]\nweb1 ansible_host=127.0.0.1\nweb2 ansible_host=127.0.0.1\nweb3 ansible_host=127.0.0.1\n[canary]\nweb2\n",
		"group_vars/all.yml":    "app_version: 2\nntp_area: ''\napp_url: \"http://127.0.0.1:{{ app_port }}/\"\n",
		"group_vars/canary.yml": "ntp_area: de\n",
		"roles/app/defaults/main.yml": `app_name: demo
app_version: 1
app_listen: "127.0.0.1:{{ app_port }}"
ntp_servers: ["0{{ '.' + ntp_area if ntp_area else '' }}.pool.ntp.org", "1.{{ ntp_area or 'pool' }}.ntp.org"]
app_message:
  text: "hello from {{ inventory_hostname }}"
  tags: ["{{ app_name }}-{{ app_version }}", "{{ 'canary' if 'canary' in group_names else 'main' }}"]
app_peers: "{{ groups['web'] | reject('equalto', inventory_hostname) | list }}"
`,
		"roles/app/vars/main.yml":  "app_release: \"r{{ app_version }}-{{ app_message.tags[1] }}\"\n",
		"roles/app/files/banner":   "managed by the app role\n",
		"roles/app/tasks/main.yml": "- template: {src: app.conf.j2, dest: \"{{ render_dir }}/{{ inventory_hostname }}.conf\"}\n",
		"roles/app/templates/app.conf.j2": `# {{ app_name | upper }} {{ app_release }} ({{ lookup('file', 'banner') }})
# ntp: {{ ntp_servers | join(' ') }}
# tags: {{ app_message.tags | join(',') }}
# peers:{% for h in app_peers %} {{ hostvars[h].app_url }}{% endfor %}

version = {{ app_version }}
message = "{{ app_message.text }}"
listen = {{ app_listen }}
`,
		"render.yml": "- hosts: web\n  gather_facts: no\n  roles: [app]\n",
	}
	for _, h := range e.f.Hosts {
		files["host_vars/"+h.Name+".yml"] = fmt.Sprintf("ansible_port: %d\nansible_user: root\nansible_ssh_private_key_file: %s\nroot: %s\napp_port: %d\n", h.SSHPort, e.f.ClientKey, h.Root, h.AppPort)
	}
	project{t, proj}.write(files)
	project{t, proj}.commit("v1")

	plan := fmt.Sprintf(`plan "role" {
  inventory = "inventory.ini"
  hosts     = "web"
  revision  = "v1"
  batch     = [1]
  state_dir = "${host.vars.root}/state"
%s
  file "app.conf" {
    source   = "roles/app/templates/app.conf.j2"
    template = "jinja2"
    role     = "roles/app"
    dest     = "${host.vars.root}/etc/app.conf"
    validate = "%s -check -config %%s"
  }
  restart = "DEMO_APP=%s %s ${host.vars.root}"
  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "200ms"
    healthy_for = "1s"
    deadline    = "20s"
    pid_file    = "${host.vars.root}/run/app.pid"
  }
}
`, e.drain, e.app, e.app, e.restart)
	e.dir, e.plan = proj, filepath.Join(proj, "rollout.hcl")
	if err := os.WriteFile(e.plan, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.rollout("apply", "--yes", "--ui", "plain")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// what ansible-playbook writes with the role (connection=local)
	out := t.TempDir()
	cmd := exec.Command("ansible-playbook", "-i", "inventory.ini", "render.yml",
		"-e", "render_dir="+out, "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=/usr/bin/python3")
	cmd.Dir = proj
	cfg := filepath.Join(t.TempDir(), "ansible.cfg") // no settings: ansible's defaults
	if err := os.WriteFile(cfg, []byte("[defaults]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_NOCOLOR=1")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, o)
	}
	for _, h := range e.f.Hosts {
		want, err := os.ReadFile(filepath.Join(out, h.Name+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(h.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: rollout deployed\n%s\nansible-playbook wrote\n%s", h.Name, got, want)
		}
		if strings.Contains(string(got), "{{") {
			t.Errorf("%s: raw Jinja2 deployed: %s", h.Name, got)
		}
	}
	if got, _ := os.ReadFile(e.f.Hosts[1].ConfigPath()); !strings.Contains(string(got), "0.de.pool.ntp.org") || !strings.Contains(string(got), "r2-canary") {
		t.Errorf("web2 (canary) config lacks its group's values: %s", got)
	}
}
