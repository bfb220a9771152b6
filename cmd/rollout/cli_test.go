package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// The command tests build a real git repository, inventory and plan in a
// temporary directory and run the whole cobra tree through run(), the way
// main does, with buffers for streams and no terminal. None of them touches a
// host: every command here stops before SSH (validate, hosts, plan --offline,
// and apply refusals).

const testInventory = `[web]
web1 ansible_host=10.0.0.1 app_port=8001
web2 ansible_host=10.0.0.2 app_port=8002
web3 ansible_host=10.0.0.3 app_port=8003 ansible_user=deploy
web4 ansible_host=10.0.0.4 ansible_port=2222 app_port=8004

[db]
db1 ansible_host=10.0.1.1 app_port=9000
`

// testTemplate renders to templateFor(host, version).
const testTemplate = "host = \"${host.name}\"\nversion = %d\n"

func templateFor(host string, version int) string {
	return fmt.Sprintf(strings.ReplaceAll(testTemplate, "${host.name}", host), version)
}

// planSettings are the parts of the test plan a test may change.
type planSettings struct {
	hosts    string // default "web"
	revision string // default: the commit of tag v2
	batch    string // the batch line; "-" for none
	extra    string // more top-level lines
	noDrain  bool
}

func (s planSettings) render() string {
	if s.hosts == "" {
		s.hosts = "web"
	}
	batch := `batch     = [1, "50%"]`
	switch s.batch {
	case "-":
		batch = ""
	case "":
	default:
		batch = s.batch
	}
	drain := `
  drain "haproxy" {
    endpoints = ["unix:/run/haproxy/admin.sock"]
    backend   = "web"
    server    = host.name
  }`
	if s.noDrain {
		drain = ""
	}
	return `plan "web" {
  inventory = "inventory.ini"
  hosts     = "` + s.hosts + `"
  revision  = "` + s.revision + `"
  ` + batch + `
  ` + s.extra + drain + `

  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "/etc/app/app.conf"
  }

  restart = "systemctl restart appd"

  health "http" {
    url = "http://${host.address}:${host.vars.app_port}/healthz"
  }
}
`
}

// fixture is a config repository with two tagged commits of the template
// (v1, v2) on branch main, and an inventory and plan beside them (not
// committed: the plan is operator input, the repo holds what is deployed).
type fixture struct {
	dir    string
	v1, v2 string // full commit hashes
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fleet.RequireTool(t, "git")
	f := &fixture{dir: t.TempDir()}
	f.git(t, "init", "-q", "-b", "main")
	f.write(t, ".gitignore", "*.hcl\ninventory.ini\n.rollout/\n")
	f.write(t, "conf/app.conf.tmpl", fmt.Sprintf(testTemplate, 1))
	f.commit(t, "v1", "2026-01-01T12:00:00Z")
	f.v1 = f.rev(t, "v1")
	f.write(t, "conf/app.conf.tmpl", fmt.Sprintf(testTemplate, 2))
	f.commit(t, "v2", "2026-01-02T12:00:00Z")
	f.v2 = f.rev(t, "v2")
	f.write(t, "inventory.ini", testInventory)
	return f
}

// newPinnedFixture is newFixture with the inventory committed in v1 and
// v2: the revision pins the hosts and their variables too.
func newPinnedFixture(t *testing.T) *fixture {
	t.Helper()
	fleet.RequireTool(t, "git")
	f := &fixture{dir: t.TempDir()}
	f.git(t, "init", "-q", "-b", "main")
	f.write(t, ".gitignore", "*.hcl\n.rollout/\n")
	f.write(t, "inventory.ini", testInventory)
	f.write(t, "conf/app.conf.tmpl", fmt.Sprintf(testTemplate, 1))
	f.commit(t, "v1", "2026-01-01T12:00:00Z")
	f.v1 = f.rev(t, "v1")
	f.write(t, "conf/app.conf.tmpl", fmt.Sprintf(testTemplate, 2))
	f.commit(t, "v2", "2026-01-02T12:00:00Z")
	f.v2 = f.rev(t, "v2")
	return f
}

func (f *fixture) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", f.dir}, args...)...)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Rollout Test", "GIT_AUTHOR_EMAIL=test@rollout.invalid",
		"GIT_COMMITTER_NAME=Rollout Test", "GIT_COMMITTER_EMAIL=test@rollout.invalid",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (f *fixture) commit(t *testing.T, tag, date string) {
	t.Helper()
	t.Setenv("GIT_AUTHOR_DATE", date)
	t.Setenv("GIT_COMMITTER_DATE", date)
	f.git(t, "add", "-A")
	f.git(t, "commit", "-q", "-m", tag)
	f.git(t, "tag", tag)
}

