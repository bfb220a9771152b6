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

// An Ansible project as operators have them, rolled on the real fleet
// with one rollout.hcl added beside the playbook and no file moved: an
// inventory directory (INI and YAML files), ansible.cfg naming it and the
// remote user and key, group_vars/all.yml, group_vars/web/main.yml,
// host_vars/ with the connection port, and a role's Jinja2 template. Every
// host's deployed config must be byte for byte what ansible's template
// module renders from the same inputs.
func TestAnsibleLayoutProject(t *testing.T) {
	fleet.RequireTool(t, "ansible")
	e := setup(t, 3, 1)
	proj := filepath.Join(e.dir, "project")
	files := map[string]string{
		"ansible.cfg": fmt.Sprintf(`[defaults]
inventory = inventory/
remote_user = root
private_key_file = %s
host_key_checking = False
`, e.f.ClientKey),
		"inventory/01-web":        "[web]\nweb1 ansible_host=127.0.0.1\nweb2 ansible_host=127.0.0.1\nweb3 ansible_host=127.0.0.1\n",
		"inventory/02-canary.yml": "all:\n  children:\n    canary:\n      hosts:\n        web2:\n",
		"group_vars/all.yml":      "app_name: demo\napp_version: 2\ngreeting: hello\n",
		"group_vars/web/main.yml": "tier: '  Frontend '\napp_debug: 'yes'\nsettings:\n  a: 1\n  b: [x, y]\n",
		"roles/app/templates/app.conf.j2": `# {{ app_name | upper }} for {{ inventory_hostname }} in {{ group_names | join(',') }}; peers: {% for h in groups['web'] %}{{ hostvars[h]['inventory_hostname'] }}:{{ hostvars[h]['app_port'] }}{% if not loop.last %},{% endif %}{% endfor %}

# settings: {{ settings | to_json }}
# b64: {{ greeting | b64encode }}, name: {{ inventory_hostname | regex_replace('^web', 'node-') }}
{% if app_debug | bool %}
# debug enabled
{% endif %}
version = {{ app_version | int }}
message = "{{ greeting | default('hi') }} from {{ inventory_hostname_short }} ({{ tier | lower | trim }})"
listen = 127.0.0.1:{{ app_port }}
`,
		"site.yml": "- hosts: web\n  serial: 1\n  roles: [app]\n",
	}
	for _, h := range e.f.Hosts {
		files["host_vars/"+h.Name+".yml"] = fmt.Sprintf("ansible_port: %d\nroot: %s\napp_port: %d\n", h.SSHPort, h.Root, h.AppPort)
	}
	project{t, proj}.write(files)
	project{t, proj}.commit("v1")

	// the one file added: the plan, beside the playbook (no inventory
	// attribute: ansible.cfg names it)
	plan := fmt.Sprintf(`plan "ansible" {
  hosts     = "web"
  revision  = "v1"
  batch     = [1]
  state_dir = "${host.vars.root}/state"
%s
  file "app.conf" {
    source   = "roles/app/templates/app.conf.j2"
    template = "jinja2"
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
	t.Setenv("ANSIBLE_CONFIG", "") // ./ansible.cfg, as ansible finds it

	r := e.rollout("hosts", "--ui", "json", "--vars")
	// JSON lines (docs/json-events.md "host"): compact objects
	if r.code != 0 || !strings.Contains(r.stdout, `"address":"127.0.0.1"`) || !strings.Contains(r.stdout, `"user":"root"`) ||
		!strings.Contains(r.stdout, `"key_file":"`+e.f.ClientKey+`"`) || !strings.Contains(r.stdout, fmt.Sprintf(`"port":%d`, e.f.Hosts[0].SSHPort)) {
		t.Fatalf("rollout hosts: %+v", r)
	}
	if !strings.Contains(r.stderr, "host_key_checking = False is not honoured") {
		t.Errorf("no warning about host_key_checking: %s", r.stderr)
	}

	r = e.rollout("apply", "--yes", "--ui", "plain")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "host_key_checking = False is not honoured") {
		t.Errorf("apply did not warn about host_key_checking: %s", r.stderr)
	}

	// what ansible's template module renders from the same inputs, for
	// each host, into a temporary directory (connection=local)
	out := t.TempDir()
	for _, h := range e.f.Hosts {
		want := filepath.Join(out, h.Name+".conf")
		cmd := exec.Command("ansible", h.Name, "--playbook-dir", proj, "-m", "template",
			"-a", "src="+filepath.Join(proj, "roles/app/templates/app.conf.j2")+" dest="+want,
			"-e", "ansible_connection=local", "-e", "ansible_python_interpreter=/usr/bin/python3")
		cmd.Dir = proj
		cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(proj, "ansible.cfg"), "ANSIBLE_NOCOLOR=1")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ansible -m template for %s: %v\n%s", h.Name, err, o)
		}
		wantBytes, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(h.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(wantBytes) {
			t.Errorf("%s: rollout deployed\n%s\nansible renders\n%s", h.Name, got, wantBytes)
		}
		if !strings.Contains(string(got), "in canary,web") && h.Name == "web2" {
			t.Errorf("web2 config lacks its groups: %s", got)
		}
	}
}
