package main

import (
	"strings"
	"testing"
)

// rollout hosts --vars shows each host's merged variables (group_vars
// included) with secret-looking values redacted, unless --show-secrets.
func TestHostsVarsRedactsSecrets(t *testing.T) {
	f := newFixture(t)
	f.write(t, "group_vars/web.yml", "db_password: hunter2\napi_token: t0k\nssh_key: k3y\nlisten: 8080\nnested: {client_secret: s, ok: yes}\n")
	p := f.plan(t, "rollout.hcl", planSettings{})

	r := rolloutCLI(t, "hosts", p, "--vars", "--limit", "web1")
	expect(t, r, 0, "web1:", `"listen": 8080`, `"db_password": "<redacted>"`, `"api_token": "<redacted>"`, `"ssh_key": "<redacted>"`, `"client_secret": "<redacted>"`, `"app_port": 8001`)
	for _, secret := range []string{"hunter2", "t0k", "k3y"} {
		if strings.Contains(r.out, secret) {
			t.Errorf("hosts --vars shows the secret %q:\n%s", secret, r)
		}
	}

	r = rolloutCLI(t, "hosts", p, "--vars", "--limit", "web1", "--ui", "json")
	expect(t, r, 0)
	hosts := hostsFromJSON(t, r.out)
	if len(hosts) != 1 {
		t.Fatalf("%d hosts\n%s", len(hosts), r)
	}
	if hosts[0].Vars["db_password"] != "<redacted>" || hosts[0].Vars["listen"] != float64(8080) {
		t.Errorf("json vars = %v", hosts[0].Vars)
	}

	r = rolloutCLI(t, "hosts", p, "--vars", "--show-secrets", "--limit", "web1", "--ui", "json")
	expect(t, r, 0, "hunter2", "t0k", "k3y")
}

// template = "jinja2" renders Ansible's names; an undefined variable is an
// error naming the template, its line and the host; a {{ }} left in an
// HCL template warns at validate.
func TestJinjaTemplatesInValidate(t *testing.T) {
	f := newFixture(t)
	f.write(t, "conf/app.conf.j2", "# {{ inventory_hostname }} in {{ group_names | join(',') }}\nport = {{ app_port }}\n")
	f.write(t, "conf/bad.j2", "ok\nport = {{ no_such_var }}\n")
	f.write(t, "conf/hcl.tmpl", "name = ${host.name}\nport = {{ app_port }}\n")
	f.commit(t, "v3", "2026-01-03T12:00:00Z")
	rev := f.rev(t, "v3")

	jinja := `file "j" {
    source   = "conf/app.conf.j2"
    template = "jinja2"
    dest     = "/etc/app/j.conf"
  }`
	p := f.plan(t, "ok.hcl", planSettings{revision: rev, extra: jinja})
	r := rolloutCLI(t, "validate", p)
	expect(t, r, 0, "ok: plan")

	bad := strings.Replace(jinja, "conf/app.conf.j2", "conf/bad.j2", 1)
	p = f.plan(t, "bad.hcl", planSettings{revision: rev, extra: bad})
	r = rolloutCLI(t, "validate", p)
	expect(t, r, 2, "conf/bad.j2@", "'no_such_var' is undefined", "line 2", `host "web1"`, "2: port = {{ no_such_var }}")

	hcl := strings.Replace(strings.Replace(jinja, "conf/app.conf.j2", "conf/hcl.tmpl", 1), `"jinja2"`, "true", 1)
	p = f.plan(t, "hcl.hcl", planSettings{revision: rev, extra: hcl})
	r = rolloutCLI(t, "validate", p)
	expect(t, r, 0, "warning: conf/hcl.tmpl@", ":2: Jinja2 syntax left unrendered", `write template = "jinja2"`)
}

// A host ansible would reach through another connection plugin is refused
// before anything is touched, never tried over SSH.
func TestUnsupportedConnectionRefused(t *testing.T) {
	f := newFixture(t)
	f.write(t, "inventory.ini", testInventory+"[web:vars]\nansible_connection=docker\n")
	p := f.plan(t, "rollout.hcl", planSettings{})
	r := rolloutCLI(t, "hosts", p)
	expect(t, r, 2, "ansible_connection=docker is not supported", "web1")
}