func (f *fixture) rev(t *testing.T, rev string) string {
	t.Helper()
	return f.git(t, "rev-parse", rev+"^{commit}")
}

func (f *fixture) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// plan writes a plan file named name and returns its path.
func (f *fixture) plan(t *testing.T, name string, s planSettings) string {
	t.Helper()
	if s.revision == "" {
		s.revision = f.v2
	}
	return f.write(t, name, s.render())
}

type result struct {
	code        int
	out, errOut string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.out, r.errOut)
}

// rolloutCLI runs the command line as main would, without a terminal.
func rolloutCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ios := &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errOut}
	code := run(context.Background(), args, ios)
	return result{code: code, out: out.String(), errOut: errOut.String()}
}

// expect checks the exit code and that every word appears in stdout+stderr.
func expect(t *testing.T, r result, code int, words ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\n%s", r.code, code, r)
	}
	all := r.out + r.errOut
	for _, w := range words {
		if !strings.Contains(all, w) {
			t.Errorf("output lacks %q\n%s", w, r)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestValidateOK(t *testing.T) {
	f := newPinnedFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{})
	r := rolloutCLI(t, "validate", p)
	expect(t, r, 0, "ok:", `plan "web"`, f.v2[:7], "4 host(s)", "3 batch(es)", "[1 2 1]", "4 file(s) rendered", "nothing was touched")
	if n := strings.Count(strings.TrimSpace(r.out), "\n"); n != 0 {
		t.Errorf("validate ok printed %d lines, want a one-line summary:\n%s", n+1, r)
	}
	if r.errOut != "" {
		t.Errorf("validate ok wrote to stderr:\n%s", r)
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "bad.hcl", planSettings{extra: `colour     = "blue"
  on_failure = "explode"
  pause      = "5 parsecs"
`})
	r := rolloutCLI(t, "validate", p)
	expect(t, r, rollout.ExitRefused,
		// each problem with its position, what was expected, and a snippet
		p+":6:3:", "colour", `colour     = "blue"`,
		p+":7:16:", "on_failure", `"rollback"`, `"halt"`, `"explode"`,
		p+":8:16:", "pause", "duration", `"5 parsecs"`,
		"3 problem(s)", "nothing was touched", "rollout validate "+p)
	if r.out != "" {
		t.Errorf("diagnostics went to stdout:\n%s", r)
	}
}

func TestHosts(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{})

	r := rolloutCLI(t, "hosts", p, "--limit", "web:!web3")
	expect(t, r, 0, "HOST", "ADDRESS", "PORT", "web1", "10.0.0.1", "web4", "2222", "3 of 4 host(s)", `--limit "web:!web3"`)
	if strings.Contains(r.out, "\nweb3 ") || strings.Contains(r.out, "db1") {
		t.Errorf("hosts --limit 'web:!web3' lists a host it excludes:\n%s", r)
	}

	r = rolloutCLI(t, "hosts", p, "--limit", "web:!web3", "--ui", "json")
	expect(t, r, 0)
	var hosts []hostJSON
	for _, l := range jsonLinesOf(t, r.out) {
		var h hostJSON
		if err := json.Unmarshal(l, &h); err != nil {
			t.Fatalf("hosts --ui json is not JSON lines: %v\n%s", err, r)
		}
		if h.Event == "host" {
			hosts = append(hosts, h)
		}
	}
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	if got := strings.Join(names, ","); got != "web1,web2,web4" {
		t.Errorf("hosts --ui json selected %s, want web1,web2,web4", got)
	}
	if len(hosts) == 3 && (hosts[2].Port != 2222 || hosts[2].Address != "10.0.0.4" || hosts[0].Port != 22) {
		t.Errorf("hosts --ui json: addresses/ports wrong: %+v", hosts)
	}
}

func TestPlanOffline(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{})
	r := rolloutCLI(t, "plan", p, "--offline", "--limit", "web:!web3", "--batch", "1")
	expect(t, r, 0, f.v2, "batch 1: web1", "batch 2: web2", "batch 3: web4", "/etc/app/app.conf")
	if strings.Contains(r.out, "batch 4") || strings.Contains(r.out, "web3") {
		t.Errorf("plan shows a host --limit excludes:\n%s", r)
	}
	for _, h := range []string{"web1", "web2", "web4"} {
		want := "sha256:" + sha(templateFor(h, 2))[:12]
		if !strings.Contains(r.out, want) {
			t.Errorf("plan lacks %s's file hash %s\n%s", h, want, r)
		}
	}
}

