package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/rollout-sh/rollout/internal/fleet"
)

// The docs test: every fenced ```hcl and ```sh example in README.md and
// docs/*.md is run.
//
//   - HCL: a whole `plan` block goes through `rollout validate` against a
//     fixture repository (tags for every revision the docs name, an
//     inventory with the groups and variables they use). A fragment (a drain,
//     file or health block, an attribute, or a plan showing only a few
//     attributes) replaces its counterpart in the README's plan, one item at a
//     time, and that plan is validated.
//   - sh: each `rollout …` line is parsed by the real command tree (the
//     command exists, every flag exists and takes its value, the argument
//     count is right); each `make X` names a Makefile target; each `jq`
//     filter runs against the example events of docs/json-events.md.
//     README.md's command example (the block that needs hosts) is also run,
//     line by line, against a real fleet by e2e.TestReadmeCommandsOnTheFleet;
//     the other docs' commands (history --replay, make targets) are only
//     parsed here.
//
// A line starting with any other command fails the test, so an example
// nobody checks cannot be added.

type docBlock struct {
	file string
	line int
	lang string
	text string
}

// repoRoot is the module root (two levels up from cmd/rollout).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func docFiles(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	files := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

// fencedBlocks returns the fenced code blocks of a markdown file in lang.
func fencedBlocks(t *testing.T, path string, langs ...string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docBlock
	var cur *docBlock
	sc := bufio.NewScanner(f)
	n := 0
	rel, _ := filepath.Rel(repoRoot(t), path)
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			lang := strings.TrimSpace(strings.TrimPrefix(l, "```"))
			for _, want := range langs {
				if lang == want {
					cur = &docBlock{file: rel, line: n + 1, lang: lang}
				}
			}
			if cur == nil && lang != "" {
				cur = &docBlock{lang: "-"} // skip to its end
			} else if cur == nil {
				cur = &docBlock{lang: "-"}
			}
		case cur != nil && strings.HasPrefix(l, "```"):
			if cur.lang != "-" {
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// docsInventory has what the docs' examples select: group web (12 hosts, as
// docs/plan.md's expect_hosts says), prod, an lb1 for `via`, and the
// variables the examples interpolate.
func docsInventory() string {
	var b strings.Builder
	b.WriteString("[web]\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "web%d ansible_host=10.0.0.%d app_port=80%02d unit=appd\n", i, i, i)
	}
	b.WriteString("\n[prod:children]\nweb\n\n[lb]\nlb1 ansible_host=10.0.9.1\n")
	return b.String()
}

var (
	revisionAttr = regexp.MustCompile(`revision\s*=\s*"([^"]+)"`)
	sourceAttr   = regexp.MustCompile(`source\s*=\s*"([^"$]+)"`)
)

// docsFixture is a repository with a commit for every revision the HCL
// examples name (tags; full SHAs are rewritten to the fixture's commit).
func docsFixture(t *testing.T, blocks []docBlock) *fixture {
	t.Helper()
	f := newFixture(t)
	f.write(t, "inventory.ini", docsInventory())
	// ansible.cfg names the inventory for the examples that leave it out
	f.write(t, "ansible.cfg", "[defaults]\ninventory = inventory.ini\n")
	// every source the examples name exists at the revision they pin
	for _, b := range blocks {
		for _, m := range sourceAttr.FindAllStringSubmatch(b.text, -1) {
			if _, err := os.Stat(filepath.Join(f.dir, m[1])); err != nil {
				f.write(t, m[1], "# rendered by rollout for {{ inventory_hostname }}\n")
			}
		}
	}
	f.write(t, ".gitignore", "*.hcl\ninventory.ini\nansible.cfg\n.rollout/\n")
	f.commit(t, "docs", "2026-01-03T12:00:00Z")
	f.git(t, "tag", "-f", "v2", "docs")
	f.v2 = f.rev(t, "v2")
	for _, b := range blocks {
		for _, m := range revisionAttr.FindAllStringSubmatch(b.text, -1) {
			rev := m[1]
			if sha40.MatchString(rev) || rev == "v1" || rev == "v2" {
				continue
			}
			if f.git(t, "tag", "-l", rev) == "" {
				f.git(t, "tag", rev, "v2")
			}
		}
	}
	return f
}

var sha40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

// fragmentPlans turns one HCL example into the plan files to validate: a
// full plan as it is (full SHAs pointed at the fixture), anything else
// merged into base one item at a time.
func fragmentPlans(t *testing.T, base []byte, b docBlock, fixtureRev string) []string {
	t.Helper()
	src := regexp.MustCompile(`"[0-9a-f]{40}"`).ReplaceAllString(b.text, `"`+fixtureRev+`"`)
	f, diags := hclwrite.ParseConfig([]byte(src), b.file, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s:%d: the example does not parse: %v\n%s", b.file, b.line, diags, b.text)
	}
	body := f.Body()
	var items []func(*hclwrite.Body)
	if bl := body.Blocks(); len(bl) == 1 && bl[0].Type() == "plan" && len(body.Attributes()) == 0 {
		pb := bl[0].Body()
		if pb.GetAttribute("restart") != nil && len(pb.Blocks()) > 0 { // a whole plan
			return []string{src}
		}
		body = pb // a plan showing a few attributes: merge them all at once
		items = append(items, func(dst *hclwrite.Body) { mergeInto(dst, body) })
	} else {
		for name, a := range body.Attributes() {
			one := hclwrite.NewEmptyFile()
			one.Body().SetAttributeRaw(name, a.Expr().BuildTokens(nil))
			items = append(items, func(dst *hclwrite.Body) { mergeInto(dst, one.Body()) })
		}
		for _, blk := range body.Blocks() {
			one := hclwrite.NewEmptyFile()
			one.Body().AppendBlock(blk)
			items = append(items, func(dst *hclwrite.Body) { mergeInto(dst, one.Body()) })
		}
	}
	var out []string
	for _, apply := range items {
		pf, diags := hclwrite.ParseConfig(base, "base.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		apply(pf.Body().Blocks()[0].Body())
		out = append(out, string(pf.Bytes()))
	}
	return out
}

// mergeInto sets src's attributes on dst and replaces dst's blocks of the
// same kind (drain, health: by type; file: by type and name) with src's.
func mergeInto(dst, src *hclwrite.Body) {
	for name, a := range src.Attributes() {
		dst.SetAttributeRaw(name, a.Expr().BuildTokens(nil))
	}
	for _, blk := range src.Blocks() {
		for _, old := range dst.Blocks() {
			if old.Type() == blk.Type() && (blk.Type() != "file" || strings.Join(old.Labels(), "/") == strings.Join(blk.Labels(), "/")) {
				dst.RemoveBlock(old)
			}
		}
		dst.AppendBlock(blk)
	}
}

func TestDocsHCLExamplesValidate(t *testing.T) {
	var blocks []docBlock
	for _, path := range docFiles(t) {
		blocks = append(blocks, fencedBlocks(t, path, "hcl")...)
	}
	if len(blocks) < 5 {
		t.Fatalf("found %d hcl examples in README.md and docs/; the extractor is broken", len(blocks))
	}
	if blocks[0].file != "README.md" || !strings.HasPrefix(blocks[0].text, "plan ") {
		t.Fatalf("the first hcl example should be README.md's plan, got %s:%d", blocks[0].file, blocks[0].line)
	}
	f := docsFixture(t, blocks)
	base := []byte(blocks[0].text)
	checked := 0
	for _, b := range blocks {
		for i, src := range fragmentPlans(t, base, b, f.v2) {
			name := fmt.Sprintf("doc-%d-%d.hcl", b.line, i)
			p := f.write(t, name, src)
			r := rolloutCLI(t, "validate", p)
			if r.code != 0 {
				t.Errorf("%s:%d: the example does not validate (as %s):\n%s\n%s", b.file, b.line, name, src, r)
			}
			checked++
		}
	}
	t.Logf("%d hcl examples, %d plans validated", len(blocks), checked)
}

// shellCommands parses an example with a real shell parser and returns
// each simple command's words (pipelines and lists split; comments dropped).
// A word that is not a plain literal after quote removal (a $var, a $(...))
// is kept as the shell text.
func shellCommands(t *testing.T, b docBlock) [][]string {
	t.Helper()
	f, err := syntax.NewParser().Parse(strings.NewReader(b.text), b.file)
	if err != nil {
		t.Errorf("%s:%d: the example is not valid shell: %v", b.file, b.line, err)
		return nil
	}
	var out [][]string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		var words []string
		for _, w := range call.Args {
			if lit, err := expand.Literal(nil, w); err == nil && !strings.Contains(lit, "$") {
				words = append(words, lit)
				continue
			}
			var sb strings.Builder
			_ = syntax.NewPrinter().Print(&sb, w)
			words = append(words, sb.String())
		}
		out = append(out, words)
		return true
	})
	return out
}

// parseRolloutLine checks a rollout command line the way the binary reads
// it, without running it.
func parseRolloutLine(args []string) error {
	ios := &IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}}
	root := newRoot(context.Background(), ios)
	c, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if c == root {
		return fmt.Errorf("no such command: %q", strings.Join(args, " "))
	}
	if err := c.ParseFlags(rest); err != nil {
		return err
	}
	return c.ValidateArgs(c.Flags().Args())
}

