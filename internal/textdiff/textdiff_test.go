package textdiff

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	a := "version = 1\nlisten = 127.0.0.1:8080\nmessage = hello\n"
	b := "version = 2\nlisten = 127.0.0.1:8080\nmessage = hello\n"
	got := Unified("live", "new", a, b, 3)
	want := "--- live\n+++ new\n@@ -1,3 +1,3 @@\n-version = 1\n+version = 2\n listen = 127.0.0.1:8080\n message = hello\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if Unified("a", "b", a, a, 3) != "" {
		t.Fatal("equal inputs gave a diff")
	}
}

// The hunks must be accepted by patch(1): applying our diff to a gives b.
func TestUnifiedAppliesWithPatch(t *testing.T) {
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
	a, b := strings.Join(al, "\n")+"\n", strings.Join(bl, "\n")+"\n"
	d := Unified("f", "f", a, b, 3)
	if strings.Count(d, "@@ ") < 2 {
		t.Fatalf("expected several hunks:\n%s", d)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte(a), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("patch", "-s", f)
	cmd.Stdin = strings.NewReader(d)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch: %v\n%s\n%s", err, out, d)
	}
	got, _ := os.ReadFile(f)
	if string(got) != b {
		t.Fatalf("patched file differs:\n%s", got)
	}
}
