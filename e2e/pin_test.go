package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 21: a revision is the whole release. An Ansible layout in the
// config repo (inventory.ini, group_vars/web.yml holding app_version, a
// Jinja2 template) on three real sshd hosts: every step of the issue's
// table, asserted. v1's inventory has web1 and web2, v2's adds web3.
func TestRevisionPinsVariables(t *testing.T) {
	e := setup(t, 3, 1)
	proj := filepath.Join(e.dir, "project")
	pj := project{t, proj}
	write := func(name, content string) { t.Helper(); pj.write(map[string]string{name: content}) }
	git := pj.git
	inventory := func(n int) string {
		var b strings.Builder
		b.WriteString("[web]\n")
		for _, h := range e.f.Hosts[:n] {
			fmt.Fprintf(&b, "%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s root=%s app_port=%d\n",
				h.Name, h.SSHPort, e.f.ClientKey, h.Root, h.AppPort)
		}
		return b.String()
	}
	write(".gitignore", "*.hcl\n.rollout/\n")
	write("templates/app.conf.j2", "# demo-app config for {{ inventory_hostname }}\nversion = 1\nmessage = \"version={{ app_version }}\"\nlisten = 127.0.0.1:{{ app_port }}\n")
	write("inventory.ini", inventory(2))
	write("group_vars/web.yml", "app_version: \"1.2.3\"\n")
	pj.commit("v1")
	v1 := git("rev-parse", "v1^{commit}")
	write("inventory.ini", inventory(3))
	write("group_vars/web.yml", "app_version: \"1.2.4\"\n")
	pj.commit("v2")
	v2 := git("rev-parse", "v2^{commit}")

	e.dir, e.plan = proj, filepath.Join(proj, "rollout.hcl")
	pin := func(rev string) {
		t.Helper()
		p := fmt.Sprintf(`plan "pin" {
  inventory = "inventory.ini"
  hosts     = "web"
  revision  = %q
  batch     = [1]
  state_dir = "${host.vars.root}/state"
%s
  file "app.conf" {
    source   = "templates/app.conf.j2"
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
`, rev, e.drain, e.app, e.app, e.restart)
		if err := os.WriteFile(e.plan, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	live := func(i int) string {
		t.Helper()
		b, err := os.ReadFile(e.f.Hosts[i].ConfigPath())
		if err != nil {
			return ""
		}
		return string(b)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	// 1. v1 pinned deploys v1's variables (its inventory: web1, web2)
	pin("v1")
	web3Before := live(2)
	r := e.rollout("apply", "--yes", "--ui", "plain")
	if r.code != 0 {
		t.Fatalf("apply v1: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	v1Bytes := map[int]string{}
	for i := 0; i < 2; i++ {
		v1Bytes[i] = live(i)
		if !strings.Contains(v1Bytes[i], `message = "version=1.2.3"`) {
			t.Fatalf("%s after apply of v1:\n%s", e.f.Hosts[i].Name, v1Bytes[i])
		}
	}
	if live(2) != web3Before {
		t.Fatalf("web3 is not in v1's inventory, but its config changed: %s", live(2))
	}
	// the working tree is at v2 (HEAD): what v2 changed is named, not deployed
	for _, want := range []string{"the working tree differs from v1 in group_vars/web.yml (committed after v1), inventory.ini (committed after v1); not deployed",
		"web3 is only in the working tree's inventory: not targeted"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("apply of v1 with HEAD at v2 did not warn %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "not pinned") {
		t.Errorf("a committed layout was called not pinned:\n%s", r.stderr)
	}

	// 2. an uncommitted edit is not what plan shows, and is named
	write("group_vars/web.yml", "app_version: \"1.2.5\"\n")
	r = e.rollout("plan", "--offline", "--ui", "json")
	if r.code != 0 {
		t.Fatalf("plan --offline: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var planned struct {
		Hosts []struct {
			Host  string `json:"host"`
			Files []struct {
				SHA256 string `json:"sha256"`
			} `json:"files"`
		} `json:"hosts"`
		Warnings []string `json:"warnings"`
	}
	first, _, _ := strings.Cut(r.stdout, "\n")
	if err := json.Unmarshal([]byte(first), &planned); err != nil || len(planned.Hosts) != 2 || len(planned.Hosts[0].Files) != 1 {
		t.Fatalf("plan --offline --ui json: %v\n%s", err, r.stdout)
	}
	if got := planned.Hosts[0].Files[0].SHA256; got != sum(v1Bytes[0]) {
		t.Errorf("plan --offline shows %s for web1, want v1's bytes %s (the working tree's variables leaked)", got, sum(v1Bytes[0]))
	}
	const edited = "the working tree differs from v1 in group_vars/web.yml (uncommitted), inventory.ini (committed after v1); not deployed"
	if !strings.Contains(r.stderr, edited) || len(planned.Warnings) == 0 || !strings.Contains(strings.Join(planned.Warnings, "\n"), edited) {
		t.Errorf("plan did not warn %q on stderr and in json:\n%s\n%s", edited, r.stderr, r.stdout)
	}
	if r := e.rollout("validate"); r.code != 0 || !strings.Contains(r.stderr, edited) {
		t.Errorf("validate did not warn %q: exit %d\n%s", edited, r.code, r.stderr)
	}
	git("checkout", "--", "group_vars/web.yml")

	// 3. v2, then an uncommitted edit and an uncommitted host: nothing
	// to change, both named
	pin("v2")
	if r := e.rollout("apply", "--yes", "--ui", "plain"); r.code != 0 {
		t.Fatalf("apply v2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	v2Bytes := map[int]string{}
	for i := range 3 {
		v2Bytes[i] = live(i)
		if !strings.Contains(v2Bytes[i], `message = "version=1.2.4"`) {
			t.Fatalf("%s after apply of v2:\n%s", e.f.Hosts[i].Name, v2Bytes[i])
		}
	}
	write("group_vars/web.yml", "app_version: \"9.9.9\"\n")
	write("inventory.ini", inventory(3)+"web9 ansible_host=127.0.0.1 ansible_port=1 root=/nonexistent app_port=1\n")
	r = e.rollout("apply", "--yes", "--ui", "json")
	if r.code != 0 {
		t.Fatalf("apply v2 with the working tree edited: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var start struct {
		Warnings []string `json:"warnings"`
	}
	skipped := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		switch ev["event"] {
		case "run_start":
			_ = json.Unmarshal([]byte(line), &start)
		case "host_done":
			if ev["status"] != "skipped" {
				t.Errorf("%v was %v, want skipped (the working tree's edit must not be deployed)", ev["host"], ev["status"])
			}
			if ev["host"] == "web9" {
				t.Errorf("web9 (only in the working tree's inventory) was targeted")
			}
			skipped++
		}
	}
	if skipped != 3 {
		t.Errorf("%d hosts skipped, want 3:\n%s", skipped, r.stdout)
	}
	warned := strings.Join(start.Warnings, "\n")
	for _, want := range []string{"group_vars/web.yml (uncommitted)", "inventory.ini (uncommitted)", "differs from v2 in", "not deployed",
		"web9 is only in the working tree's inventory: not targeted"} {
		if !strings.Contains(warned, want) || !strings.Contains(r.stderr, want) {
			t.Errorf("apply's warnings (stderr and run_start) lack %q:\nrun_start: %q\nstderr: %s", want, start.Warnings, r.stderr)
		}
	}
	for i := range 3 {
		if live(i) != v2Bytes[i] {
			t.Errorf("%s changed although nothing was to change:\n%s", e.f.Hosts[i].Name, live(i))
		}
	}
	// hosts --vars: the pinned revision's variables and hosts
	r = e.rollout("hosts", "--vars", "--ui", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"app_version":"1.2.4"`) || strings.Contains(r.stdout, "9.9.9") || strings.Contains(r.stdout, "web9") {
		t.Errorf("hosts --vars does not show v2's variables:\n%s\n%s", r.stdout, r.stderr)
	}
	// and another revision's, with --revision
	r = e.rollout("hosts", "--vars", "--ui", "json", "--revision", "v1")
	if r.code != 0 || !strings.Contains(r.stdout, `"app_version":"1.2.3"`) || strings.Contains(r.stdout, "web3") {
		t.Errorf("hosts --revision v1 --vars does not show v1's hosts and variables:\n%s\n%s", r.stdout, r.stderr)
	}
	// plan names the variables that change from what is deployed
	r = e.rollout("plan", "--revision", "v1", "--ui", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, `app_version: "1.2.4" → "1.2.3"`) {
		t.Errorf("plan --revision v1 does not show the variable that changes:\n%s\n%s", r.stdout, r.stderr)
	}

	// 4. rollback --to v1: web3 is not in v1's inventory, refused with
	// nothing touched, and the --limit it prints rolls the others back to
	// exactly v1's bytes
	r = e.rollout("rollback", "--to", "v1", "--yes", "--ui", "plain")
	if r.code != 2 || !strings.Contains(r.stderr, "web3 is not in the inventory at v1") || !strings.Contains(r.stderr, "nothing was touched") {
		t.Fatalf("rollback --to v1 with web3 targeted: exit %d, want 2 naming web3\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for i := range 3 {
		if live(i) != v2Bytes[i] {
			t.Errorf("%s changed by a refused rollback", e.f.Hosts[i].Name)
		}
	}
	next := lastNext(t, r.stderr)
	if !strings.Contains(next, "web:!web3") {
		t.Errorf("the refusal's next: does not leave web3 out: %s", next)
	}
	r = e.pasteNext(t, next)
	if r.code != 0 {
		t.Fatalf("pasting %q: exit %d\n%s\n%s", next, r.code, r.stdout, r.stderr)
	}
	for i := 0; i < 2; i++ {
		if got := live(i); got != v1Bytes[i] {
			t.Errorf("%s after rollback --to v1 serves\n%s\nwant v1's bytes exactly\n%s", e.f.Hosts[i].Name, got, v1Bytes[i])
		}
	}
	if live(2) != v2Bytes[2] {
		t.Errorf("web3 was left out, but changed")
	}
	r = e.rollout("status", "--ui", "json", "--limit", "web:!web3")
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var st struct {
			Event    string   `json:"event"`
			Host     string   `json:"host"`
			Revision string   `json:"revision"`
			Drift    []string `json:"drift"`
		}
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatalf("status line %q: %v", line, err)
		}
		if st.Event != "host_status" {
			continue
		}
		checked++
		if st.Revision != v1 || len(st.Drift) != 0 {
			t.Errorf("status of %s: revision %s drift %v, want %s and no drift", st.Host, st.Revision, st.Drift, v1)
		}
	}
	if checked != 2 {
		t.Errorf("status showed %d hosts, want web1 and web2:\n%s", checked, r.stdout)
	}
	_ = v2
}

// Issue 21, item 4: an inventory outside the repository is accepted, said
// to be not pinned, and each host records the hash of the variables it was
// rendered with, so status and plan tell when today's would differ.
func TestUnpinnedInventoryRecordsItsVariables(t *testing.T) {
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v1"], "halt", "1s")
	r := e.rollout("apply", "--yes", "--batch", "1", "--ui", "json")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "is outside the repository") != 1 {
		t.Errorf("apply did not say once that the inventory is not pinned:\n%s", r.stderr)
	}
	vars := 0
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, `"event":"host_done"`) && strings.Contains(line, `"vars_sha256":"`) {
			vars++
		}
	}
	if vars != 2 {
		t.Errorf("%d host_done events carry vars_sha256, want 2:\n%s", vars, r.stdout)
	}
	status := func() map[string]bool {
		t.Helper()
		r := e.rollout("status", "--ui", "json")
		if r.code != 0 {
			t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
		}
		out := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var st struct {
				Event       string `json:"event"`
				Host        string `json:"host"`
				VarsChanged bool   `json:"vars_changed"`
			}
			if err := json.Unmarshal([]byte(line), &st); err == nil && st.Event == "host_status" {
				out[st.Host] = st.VarsChanged
			}
		}
		return out
	}
	if got := status(); len(got) != 2 || got["web1"] || got["web2"] {
		t.Fatalf("right after apply, status says variables changed: %v", got)
	}
	// a variable the template does not use: the bytes stay, the hash moves
	inv, err := os.ReadFile(filepath.Join(e.dir, "inventory.ini"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(inv), "web1 ansible_host", "web1 colour=blue ansible_host", 1)
	if edited == string(inv) {
		t.Fatalf("inventory has no web1 line:\n%s", inv)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "inventory.ini"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := status(); !got["web1"] || got["web2"] {
		t.Errorf("after editing web1's variables, status vars_changed = %v, want web1 only", got)
	}
	r = e.rollout("status", "--ui", "plain")
	if !strings.Contains(r.stdout, "variables changed since deployed (the inventory is not pinned): web1") {
		t.Errorf("plain status does not name web1:\n%s", r.stdout)
	}
	r = e.rollout("plan", "--ui", "json")
	if !strings.Contains(r.stdout, `"vars":[{"name":"*"}]`) {
		t.Errorf("plan does not say web1's variables changed:\n%s", r.stdout)
	}
}
