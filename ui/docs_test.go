package ui

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsShowTheGoldens keeps docs/ui.md and the views from drifting: a
// fenced block after `<!-- screen: GOLDEN -->` is that golden file whole
// (a TUI screen), one after `<!-- excerpt: GOLDEN -->` is lines of it, in
// order (the plain view). Trailing spaces are not compared, and a block
// indented in a list item is read without its indentation.
func TestDocsShowTheGoldens(t *testing.T) {
	doc, err := os.ReadFile("../docs/ui.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("(?m)^( *)<!-- (screen|excerpt): (ui/testdata/[^ ]+\\.golden) -->\n *```\n")
	found := map[string]int{}
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
	if found["screen"] < 3 || found["excerpt"] < 2 {
		t.Errorf("found %v marked blocks in docs/ui.md; want the 3 TUI screens and 2 plain examples", found)
	}
}
