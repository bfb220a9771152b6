package ui

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsShowTheGoldens keeps docs/ui.md and the views from drifting: a
// fenced block after `<!-- screen: GOLDEN -->` is that golden file whole
// (a TUI screen), one after `<!-- excerpt: GOLDEN -->` is lines of it, in
// order (the plain view). Trailing spaces are not compared, and a block
// indented in a list item is read without its indentation. With -update
// (which regenerates the goldens) the screens in docs/ui.md are rewritten
// from them (this file sorts after model_test.go and plain_test.go, so
// their goldens are written first); review the diff.
func TestDocsShowTheGoldens(t *testing.T) {
	doc, err := os.ReadFile("../docs/ui.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("(?m)^( *)<!-- (screen|excerpt): (ui/testdata/[^ ]+\\.golden) -->\n *```\n")
	found := map[string]int{}
	var rewritten [][3]int // with -update: the screens' spans, replaced by rewrites
	var rewrites []string
	for _, m := range marker.FindAllSubmatchIndex(doc, -1) {
		indent := string(doc[m[2]:m[3]])
		kind, golden := string(doc[m[4]:m[5]]), string(doc[m[6]:m[7]])
		rest := string(doc[m[1]:])
		end := strings.Index(rest, "\n"+indent+"```")
		if end < 0 {
			t.Fatalf("docs/ui.md: the block of %s has no end", golden)
		}
		var got []string
		for _, l := range strings.Split(rest[:end], "\n") {
			got = append(got, strings.TrimRight(strings.TrimPrefix(l, indent), " "))
		}
		b, err := os.ReadFile(strings.TrimPrefix(golden, "ui/"))
		if err != nil {
			t.Errorf("docs/ui.md quotes %s: %v", golden, err)
			continue
		}
		var want []string
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			want = append(want, strings.TrimRight(l, " "))
		}
		found[kind]++
		if kind == "screen" && updating() {
			var quoted []string
			for _, l := range want {
				if l != "" {
					l = indent + l
				}
				quoted = append(quoted, l)
			}
			rewritten = append(rewritten, [3]int{m[1], m[1] + end})
			rewrites = append(rewrites, strings.Join(quoted, "\n"))
			continue
		}
		switch kind {
		case "screen":
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("docs/ui.md's screen differs from %s (go test ./ui -update regenerates goldens; then paste them):\n--- docs\n%s\n--- golden\n%s",
					golden, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		case "excerpt":
			i := 0
			for _, l := range got {
				for i < len(want) && want[i] != l {
					i++
				}
				if i == len(want) {
					t.Errorf("docs/ui.md's example line %q is not in %s (in order)", l, golden)
					break
				}
				i++
			}
		}
	}
	if len(rewritten) > 0 {
		out := string(doc)
		for i := len(rewritten) - 1; i >= 0; i-- {
			out = out[:rewritten[i][0]] + rewrites[i] + out[rewritten[i][1]:]
		}
		if err := os.WriteFile("../docs/ui.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if found["screen"] < 3 || found["excerpt"] < 2 {
		t.Errorf("found %v marked blocks in docs/ui.md; want the 3 TUI screens and 2 plain examples", found)
	}
}

// updating reports whether the tests run with -update (teatest's golden
// files flag).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}
