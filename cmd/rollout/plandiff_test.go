package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileDiff(t *testing.T) {
	a := "version = 1\nlisten = 127.0.0.1:8080\nmessage = hello\n"
	b := "version = 2\nlisten = 127.0.0.1:8080\nmessage = hello\n"
	got := fileDiff("live", "new", a, b)
	want := "--- live\n+++ new\n@@ -1,3 +1,3 @@\n-version = 1\n+version = 2\n listen = 127.0.0.1:8080\n message = hello\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if fileDiff("a", "b", a, a) != "" {
		t.Fatal("equal inputs gave a diff")
	}
}

// The hunks `plan --diff` prints must be accepted by patch(1): applying the
// diff to the live file gives the target.
func TestFileDiffAppliesWithPatch(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		if os.Getenv("ROLLOUT_E2E") == "1" {
			t.Fatal("patch(1) is not installed (make deps installs it)")
		}
		t.Skip("patch not installed")
	}
	var al, bl []string
	for i := 0; i < 60; i++ {
		al = append(al, "line "+string(rune('a'+i%26)))
	}
	bl = append(bl, al...)
	bl[2] = "changed near the top"
	bl = append(bl[:30], append([]string{"inserted in the middle"}, bl[30:]...)...)
	bl = bl[:len(bl)-1]
	for _, tc := range []struct{ name, a, b string }{
		{"several hunks", strings.Join(al, "\n") + "\n", strings.Join(bl, "\n") + "\n"},
		{"new file", "", "a\nb\n"},
		{"no final newline", "a\nb", "a\nc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fileDiff("f", "f", tc.a, tc.b)
			if tc.name == "several hunks" && strings.Count(d, "@@ ") < 2 {
				t.Fatalf("expected several hunks:\n%s", d)
			}
			f := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(f, []byte(tc.a), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("patch", "-s", f)
			cmd.Stdin = strings.NewReader(d)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("patch: %v\n%s\n%s", err, out, d)
			}
			got, _ := os.ReadFile(f)
			if string(got) != tc.b {
				t.Fatalf("patched file differs:\n%q\nwant %q\ndiff:\n%s", got, tc.b, d)
			}
		})
	}
}

// A large file no longer costs an n×m table: 20,000 lines diff quickly and
// in little memory (the old hand-written LCS refused past 5,000 lines).
func TestFileDiffLarge(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 20000; i++ {
		a.WriteString("line\n")
		if i == 10000 {
			b.WriteString("changed\n")
			continue
		}
		b.WriteString("line\n")
	}
	d := fileDiff("f", "f", a.String(), b.String())
	if !strings.Contains(d, "-line\n+changed\n") {
		t.Fatalf("large diff lost the change:\n%.300s", d)
	}
}
