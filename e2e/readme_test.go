package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// readmeCommands returns the `rollout …` lines of README.md's command
// example (the ```sh block that starts with `rollout validate`), as words.
func readmeCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, part := range strings.Split(string(b), "```sh\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		if strings.HasPrefix(body, "rollout validate") {
			block = body
		}
	}
	if block == "" {
		t.Fatal("README.md has no ```sh block starting with `rollout validate`")
	}
	f, err := syntax.NewParser().Parse(strings.NewReader(block), "README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		var words []string
		for _, w := range call.Args {
			lit, err := expand.Literal(nil, w)
			if err != nil {
				t.Fatalf("README.md: %v", err)
			}
			words = append(words, lit)
		}
		out = append(out, words)
		return true
	})
	return out
}

// TestReadmeCommandsOnTheFleet runs README.md's command example, line by
// line and in order, against a real fleet (4 sshd hosts behind HAProxy)
// whose plan is the README's with the fleet's addresses: each command must
// succeed, the saved plan must apply, and the rollback must put every host
// back on the revision before. The only change to what the README shows:
// `--yes` is added to the one apply that "asks first", because a test has no
// terminal (the README says so: "--yes in CI").
func TestReadmeCommandsOnTheFleet(t *testing.T) {
	t.Parallel()
	cmds := readmeCommands(t)
	if len(cmds) < 8 {
		t.Fatalf("README's example has %d commands; the extractor is broken", len(cmds))
	}
	e := setup(t, 4, 1)
	e.extra = `  batch = [1, "25%"]`
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.waitAllUp(t)
	e.rcRun(0, "apply", "--yes", "--ui", "plain") // the fleet starts on v1
	e.writePlan(e.tags["v2"], "halt", "0s")

	for _, words := range cmds {
		if words[0] != "rollout" {
			t.Fatalf("README's example has a non-rollout command: %v", words)
		}
		args := words[1:]
		if args[0] == "apply" && !strings.HasSuffix(args[len(args)-1], ".json") {
			has := false
			for _, a := range args {
				has = has || a == "--yes"
			}
			if !has {
				args = append(args, "--yes") // "asks first; --yes in CI"
			}
		}
		r := e.rcRun(0, args...)
		switch args[0] {
		case "hosts":
			if !strings.Contains(strings.Join(args, " "), "web:!web3") {
				break
			}
			if strings.Contains(r.stdout, "web3 ") || !strings.Contains(r.stdout, "3 of 4 host(s)") {
				t.Errorf("hosts --limit 'web:!web3':\n%s", r.stdout)
			}
		case "status":
			if strings.Contains(r.stdout, "need attention") {
				t.Errorf("status after the README's apply says something needs attention:\n%s", r.stdout)
			}
		case "apply":
			if strings.HasSuffix(args[len(args)-1], ".json") { // the saved plan: every host now at v2
				for _, h := range e.f.Hosts {
					e.rcAssertAt(t, h, e.tags["v2"], e.rcRender(t, "v2", h), "version=2")
				}
			}
		}
	}
	// the last command is the rollback: back to v1 everywhere
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v1"], e.rcRender(t, "v1", h), "version=1")
	}
	e.waitAllUp(t)
}

// TestReadmeAptListIsMakeDeps: the Debian packages the README's quick
// start says `make deps` installs are the ones the Makefile's deps target
// installs, no more, no fewer.
func TestReadmeAptListIsMakeDeps(t *testing.T) {
	root := moduleRoot(t)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]bool{}
	for _, m := range regexp.MustCompile(`missing="\$\$missing ([a-z0-9.-]+)"`).FindAllStringSubmatch(string(mk), -1) {
		deps[m[1]] = true
	}
	if len(deps) < 5 {
		t.Fatalf("found %d packages in the Makefile's deps target: the pattern misses them", len(deps))
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	quick := string(readme)
	if i := strings.Index(quick, "## Quick start"); i >= 0 {
		quick = quick[i:]
	}
	m := regexp.MustCompile("`apt-get install ([^`]+)`").FindStringSubmatch(quick)
	if m == nil {
		t.Fatal("README's quick start names no `apt-get install …` list")
	}
	said := map[string]bool{}
	for _, p := range strings.Fields(m[1]) {
		said[p] = true
		if !deps[p] {
			t.Errorf("README lists %s, which make deps does not install", p)
		}
	}
	for p := range deps {
		if !said[p] {
			t.Errorf("make deps installs %s, which the README's apt list leaves out", p)
		}
	}
}
