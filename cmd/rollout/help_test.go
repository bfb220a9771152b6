package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"mvdan.cc/sh/v3/syntax"
)

var updateHelp = flag.Bool("update-help", false, "rewrite testdata/help/*.golden from the current --help")

// helpCommands are the commands a user gets help for: every visible one.
func helpCommands(t *testing.T) (*cobra.Command, []*cobra.Command) {
	t.Helper()
	root := newRoot(context.Background(), &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var out []*cobra.Command
	walk(root, func(c *cobra.Command) {
		if !c.Hidden && c.Name() != "help" {
			out = append(out, c)
		}
	})
	return root, out
}

// TestHelpGolden: every subcommand's --help, as a user reads it.
func TestHelpGolden(t *testing.T) {
	_, cmds := helpCommands(t)
	for _, c := range cmds {
		path := commandPath(c)
		args := append(strings.Fields(path), "--help")
		if c == c.Root() {
			args = []string{"--help"}
			path = "rollout"
		}
		t.Run(path, func(t *testing.T) {
			r := rolloutCLI(t, args...)
			if r.code != 0 {
				t.Fatalf("rollout %s: exit %d\n%s", strings.Join(args, " "), r.code, r)
			}
			golden := filepath.Join("testdata", "help", strings.ReplaceAll(path, " ", "_")+".golden")
			if *updateHelp {
				must(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				must(t, os.WriteFile(golden, []byte(r.out), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/rollout -run TestHelpGolden -update-help writes it)", err)
			}
			if r.out != string(want) {
				t.Errorf("rollout %s differs from %s (rerun with -update-help if the change is meant):\n%s", strings.Join(args, " "), golden, r.out)
			}
		})
	}
}

// TestEveryCommandTeaches: each runnable command has a long description
// and examples; each plan command says its default plan file and each
// [scope] command says what [scope] is; no command's help lists a global
// flag globalFor says does nothing for it.
func TestEveryCommandTeaches(t *testing.T) {
	_, cmds := helpCommands(t)
	for _, c := range cmds {
		path := commandPath(c)
		if strings.HasPrefix(path, "completion") || c == c.Root() {
			continue // cobra's own
		}
		if strings.TrimSpace(c.Long) == "" || strings.TrimSpace(c.Example) == "" {
			t.Errorf("rollout %s: long description %t, examples %t", path, c.Long != "", c.Example != "")
		}
		if strings.Contains(c.Use, "[PLAN") && !strings.Contains(c.Long, "defaults to rollout.hcl") {
			t.Errorf("rollout %s takes PLAN but its help does not say the default plan file", path)
		}
		if strings.Contains(c.Use, "[scope]") && !strings.Contains(c.Long, "[scope] is --limit") {
			t.Errorf("rollout %s takes [scope] but its help does not define it", path)
		}
		usage := c.UsageString()
		if keep, ok := globalFor[path]; ok {
			for _, name := range []string{"known-hosts", "yes", "state-dir", "verbose", "forks"} {
				shown := strings.Contains(usage, "--"+name+" ")
				if shown != contains(keep, name) {
					t.Errorf("rollout %s --help shows --%s: %t, want %t", path, name, shown, contains(keep, name))
				}
			}
		}
	}
}

// TestHelpExamplesParse: every example line is a command rollout knows,
// with flags it takes (they parse on the command they name).
func TestHelpExamplesParse(t *testing.T) {
	_, cmds := helpCommands(t)
	checked := 0
	for _, c := range cmds {
		if c.Example == "" || strings.HasPrefix(commandPath(c), "completion") {
			continue
		}
		f, err := syntax.NewParser().Parse(strings.NewReader(c.Example), commandPath(c))
		if err != nil {
			t.Errorf("rollout %s: examples do not parse as shell: %v", commandPath(c), err)
			continue
		}
		syntax.Walk(f, func(n syntax.Node) bool {
			call, ok := n.(*syntax.CallExpr)
			if !ok {
				return true
			}
			var words []string
			for _, w := range call.Args {
				words = append(words, unquote(w))
			}
			if len(words) == 0 || words[0] != "rollout" {
				t.Errorf("rollout %s: example %q is not a rollout command", commandPath(c), strings.Join(words, " "))
				return false
			}
			fresh, _ := helpCommands(t)
			target, rest, err := fresh.Find(words[1:])
			if err != nil {
				t.Errorf("example %q: %v", strings.Join(words, " "), err)
				return false
			}
			if err := target.ParseFlags(rest); err != nil {
				t.Errorf("example %q: %v", strings.Join(words, " "), err)
			}
			checked++
			return false
		})
	}
	if checked < 25 {
		t.Fatalf("only %d examples checked: the walk misses them", checked)
	}
}

// unquote is a shell word's value (literals and quoted strings).
func unquote(w *syntax.Word) string {
	var b strings.Builder
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if l, ok := q.(*syntax.Lit); ok {
					b.WriteString(l.Value)
				}
			}
		}
	}
	return b.String()
}

// TestMistypedFlagSaysWhichWasMeant: a near miss names the flag; a flag of
// another command names that command; anything else is left as pflag says.
func TestMistypedFlagSaysWhichWasMeant(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--knwon-hosts", "x"}, "unknown flag: --knwon-hosts; did you mean --known-hosts?"},
		{[]string{"apply", "--batchh", "1"}, "did you mean --batch?"},
		{[]string{"plan", "--ofline"}, "did you mean --offline?"},
		{[]string{"status", "--diff"}, "--diff is a flag of rollout plan"},
	} {
		r := rolloutCLI(t, tc.args...)
		expect(t, r, 2, tc.want)
	}
	r := rolloutCLI(t, "status", "--zzzzzzzz")
	expect(t, r, 2, "unknown flag: --zzzzzzzz")
	if strings.Contains(r.errOut, "did you mean") || strings.Contains(r.errOut, "is a flag of") {
		t.Errorf("a flag like no other got a suggestion:\n%s", r)
	}
}

// TestRollbackRevisionIsTo: rollback names its target with --revision, as
// apply and plan do; --to stays the same flag.
func TestRollbackRevisionIsTo(t *testing.T) {
	root, _ := helpCommands(t)
	rb, _, err := root.Find([]string{"rollback"})
	if err != nil {
		t.Fatal(err)
	}
	must(t, rb.ParseFlags([]string{"--revision", "v1"}))
	if got := rb.Flags().Lookup("to").Value.String(); got != "v1" {
		t.Errorf("rollback --revision v1: --to reads %q", got)
	}
	for _, name := range []string{"apply", "plan", "rollback"} {
		c, _, _ := root.Find([]string{name})
		if c.Flags().Lookup("revision") == nil {
			t.Errorf("rollout %s has no --revision", name)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
