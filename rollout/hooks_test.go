package rollout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// hookLog is what the test hooks appended to <fleet>/hooks.log: one line
// per run of a hook, as the hook saw the run.
func hookLog(t *testing.T, f *fleet) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "hooks.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

const hookBlocks = `batch = [1, 1, 1]
  hook "migrate" {
    at      = "before_run"
    command = "test $ROLLOUT_REVISION = ${revision} && echo migrate:$ROLLOUT_REVISION:$ROLLOUT_HOSTS >> hooks.log"
  }
  hook "smoke" {
    at      = "after_batch"
    command = "echo smoke:$ROLLOUT_BATCH:$ROLLOUT_HOSTS >> hooks.log"
  }
  hook "warm" {
    at      = "after_run"
    command = "echo warm:$ROLLOUT_OUTCOME >> hooks.log"
  }
  hook "page" {
    at      = "on_failure"
    command = "echo page:$ROLLOUT_OUTCOME >> hooks.log"
  }`

// Issue 25: a before_run hook runs once per run, before any host is
// drained; after_batch once per batch, told which; after_run once at the
// end; on_failure not at all when nothing fails.
func TestHooksRunOncePerRunAndPerBatch(t *testing.T) {
	f := newFleet(t, 3, hookBlocks)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	rev := f.revs["v1"]
	want := []string{"migrate:" + rev + ":web1_web2_web3", "smoke:1:web1", "smoke:2:web2", "smoke:3:web3", "warm:ok"}
	if got := hookLog(t, f); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("hooks ran as %v, want %v", got, want)
	}
	// the migration ended before the first drain
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	hookAt, drainAt := -1, -1
	for i, e := range f.rec.events {
		if e.Event == event.Hook && strings.Contains(e.Message, "migrate") && e.Status == event.StatusOK && hookAt < 0 {
			hookAt = i
		}
		if e.Event == event.HostPhase && e.Phase == event.PhaseDrain && drainAt < 0 {
			drainAt = i
		}
	}
	if hookAt < 0 || drainAt < 0 || hookAt > drainAt {
		t.Errorf("migrate hook event at %d, first drain at %d: want the hook to end before any drain", hookAt, drainAt)
	}
}