func TestPlanDetailedExitcode(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{})
	r := rolloutCLI(t, "plan", p, "--offline", "--detailed-exitcode")
	expect(t, r, rollout.ExitChanges, "batch 1: web1")
}

// Apply refusals that need no host: each exits 2, says why, and shows the
// next command. None gets as far as SSH (the inventory's addresses are not
// reachable, and no known_hosts is given).
func TestApplyRefusals(t *testing.T) {
	f := newFixture(t)
	hexSHA := regexp.MustCompile(`[0-9a-f]{40}`)
	for _, tc := range []struct {
		name  string
		plan  planSettings
		args  []string
		words []string
		check func(t *testing.T, r result)
	}{{
		name:  "no scope",
		plan:  planSettings{batch: "-"},
		args:  []string{"--yes"},
		words: []string{"no scope", "no batch", "--limit", "all 4 hosts", "next:", "--batch 1", "rollout apply", "--limit web1"},
	}, {
		name:  "limit all is no scope",
		plan:  planSettings{batch: "-"},
		args:  []string{"--yes", "--limit", "all"},
		words: []string{"no scope", `--limit "all" selects every host of "web" (all 4)`, "next:", "--batch 1", "--limit web1"},
	}, {
		name:  "a limit naming every host is no scope",
		plan:  planSettings{batch: "-"},
		args:  []string{"--yes", "--limit", "web1,web2,web3,web4"},
		words: []string{"no scope", `--limit "web1,web2,web3,web4" selects every host`, "next:", "--batch 1"},
	}, {
		name:  "branch",
		plan:  planSettings{revision: "main"},
		args:  []string{"--yes"},
		words: []string{`"main"`, "branch", f.v2, "next:"},
	}, {
		name:  "short hash",
		plan:  planSettings{revision: f.v1[:7]},
		args:  []string{"--yes"},
		words: []string{f.v1[:7], "short hash", f.v1, "next:"},
	}, {
		name:  "HEAD",
		plan:  planSettings{revision: "HEAD"},
		args:  []string{"--yes"},
		words: []string{"HEAD", "moves", f.v2, "next:"},
	}, {
		name:  "unknown revision",
		plan:  planSettings{revision: "no-such-tag"},
		args:  []string{"--yes"},
		words: []string{"no-such-tag", "not in the git repository", "next:", "rollout validate"},
	}, {
		name:  "expect_hosts",
		plan:  planSettings{extra: "expect_hosts = 3\n"},
		args:  []string{"--yes"},
		words: []string{"expect_hosts = 3", "selects 4 hosts", "web1, web2, web3, web4", "next:", "rollout hosts"},
	}, {
		name:  "pool of one",
		plan:  planSettings{hosts: "db"},
		args:  []string{"--yes"},
		words: []string{"single host", "db1", "downtime", "allow_downtime = true"},
	}, {
		name:  "no drain block",
		plan:  planSettings{noDrain: true},
		args:  []string{"--yes"},
		words: []string{"no drain block", "load balancer", `drain "none"`},
	}, {
		name:  "no --yes without a terminal",
		plan:  planSettings{},
		words: []string{"confirmation", "not a terminal", "next:", "rollout plan", "--yes"},
	}, {
		name:  "limit selects nothing",
		plan:  planSettings{},
		args:  []string{"--yes", "--limit", "nomatch*"},
		words: []string{`"nomatch*"`, "no hosts matched", "next:", "rollout hosts"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.plan(t, strings.ReplaceAll(tc.name, " ", "_")+".hcl", tc.plan)
			r := rolloutCLI(t, append([]string{"apply", p}, tc.args...)...)
			expect(t, r, rollout.ExitRefused, tc.words...)
			if tc.name == "branch" && !hexSHA.MatchString(r.errOut) {
				t.Errorf("the branch refusal does not name a 40-hex commit:\n%s", r)
			}
			if strings.Contains(r.errOut, "Usage:") {
				t.Errorf("a refusal printed usage:\n%s", r)
			}
			if _, err := os.Stat(filepath.Join(f.dir, ".rollout", "journal.jsonl")); err == nil {
				t.Errorf("a refusal opened the journal")
			}
		})
	}
}

func TestNoMatchPatternIsRefused(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{hosts: "nomatch"})
	for _, args := range [][]string{{"hosts", p}, {"validate", p}, {"plan", p, "--offline"}} {
		r := rolloutCLI(t, args...)
		expect(t, r, rollout.ExitRefused, `"nomatch"`, "next:")
	}
	p = f.plan(t, "ok.hcl", planSettings{})
	r := rolloutCLI(t, "hosts", p, "--limit", "db")
	expect(t, r, rollout.ExitRefused, `"db"`, "next:")
}

