package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 25: a migration hook on an inventory host runs once for a 3-batch
// run (its side effects counted), before the first drain; a smoke test
// after each batch runs on the controller once per batch; under load no
// request fails. A failing migration leaves every host untouched and in
// service.
func TestHooksRunOnceAroundTheFleet(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.waitAllUp(t)
	migrations := filepath.Join(t.TempDir(), "migrations")
	e.extra = fmt.Sprintf(`  batch = [1]
  hook "migrate" {
    at      = "before_run"
    on      = "web1"
    command = "echo \"$ROLLOUT_RUN $ROLLOUT_REVISION\" >> %s"
  }
  hook "smoke" {
    at      = "after_batch"
    command = "echo \"batch $ROLLOUT_BATCH: $ROLLOUT_HOSTS\" >> smoke.log"
  }`, migrations)
	v2 := e.tags["v2"]
	e.writePlan(v2, "halt", "0s")
	l := startLoad(e.frontend(), 4)
	r := e.rollout("apply", "--yes", "--ui", "json")
	okN, failedN, errs := l.Stop()
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("exit %d", r.code)
	}
	evs := parseEvents(t, r.stdout)
	b, _ := os.ReadFile(migrations)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " "+v2) {
		t.Errorf("the migration ran %d times (%q), want once with the revision", len(lines), b)
	}
	smoke, _ := os.ReadFile(filepath.Join(e.dir, "smoke.log"))
	if got := strings.Count(string(smoke), "batch "); got != 3 || !strings.Contains(string(smoke), "batch 3: web3") {
		t.Errorf("smoke ran %d times:\n%s", got, smoke)
	}
	hookDone, firstDrain := -1, -1
	for i, ev := range evs {
		if ev.Event == event.Hook && ev.Status == event.StatusOK && strings.Contains(ev.Message, "migrate") && hookDone < 0 {
			hookDone = i
			if ev.Host != "web1" {
				t.Errorf("migrate hook event names host %q, want web1", ev.Host)
			}
		}
		if ev.Event == event.HostPhase && ev.Phase == event.PhaseDrain && firstDrain < 0 {
			firstDrain = i
		}
	}
	if hookDone < 0 || firstDrain < hookDone {
		t.Errorf("migrate ended at event %d, the first drain at %d: want the migration first", hookDone, firstDrain)
	}
	if failedN != 0 || okN == 0 {
		t.Errorf("%d client requests failed (%d ok) during the run: %v", failedN, okN, errs)
	}
	e.checkAtRevision(t, v2, "version=2")

	// a failing migration: nothing drained, nothing changed
	e.extra = `  batch = [1]
  hook "migrate" {
    at      = "before_run"
    on      = "web1"
    command = "echo 'duplicate column: email' >&2; exit 1"
  }`
	v1 := e.tags["v1"]
	e.writePlan(v1, "halt", "0s")
	before := map[string]string{}
	for _, h := range e.f.Hosts {
		before[h.Name] = e.liveConfig(h)
	}
	r = e.rollout("apply", "--yes", "--ui", "plain")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("failing migration: exit %d, want 1", r.code)
	}
	for _, want := range []string{`hook "migrate" (before_run) failed`, "duplicate column: email", "no host was drained or changed", "next: rollout apply"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the failed run does not say %q:\n%s", want, r.stdout)
		}
	}
	for _, h := range e.f.Hosts {
		if e.liveConfig(h) != before[h.Name] {
			t.Errorf("%s changed although the migration failed", h.Name)
		}
	}
	e.checkNoneDrained(t, nil)
}
