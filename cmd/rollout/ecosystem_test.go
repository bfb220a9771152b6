package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout"
	"github.com/rollout-sh/rollout/rollout/event"
)

func TestVersionFlag(t *testing.T) {
	r := rolloutCLI(t, "--version")
	expect(t, r, 0, "rollout "+Version+" (commit ")
	if v := rolloutCLI(t, "version"); v.out != r.out {
		t.Errorf("--version printed %q, version printed %q", r.out, v.out)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := rolloutCLI(t, "completion", sh)
		expect(t, r, 0, "rollout", "__complete")
	}
}

// complete runs cobra's hidden __complete command the way the shell
// scripts do and returns the offered values (without descriptions).
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	r := rolloutCLI(t, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %v: %s", args, r)
	}
	var vals []string
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		if strings.HasPrefix(line, ":") || line == "" { // the directive line
			continue
		}
		v, _, _ := strings.Cut(line, "\t")
		vals = append(vals, v)
	}
	return vals
}

func wantSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: completion offered %q, want %q", what, got, want)
	}
}

func TestCompletionOfFlagValues(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{})

	// --limit: the groups of the plan's pool, then its hosts; db1 is in the
	// inventory but not in the plan's hosts = "web".
	wantSet(t, "--limit ''", complete(t, "apply", p, "--limit", ""), "web", "web1", "web2", "web3", "web4")
	wantSet(t, "--limit web:!we", complete(t, "plan", p, "--limit", "web:!we"), "web:!web", "web:!web1", "web:!web2", "web:!web3", "web:!web4")
	wantSet(t, "hosts --limit web2", complete(t, "hosts", p, "--limit", "web2"), "web2")

	// --revision and --to: the repository's tags
	wantSet(t, "--revision", complete(t, "plan", p, "--revision", ""), "v1", "v2")
	wantSet(t, "--to v", complete(t, "rollback", p, "--to", "v"), "v1", "v2")

	// --ui: its four values, for every command
	wantSet(t, "--ui", complete(t, "status", "--ui", ""), "auto", "tui", "plain", "json")

	// --replay: run ids from the journal, newest first, after "last"
	j, err := journal.Open(journalPath(&GlobalOptions{}, p))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"20260103-120000-aaaa", "20260103-130000-bbbb"} {
		if err := j.Append(event.Event{Time: now.Add(time.Duration(i) * time.Hour), Run: id, Event: event.RunStart, Plan: "web", Revision: f.v2, Message: "apply"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = j.Close()
	wantSet(t, "--replay", complete(t, "history", p, "--replay", ""), "last", "20260103-130000-bbbb", "20260103-120000-aaaa")

	// a plan that does not load completes nothing (and does not fail)
	wantSet(t, "--limit on a missing plan", complete(t, "apply", filepath.Join(t.TempDir(), "none.hcl"), "--limit", ""))
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	r := rolloutCLI(t, "man", "--dir", dir)
	expect(t, r, 0, "man pages written")
	for _, page := range []string{"rollout.1", "rollout-apply.1", "rollout-init.1", "rollout-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		if !bytes.Contains(b, []byte(".TH \"ROLLOUT\"")) {
			t.Errorf("%s is not a man page:\n%.300s", page, b)
		}
	}
	apply, _ := os.ReadFile(filepath.Join(dir, "rollout-apply.1"))
	if !bytes.Contains(apply, []byte(`--limit`)) {
		t.Errorf("rollout-apply.1 does not document --limit")
	}
}

// ansibleRepo is a config repository laid out for Ansible: ansible.cfg
// naming the inventory, group_vars/, and templates/ with one HCL template,
// one plain file and one uncommitted file.
func ansibleRepo(t *testing.T) *fixture {
	f := newFixture(t)
	f.write(t, "ansible.cfg", "[defaults]\ninventory = hosts/prod.ini\nhost_key_checking = True\n")
	f.write(t, "hosts/prod.ini", testInventory)
	f.write(t, "group_vars/web.yml", "app_port: 8080\n")
	f.write(t, "templates/app.conf.tmpl", "listen ${host.vars.app_port}\n")
	f.write(t, "templates/motd", "managed by rollout\n")
	f.write(t, "templates/site.conf.j2", "server {{ inventory_hostname }}\n")
	f.commit(t, "v3", "2026-01-03T12:00:00Z")
	f.write(t, "templates/later.conf", "not committed\n")
	return f
}

