package shell_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/internal/shell"
)

// Parts run in order in one command, stop at the first failure (unless
// keepGoing), report each part's status and output on its own, and the
// cleanup runs whatever happened.
func TestRunParts(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "finally")
	parts := []string{"echo one", "echo two >&2; exit 4", "echo three"}
	res, err := shell.RunParts(context.Background(), localrun.Runner{}, parts, false, "touch "+shell.Quote(done))
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Ran || res[0].Status != 0 || res[0].Out != "one\n" {
		t.Errorf("part 1: %+v", res[0])
	}
	if !res[1].Ran || res[1].Status != 4 || res[1].Out != "two\n" {
		t.Errorf("part 2: %+v", res[1])
	}
	if res[2].Ran {
		t.Errorf("part 3 ran after a failure: %+v", res[2])
	}
	if _, err := os.Stat(done); err != nil {
		t.Errorf("finally did not run: %v", err)
	}
	res, err = shell.RunParts(context.Background(), localrun.Runner{}, parts, true, "")
	if err != nil || !res[2].Ran || res[2].Out != "three\n" {
		t.Errorf("keepGoing: part 3 = %+v, %v", res[2], err)
	}
}

// Merged keeps the order the command wrote its two streams in, whatever
// the command's own redirections and trailing comment.
func TestMergedKeepsOrder(t *testing.T) {
	for range 20 {
		out, err := exec.Command("sh", "-c", shell.Merged("echo one; echo two >&2; echo three # done")).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "one\ntwo\nthree\n" {
			t.Fatalf("got %q", out)
		}
	}
	if err := exec.Command("sh", "-c", shell.Merged("exit 3")).Run(); err == nil || err.(*exec.ExitError).ExitCode() != 3 {
		t.Errorf("exit status lost: %v", err)
	}
}
