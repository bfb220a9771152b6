package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	localfleet "github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/journal"
)

// a config repo with an Ansible layout: v1 has web1 and web2 with
// ver: a, v2 adds web3, sets ver: b and moves web1 to another port
func releaseRepo(t *testing.T) (dir string, revs map[string]string) {
	t.Helper()
	localfleet.RequireTool(t, "git")
	dir = t.TempDir()
	revs = map[string]string{}
	write := func(name, content string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	git(t, dir, "init", "-q")
	write(".gitignore", "*.hcl\n.rollout/\n")
	write("app.conf.j2", "ver={{ ver }} port={{ ansible_port | default('-') }}\n")
	for _, v := range []struct{ tag, inv, ver string }{
		{"v1", "[web]\nweb1 ansible_port=2201\nweb2\n", "a"},
		{"v2", "[web]\nweb1 ansible_port=2202\nweb2\nweb3\n", "b"},
	} {
		write("inventory.ini", v.inv)
		write("group_vars/web.yml", "ver: "+v.ver+"\nsecret_token: "+v.ver+"\n")
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-qm", v.tag)
		git(t, dir, "tag", v.tag)
		revs[v.tag] = git(t, dir, "rev-parse", "HEAD")
	}
	write("rollout.hcl", `plan "web" {
  inventory = "inventory.ini"
  hosts     = "web"
  revision  = "v2"
  batch     = [1]
  drain "none" { reason = "release test" }
  file "app.conf" {
    source   = "app.conf.j2"
    template = "jinja2"
    dest     = "/tmp/app.conf"
  }
  restart = "true"
}
`)
	return dir, revs
}

func content(t *testing.T, tg *Target) string {
	t.Helper()
	if len(tg.Files) != 1 {
		t.Fatalf("%s: %d files", tg.Host.Name, len(tg.Files))
	}
	return string(tg.Files[0].Content)
}

func TestRevisionRendersWithItsOwnVariables(t *testing.T) {
	dir, revs := releaseRepo(t)
	plan := filepath.Join(dir, "rollout.hcl")
	// the work tree says something else again: never read
	must(t, os.WriteFile(filepath.Join(dir, "group_vars", "web.yml"), []byte("ver: working-tree\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "app.conf.j2"), []byte("edited {{ ver }}\n"), 0o644))

	pr, err := Prepare(Request{PlanFile: plan})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Targets) != 3 || content(t, pr.Targets[0]) != "ver=b port=2202\n" {
		t.Fatalf("v2: %d targets, web1 renders %q", len(pr.Targets), content(t, pr.Targets[0]))
	}
	if !strings.Contains(strings.Join(pr.Warnings, "\n"), "the working tree differs from v2 in app.conf.j2 (uncommitted), group_vars/web.yml (uncommitted); not deployed") {
		t.Errorf("no warning naming the edited file: %q", pr.Warnings)
	}
	// the way back (rehearsal, on_failure = "rollback") renders v1 with
	// v1's variables
	back, err := pr.Render(pr.Targets[1].Host, revs["v1"])
	if err != nil || content(t, back) != "ver=a port=-\n" {
		t.Errorf("web2 at v1 renders %v (%v), want v1's ver=a", back, err)
	}
	back, err = pr.Render(pr.Targets[0].Host, revs["v1"])
	if err != nil || content(t, back) != "ver=a port=2201\n" {
		t.Errorf("web1 at v1 renders %q (%v), want exactly what an apply of v1 rendered", content(t, back), err)
	}
	if back != nil && back.Host.Port != 2202 {
		t.Errorf("web1 is reached at port %d at v1; how a host is reached is the pin's (2202)", back.Host.Port)
	}
	// a host v1 lacks has no way back
	if _, err := pr.Render(pr.Targets[2].Host, revs["v1"]); err == nil || !strings.Contains(err.Error(), "web3 is not in the inventory at") {
		t.Errorf("web3 at v1: %v, want a refusal naming it", err)
	}

	// plan's variable diff from what a host runs
	changes := pr.VarsChanges(pr.Targets[0], &journal.HostState{Revision: revs["v1"]})
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := []string{`ansible_port: 2201 → 2202`, `secret_token: "<redacted>" → "<redacted> (changed)"`, `ver: "a" → "b"`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("vars changes of web1 from v1:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// rollback --to v1: the targets render v1's bytes, reached as v2 says;
	// web3 (not in v1) is refused with a --limit that leaves it out
	_, err = Prepare(Request{PlanFile: plan, Revision: "v1", Rollback: true})
	var r *Refusal
	if err == nil || !asRefusal(err, &r) || !strings.Contains(r.Problem, "web3 is not in the inventory at v1") || !strings.Contains(r.Next, "--limit 'web:!web3'") {
		t.Fatalf("rollback to v1 with web3 targeted: %v", err)
	}
	pr, err = Prepare(Request{PlanFile: plan, Revision: "v1", Rollback: true, Limit: "web:!web3"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Revision != revs["v1"] || content(t, pr.Targets[0]) != "ver=a port=2201\n" || pr.Targets[0].Host.Port != 2202 {
		t.Errorf("rollback to v1: revision %s, web1 renders %q reached at %d", pr.Revision, content(t, pr.Targets[0]), pr.Targets[0].Host.Port)
	}
}

func asRefusal(err error, r **Refusal) bool {
	rr, ok := err.(*Refusal)
	*r = rr
	return ok
}

func TestInventoryOutsideTheRepositoryIsNotPinned(t *testing.T) {
	dir, revs := releaseRepo(t)
	outside := filepath.Join(t.TempDir(), "hosts.ini")
	must(t, os.WriteFile(outside, []byte("[web]\nweb1 ver=x\nweb2 ver=x\n"), 0o644))
	plan := filepath.Join(dir, "outside.hcl")
	src, err := os.ReadFile(filepath.Join(dir, "rollout.hcl"))
	must(t, err)
	must(t, os.WriteFile(plan, []byte(strings.Replace(string(src), `"inventory.ini"`, `"`+outside+`"`, 1)), 0o644))
	pr, err := Prepare(Request{PlanFile: plan})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Release.Pinned() || !strings.Contains(strings.Join(pr.Warnings, "\n"), "is outside the repository") {
		t.Errorf("an inventory outside the repository: pinned %v, warnings %q", pr.Release.Pinned(), pr.Warnings)
	}
	tg := pr.Targets[0]
	// the recorded hash tells today's variables from those deployed
	if c := pr.VarsChanges(tg, &journal.HostState{Revision: revs["v1"], VarsSHA256: tg.VarsSHA256}); len(c) != 0 {
		t.Errorf("same variables: %v", c)
	}
	if c := pr.VarsChanges(tg, &journal.HostState{Revision: revs["v1"], VarsSHA256: "0000"}); len(c) != 1 || c[0].Name != "*" {
		t.Errorf("other variables recorded: %v", c)
	}
}

// ansible.cfg's ansible_managed is what templates render for
// {{ ansible_managed }}, read at the revision like the rest; without it
// ansible-core's default.
func TestAnsibleManagedComesFromAnsibleCfg(t *testing.T) {
	dir, _ := releaseRepo(t)
	plan := filepath.Join(dir, "rollout.hcl")
	must(t, os.WriteFile(filepath.Join(dir, "app.conf.j2"), []byte("# {{ ansible_managed }}\nver={{ ver }}\n"), 0o644))
	git(t, dir, "commit", "-qam", "managed header")
	git(t, dir, "tag", "v3")
	pin := func(rev string) {
		data, err := os.ReadFile(plan)
		must(t, err)
		s := string(data)
		for _, old := range []string{`"v2"`, `"v3"`, `"v4"`, `"v5"`} {
			s = strings.Replace(s, "revision  = "+old, "revision  = \""+rev+"\"", 1)
		}
		must(t, os.WriteFile(plan, []byte(s), 0o644))
	}
	pin("v3")
	pr, err := Prepare(Request{PlanFile: plan})
	if err != nil {
		t.Fatal(err)
	}
	if got := content(t, pr.Targets[0]); got != "# Ansible managed\nver=b\n" {
		t.Errorf("no ansible.cfg: %q, want ansible-core's default", got)
	}

	must(t, os.WriteFile(filepath.Join(dir, "ansible.cfg"), []byte("[defaults]\nansible_managed = Managed by rollout: do not edit\n"), 0o644))
	git(t, dir, "add", "ansible.cfg")
	git(t, dir, "commit", "-qm", "ansible.cfg")
	git(t, dir, "tag", "v4")
	// the work tree says otherwise: v4's is rendered, with a warning
	must(t, os.WriteFile(filepath.Join(dir, "ansible.cfg"), []byte("[defaults]\nansible_managed = edited\n"), 0o644))
	pin("v4")
	pr, err = Prepare(Request{PlanFile: plan})
	if err != nil {
		t.Fatal(err)
	}
	if got := content(t, pr.Targets[0]); got != "# Managed by rollout: do not edit\nver=b\n" {
		t.Errorf("ansible.cfg's ansible_managed at v4: %q", got)
	}
	if !strings.Contains(strings.Join(pr.Warnings, "\n"), "ansible.cfg differs from v4 (uncommitted)") {
		t.Errorf("no warning naming the edited ansible.cfg: %q", pr.Warnings)
	}

	must(t, os.WriteFile(filepath.Join(dir, "ansible.cfg"), []byte("[defaults]\nansible_managed = Ansible managed: {file} modified on %Y-%m-%d\n"), 0o644))
	git(t, dir, "commit", "-qam", "placeholders")
	git(t, dir, "tag", "v5")
	pin("v5")
	if _, err := Prepare(Request{PlanFile: plan}); err == nil || !strings.Contains(err.Error(), "ansible_managed") {
		t.Errorf("ansible_managed with {file} and %%Y: %v, want a refusal naming it", err)
	}
}