func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(b), -1) {
		targets[m[1]] = true
	}
	return targets
}

// jsonExamples is the example stream of docs/json-events.md, one event a line.
func jsonExamples(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, blk := range fencedBlocks(t, filepath.Join(repoRoot(t), "docs", "json-events.md"), "json") {
		b.WriteString(blk.text)
	}
	return b.String()
}

func TestDocsShellExamplesParse(t *testing.T) {
	var blocks []docBlock
	for _, path := range docFiles(t) {
		blocks = append(blocks, fencedBlocks(t, path, "sh")...)
	}
	targets := makeTargets(t)
	// the recipes read rollout.jsonl: the docs' own example stream
	jqDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jqDir, "rollout.jsonl"), []byte(jsonExamples(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, b := range blocks {
		for _, words := range shellCommands(t, b) {
			where := fmt.Sprintf("%s:%d: %s", b.file, b.line, strings.Join(words, " "))
			if words[0] == "flock" && len(words) > 2 { // flock LOCKFILE CMD...: check CMD
				words = words[2:]
			}
			switch words[0] {
			case "bin/rollout-bench":
				if _, err := os.Stat(filepath.Join(repoRoot(t), "bench", "cmd", "rollout-bench")); err != nil {
					t.Errorf("%s: no bench/cmd/rollout-bench to build bin/rollout-bench from", where)
				}
			case "curl", "sort", "join", "rm", "q":
				// the Prometheus recipe of docs/analysis.md talks to a
				// Prometheus server: parsed as shell above, not run
			case "etcdctl":
				// docs/team.md's inspection lines talk to an etcd cluster
				// (e2e/team_test.go reads the same keys): parsed, not run
			case "rollout":
				if err := parseRolloutLine(words[1:]); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			case "make":
				for _, tg := range words[1:] {
					if strings.Contains(tg, "=") { // a variable: N=100
						continue
					}
					if !targets[tg] {
						t.Errorf("%s: no Makefile target %q", where, tg)
					}
				}
			case "jq":
				if !strings.HasSuffix(b.file, "json-events.md") {
					break // other recipes read other data (Prometheus): parsed only
				}
				fleet.RequireTool(t, "jq")
				cmd := exec.Command("jq", words[1:]...)
				cmd.Dir = jqDir
				out, err := cmd.CombinedOutput()
				if err != nil || len(strings.TrimSpace(string(out))) == 0 {
					t.Errorf("%s: against docs/json-events.md's examples: %v\n%s", where, err, out)
				}
			case "tee":
			case "go":
				if err := checkGoBench(repoRoot(t), words[1:]); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			default:
				t.Errorf("%s: the docs test does not know how to check %q; teach it (cmd/rollout/docs_test.go)", where, words[0])
			}
			counts[words[0]]++
		}
	}
	if counts["rollout"] < 10 {
		t.Fatalf("found %d rollout commands in the docs' sh examples; the extractor is broken", counts["rollout"])
	}
	t.Logf("checked: %v", counts)
}

// checkGoBench checks a documented "go test -bench PATTERN ... PKG": each
// alternative of the pattern names a benchmark of that package.
func checkGoBench(root string, args []string) error {
	if len(args) == 0 || args[0] != "test" {
		return fmt.Errorf("only \"go test -bench\" lines are documented")
	}
	pattern, pkg := "", ""
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "-bench" && i+1 < len(args):
			pattern = args[i+1]
			i++
		case strings.HasPrefix(args[i], "./"):
			pkg = args[i]
		}
	}
	if pattern == "" || pkg == "" {
		return fmt.Errorf("want -bench PATTERN and a ./package")
	}
	files, err := filepath.Glob(filepath.Join(root, pkg, "*_test.go"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no test files in %s", pkg)
	}
	var names []string
	decl := regexp.MustCompile(`(?m)^func (Benchmark\w+)\(`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
		}
	}
	for _, alt := range strings.Split(pattern, "|") {
		re, err := regexp.Compile(alt)
		if err != nil {
			return fmt.Errorf("-bench %q: %v", pattern, err)
		}
		found := false
		for _, n := range names {
			found = found || re.MatchString(n)
		}
		if !found {
			return fmt.Errorf("-bench %q: %q matches no benchmark in %s", pattern, alt, pkg)
		}
	}
	return nil
}