func TestVersion(t *testing.T) {
	r := rolloutCLI(t, "version")
	expect(t, r, 0, "rollout "+Version, "commit ")
}

func TestUsageOnlyForCommandLineMistakes(t *testing.T) {
	r := rolloutCLI(t, "validate", "--bogus")
	expect(t, r, rollout.ExitRefused, "unknown flag: --bogus", "Usage:", "rollout validate [PLAN]")

	// an error from the command itself: no usage, just the problem and what next
	r = rolloutCLI(t, "validate", filepath.Join(t.TempDir(), "missing.hcl"))
	expect(t, r, rollout.ExitRefused, "cannot read plan", "missing.hcl", "next:")
	if strings.Contains(r.errOut, "Usage:") {
		t.Errorf("a RunE error printed usage:\n%s", r)
	}

	r = rolloutCLI(t, "no-such-command")
	expect(t, r, rollout.ExitRefused, "unknown command", "rollout --help")
}

func TestUIFlagIsChecked(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{})
	for _, cmd := range []string{"hosts", "validate", "plan", "apply"} {
		args := []string{cmd, p, "--ui", "bogus"}
		if cmd == "plan" {
			args = append(args, "--offline")
		}
		r := rolloutCLI(t, args...)
		expect(t, r, rollout.ExitRefused, `--ui "bogus"`, "auto, tui, plain or json")
		if r.out != "" {
			t.Errorf("%s --ui bogus wrote to stdout before refusing:\n%s", cmd, r)
		}
	}
}

// The working tree is never read: an uncommitted edit of the template and a
// checked-out older branch do not change what plan renders for the pin.
func TestPlanIgnoresTheWorkingTree(t *testing.T) {
	f := newFixture(t)
	p := f.plan(t, "rollout.hcl", planSettings{revision: "v2"})
	hashes := func() map[string]string {
		t.Helper()
		r := rolloutCLI(t, "plan", p, "--offline", "--ui", "json")
		expect(t, r, 0)
		var got struct {
			Revision string
			Hosts    []planHostJSON
		}
		if err := json.Unmarshal(jsonLinesOf(t, r.out)[0], &got); err != nil {
			t.Fatalf("plan --ui json: %v\n%s", err, r)
		}
		if got.Revision != f.v2 {
			t.Errorf("plan resolved v2 to %s, want %s", got.Revision, f.v2)
		}
		m := map[string]string{}
		for _, h := range got.Hosts {
			for _, fl := range h.Files {
				m[h.Host] = fl.SHA256
			}
		}
		return m
	}
	want := map[string]string{}
	for _, h := range []string{"web1", "web2", "web3", "web4"} {
		want[h] = sha(templateFor(h, 2))
	}
	check := func(when string) {
		t.Helper()
		got := hashes()
		for h, w := range want {
			if got[h] != w {
				t.Errorf("%s: %s renders sha256 %s, want the committed v2 content's %s", when, h, got[h], w)
			}
		}
	}
	check("clean tree")

	f.write(t, "conf/app.conf.tmpl", "host = \"${host.name}\"\nversion = 99 # not committed\n")
	check("uncommitted edit")

	f.git(t, "checkout", "-q", "-f", "-b", "old", "v1")
	f.write(t, "conf/app.conf.tmpl", "host = \"${host.name}\"\nversion = 98\n")
	check("older branch checked out, with an edit")
}

// A plan of more than 20 hosts groups them by what changes: one entry for
// the 40 hosts that change the same files, not 40; -v and --ui json list
// every host.
func TestPlanGroupsHostsByWhatChanges(t *testing.T) {
	f := newFixture(t)
	var inv strings.Builder
	inv.WriteString("[web]\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&inv, "web%02d ansible_host=10.0.0.%d app_port=8001\n", i, i)
	}
	f.write(t, "inventory.ini", inv.String())
	p := f.plan(t, "rollout.hcl", planSettings{})
	r := rolloutCLI(t, "plan", p, "--offline")
	expect(t, r, 0, "40 hosts (web01, web02, web03, web04, … web40)", "3 batches", "sha256:(differs per host")
	if n := strings.Count(r.out, "change: not contacted"); n != 1 {
		t.Errorf("%d change entries, want the 40 hosts as one:\n%s", n, r.out)
	}
	v := rolloutCLI(t, "plan", p, "--offline", "-v")
	if n := strings.Count(v.out, "change: not contacted"); n != 40 {
		t.Errorf("-v: %d change entries, want one per host", n)
	}
	j := rolloutCLI(t, "plan", p, "--offline", "--ui", "json")
	if n := strings.Count(j.out, `"host":"web`); n != 40 {
		t.Errorf("--ui json: %d hosts, want 40", n)
	}
}