func TestInitWritesAPlanValidateAccepts(t *testing.T) {
	f := ansibleRepo(t)
	t.Chdir(f.dir)
	r := rolloutCLI(t, "init", "--service", "appd", "--revision", "v3", "--health-url", "http://${host.address}:${host.vars.app_port}/healthz")
	expect(t, r, 0, "wrote rollout.hcl", "next: rollout validate")
	b, err := os.ReadFile("rollout.hcl")
	if err != nil {
		t.Fatal(err)
	}
	plan := string(b)
	for _, want := range []string{
		`inventory = "hosts/prod.ini"`, // from ansible.cfg
		`hosts     = "web"`,
		`revision  = "v3"`,
		`Ansible layout found (ansible.cfg, group_vars/)`,
		`endpoints = ["unix:/run/haproxy/admin.sock"]`,
		`source   = "templates/app.conf.tmpl"`, `template = true`,
		`source   = "templates/motd"`,
		`  file "site.conf" {`, `source   = "templates/site.conf.j2"`, `template = "jinja2"`,
		`# templates/later.conf is not committed`,
		`restart = "systemctl restart appd"`,
		`url         = "http://${host.address}:${host.vars.app_port}/healthz"`,
		`# expect_hosts   = 4`,
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	expect(t, rolloutCLI(t, "validate"), 0)
	expect(t, rolloutCLI(t, "hosts", "--limit", "web1"), 0, "web1")

	// never overwrites without --force
	r = rolloutCLI(t, "init")
	expect(t, r, rollout.ExitRefused, "rollout.hcl exists", "next: rollout init --force")
	// a pool of one host: written, but downtime is never accepted for the user
	expect(t, rolloutCLI(t, "init", "--force", "--hosts", "db", "--revision", "v3"), 0, `plan "db"`, "selects one host", "allow_downtime")
	b, _ = os.ReadFile("rollout.hcl")
	if !strings.Contains(string(b), "# allow_downtime = true") {
		t.Errorf("single-host plan lacks the commented allow_downtime:\n%s", b)
	}
	expect(t, rolloutCLI(t, "validate"), rollout.ExitRefused, "selects a single host")
}

func TestInitRefusals(t *testing.T) {
	f := newFixture(t) // an inventory.ini, a repo, no templates/
	t.Chdir(f.dir)
	expect(t, rolloutCLI(t, "init"), rollout.ExitRefused, "nothing to deploy", "next: rollout init --file")
	expect(t, rolloutCLI(t, "init", "--file", "conf/app.conf.tmpl"), rollout.ExitRefused, "want SOURCE=/absolute/dest")
	expect(t, rolloutCLI(t, "init", "--hosts", "nope"), rollout.ExitRefused, `hosts "nope"`, "next: rollout init --inventory inventory.ini --hosts web")
	expect(t, rolloutCLI(t, "init", "--inventory", "missing.ini"), rollout.ExitRefused, "missing.ini", "next:")

	r := rolloutCLI(t, "init", "--file", "conf/app.conf.tmpl=/etc/app/app.conf", "--revision", "v2", "--out", "web.hcl")
	expect(t, r, 0, "next: rollout validate web.hcl")
	expect(t, rolloutCLI(t, "validate", "web.hcl"), 0)

	notRepo := t.TempDir()
	if err := os.WriteFile(filepath.Join(notRepo, "inventory.ini"), []byte(testInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(notRepo)
	expect(t, rolloutCLI(t, "init"), rollout.ExitRefused, "not in a git repository", "next: git init")
}

// On a terminal init asks, and the answers end up in the plan; flags given
// on the command line are not asked again.
func TestInitAsksOnATerminal(t *testing.T) {
	f := ansibleRepo(t)
	t.Chdir(f.dir)
	answers := strings.Join([]string{
		"db",                           // hosts
		"tcp:127.0.0.1:9999",           // lb-socket
		"",                             // backend: keep the default (db)
		"pgbouncer",                    // service
		"",                             // restart: keep systemctl restart pgbouncer
		"http://${host.address}:6432/", // health url
		// revision is a flag: not asked
	}, "\n") + "\n"
	var out, errOut bytes.Buffer
	ios := &IOStreams{In: strings.NewReader(answers), Out: &out, Err: &errOut, InTTY: true, OutTTY: true}
	code := run(context.Background(), []string{"init", "--revision", "v3"}, ios)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "revision to pin") {
		t.Errorf("asked for --revision although it was given:\n%s", out.String())
	}
	for _, q := range []string{"host pattern to roll (groups: db, web) [web]:", "HAProxy backend [db]:", "restart command [systemctl restart pgbouncer]:", "inventory: hosts/prod.ini (5 hosts"} {
		if !strings.Contains(out.String(), q) {
			t.Errorf("prompt lacks %q:\n%s", q, out.String())
		}
	}
	b, _ := os.ReadFile("rollout.hcl")
	for _, want := range []string{`hosts     = "db"`, `endpoints = ["tcp:127.0.0.1:9999"]`, `backend   = "db"`, `restart = "systemctl restart pgbouncer"`, `url         = "http://${host.address}:6432/"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("plan lacks %q:\n%s", want, b)
		}
	}
}