// A failing before_run hook stops the run with nothing drained or changed
// (exit 1), says so with the hook's output, and on_failure hooks run.
func TestFailingBeforeRunHookTouchesNothing(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]
  hook "migrate" {
    at      = "before_run"
    command = "echo 'relation users already exists' >&2; exit 3"
  }
  hook "page" {
    at      = "on_failure"
    command = "echo page:$ROLLOUT_OUTCOME >> hooks.log"
  }`)
	res, err := f.apply(Request{}, Options{})
	var he *HookError
	if !errors.As(err, &he) || !errors.Is(err, ErrRunFailed) || ExitCode(err) != ExitFailed {
		t.Fatalf("err = %v, want a failed hook (exit 1)", err)
	}
	if f.rec.count("drain ") != 0 {
		t.Errorf("a host was drained although the before_run hook failed")
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if res.Outcomes[h] != event.OutcomeNotStarted || f.file(h) != "" {
			t.Errorf("%s: outcome %s, file %q: want not_started and untouched", h, res.Outcomes[h], f.file(h))
		}
	}
	if !strings.Contains(res.Summary, `hook "migrate" (before_run) failed: exit status 3`) || !strings.Contains(res.Summary, "no host was drained or changed") || !strings.HasPrefix(res.Next, "rollout apply ") {
		t.Errorf("summary %q next %q", res.Summary, res.Next)
	}
	var out *event.Remote
	f.rec.mu.Lock()
	for _, e := range f.rec.events {
		if e.Event == event.Hook && e.Status == event.StatusFailed {
			out = e.Remote
		}
	}
	f.rec.mu.Unlock()
	if out == nil || out.ExitStatus != 3 || !strings.Contains(out.Output, "relation users already exists") {
		t.Errorf("the failed hook's record is %+v, want its exit status and output", out)
	}
	if got := hookLog(t, f); strings.Join(got, " ") != "page:failed" {
		t.Errorf("on_failure hooks ran as %v, want once with outcome failed", got)
	}
}

// A failing after_batch hook halts like a failed host: later batches are
// not started, the batch's hosts are done.
func TestFailingAfterBatchHookHalts(t *testing.T) {
	f := newFleet(t, 3, `batch = [1]
  hook "smoke" {
    at      = "after_batch"
    command = "test \"$ROLLOUT_BATCH\" != 1"
  }`)
	res, err := f.apply(Request{}, Options{})
	var he *HookError
	if !errors.As(err, &he) || he.Batch != 1 {
		t.Fatalf("err = %v, want the after_batch hook of batch 1", err)
	}
	if res.Outcomes["web1"] != event.OutcomeOK || res.Outcomes["web2"] != event.OutcomeNotStarted || res.Outcomes["web3"] != event.OutcomeNotStarted {
		t.Errorf("outcomes %v, want web1 ok and the rest not_started", res.Outcomes)
	}
	if !strings.Contains(f.file("web1"), "version = 1") || f.file("web2") != "" {
		t.Errorf("web1 %q web2 %q", f.file("web1"), f.file("web2"))
	}
	if !strings.Contains(res.Summary, "later batches were not started") {
		t.Errorf("summary %q", res.Summary)
	}
}

// A host that fails its health gate: on_failure runs once, after_run and
// the later after_batch hooks do not.
func TestOnFailureHookRunsWhenAHostFails(t *testing.T) {
	f := newFleet(t, 3, hookBlocks)
	f.failHealth("web2", -1, "not healthy")
	f.applyFails()
	rev := f.revs["v1"]
	want := []string{"migrate:" + rev + ":web1_web2_web3", "smoke:1:web1", "page:failed"}
	if got := hookLog(t, f); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("hooks ran as %v, want %v", got, want)
	}
}

// A hook's on must name an inventory host: an error at the attribute.
func TestHookOnAnUnknownHostIsRefused(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]
  hook "migrate" {
    at      = "before_run"
    command = "true"
    on      = "db9"
  }`)
	_, err := f.apply(Request{}, Options{})
	var de *DiagError
	if !errors.As(err, &de) || !strings.Contains(de.Error(), `hook "migrate" runs on "db9"`) || de.Diags[0].Subject == nil {
		t.Fatalf("err = %v, want a diagnostic at on", err)
	}
}

// A run resumed after an interruption does not repeat a before_run hook
// that succeeded for the same revision; --rerun-hooks runs it again.
func TestResumedRunDoesNotRepeatAMigration(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]
  hook "migrate" {
    at      = "before_run"
    command = "echo migrate >> hooks.log"
  }`)
	journaled := func() Options { return Options{Backend: journal.NewLocal(filepath.Join(f.dir, ".rollout"))} }
	f.failHealth("web2", -1, "not healthy")
	if _, err := f.apply(Request{}, journaled()); !errors.Is(err, ErrRunFailed) { // web1 done, web2 failed: the migration ran once
		t.Fatalf("first run: %v, want it failed", err)
	}
	f.failHealth("none", 0, "")
	if _, err := f.apply(Request{}, journaled()); err != nil {
		t.Fatal(err)
	}
	if got := hookLog(t, f); len(got) != 1 {
		t.Errorf("the migration ran %d times over a run and its resume, want once", len(got))
	}
	var skipped bool
	f.rec.mu.Lock()
	for _, e := range f.rec.events {
		skipped = skipped || e.Event == event.Hook && e.Status == HookSkipped && strings.Contains(e.Message, "--rerun-hooks")
	}
	f.rec.mu.Unlock()
	if !skipped {
		t.Error("the resumed run does not say it skipped the migration")
	}
	f.writePlan("v2", `batch = [1]
  hook "migrate" {
    at      = "before_run"
    command = "echo migrate >> hooks.log"
  }`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := hookLog(t, f); len(got) != 2 {
		t.Errorf("a new revision's migration: %d runs in all, want 2", len(got))
	}
	f.writePlan("v1", `batch = [1]
  hook "migrate" {
    at      = "before_run"
    command = "echo migrate >> hooks.log"
  }`)
	rerun := journaled()
	rerun.RerunHooks = true
	if _, err := f.apply(Request{}, rerun); err != nil {
		t.Fatal(err)
	}
	if got := hookLog(t, f); len(got) != 3 {
		t.Errorf("--rerun-hooks: %d runs in all, want 3", len(got))
	}
}
