package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Rollback deploys an earlier revision through the pipeline: after v1 then
// v2, `rollback` returns every host to v1 byte for byte without touching
// the repo; `--to v1` (a tag) works; a rollback to where the hosts already
// are is a no-op; an unknown SHA is refused before anything is touched.
func TestRollbackToEarlierRevision(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	v1 := e.rcConfigs()
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v1"], e.rcRender(t, "v1", h), "version=1")
	}
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v2"], e.rcRender(t, "v2", h), "version=2")
	}
	repo := e.rcRepoFingerprint(t)

	// default target: the last revision every host completed before v2
	r := e.rcRun(0, "rollback", "--yes", "--batch", "1", "--ui", "json")
	_, last := rcDone(t, parseEvents(t, r.stdout))
	if last.Counts[event.OutcomeOK] != 2 {
		t.Fatalf("rollback: %+v, want 2 ok", last.Counts)
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v1"], v1[h.Name], "version=1")
		if st := e.state(t, h); st["previous_revision"] != e.tags["v2"] {
			t.Errorf("%s previous_revision = %v, want v2 %s", h.Name, st["previous_revision"], e.tags["v2"])
		}
	}
	e.waitAllUp(t)
	if got := e.rcRepoFingerprint(t); got != repo {
		t.Fatalf("rollback changed the repo:\nbefore:\n%s\nafter:\n%s", repo, got)
	}

	// forward again (v2 was rolled back from: a plain apply is refused,
	// --retry means it), then back by tag
	e.rcRun(2, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--retry", "--ui", "plain")
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Fatalf("%s answers %q after re-applying v2", h.Name, v)
		}
	}
	e.rcRun(0, "rollback", "--to", "v1", "--yes", "--batch", "1", "--ui", "plain")
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v1"], v1[h.Name], "version=1")
	}

	// already there: every host skipped, nobody restarted
	pids := e.rcPIDs()
	r = e.rcRun(0, "rollback", "--to", "v1", "--yes", "--batch", "1", "--ui", "json")
	evs := parseEvents(t, r.stdout)
	done, last := rcDone(t, evs)
	if last.Counts[event.OutcomeSkipped] != 2 || len(done) != 2 {
		t.Fatalf("no-op rollback: counts %+v, host_done %+v", last.Counts, done)
	}
	for _, ev := range evs {
		if ev.Event == event.HostPhase {
			t.Fatalf("no-op rollback ran a phase: %+v", ev)
		}
	}
	if got := e.rcPIDs(); got[e.f.Hosts[0].Name] != pids[e.f.Hosts[0].Name] || got[e.f.Hosts[1].Name] != pids[e.f.Hosts[1].Name] {
		t.Fatalf("no-op rollback restarted an app: pids %v → %v", pids, got)
	}

	// a SHA the repo does not have: refused, nothing touched
	missing := strings.Repeat("0123456789", 4)
	r = e.rcRun(2, "rollback", "--to", missing, "--yes", "--batch", "1", "--ui", "plain")
	if !strings.Contains(r.stderr, missing) || !strings.Contains(r.stderr, "not in the git repository") {
		dump(t, r)
		t.Errorf("refusal does not say that the repo lacks %s", missing)
	}
	if strings.Contains(r.stderr, "in revision =") {
		dump(t, r)
		t.Errorf("refusal of --to tells to edit the plan's pin, which is not at fault")
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, e.tags["v1"], v1[h.Name], "version=1")
	}
	if got := e.rcPIDs(); got[e.f.Hosts[0].Name] != pids[e.f.Hosts[0].Name] || got[e.f.Hosts[1].Name] != pids[e.f.Hosts[1].Name] {
		t.Fatalf("a refused rollback restarted an app: pids %v → %v", pids, got)
	}
	if got := e.rcRepoFingerprint(t); got != repo {
		t.Fatalf("rollbacks changed the repo:\nbefore:\n%s\nafter:\n%s", repo, got)
	}
}

// Rollback does not need the commit on a branch: a commit deployed by SHA,
// then dropped from the branch by `git reset --hard`, is still in the
// object store and rollback deploys it.
func TestRollbackToCommitNoLongerOnBranch(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	tmpl := e.rcGit(t, "show", "v2:conf/app.conf.tmpl")
	tmpl = strings.Replace(tmpl, "version = 2", "version = 5", 1)
	if err := os.WriteFile(filepath.Join(e.repo, "conf", "app.conf.tmpl"), []byte(tmpl+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.rcGit(t, "commit", "-q", "-am", "v5, deployed by SHA and then dropped from the branch")
	x := e.rcGit(t, "rev-parse", "HEAD")
	e.writePlan(x, "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	atX := e.rcConfigs()
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, x, e.rcRender(t, x, h), "version=5")
	}

	// the branch moves back: x is reachable from no ref any more
	e.rcGit(t, "reset", "-q", "--hard", "v2")
	if out := e.rcGit(t, "branch", "-a", "--contains", x); out != "" {
		t.Fatalf("%s still on a branch: %s", x, out)
	}
	if out := e.rcGit(t, "tag", "--contains", x); out != "" {
		t.Fatalf("%s still tagged: %s", x, out)
	}
	e.writePlan(e.tags["v2"], "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	repo := e.rcRepoFingerprint(t)

	r := e.rcRun(0, "rollback", "--yes", "--batch", "1", "--ui", "plain")
	if !strings.Contains(r.stderr+r.stdout, x[:7]) {
		dump(t, r)
		t.Errorf("rollback output does not name the target %s", x[:7])
	}
	for _, h := range e.f.Hosts {
		e.rcAssertAt(t, h, x, atX[h.Name], "version=5")
	}
	if got := e.rcRepoFingerprint(t); got != repo {
		t.Fatalf("rollback changed the repo:\nbefore:\n%s\nafter:\n%s", repo, got)
	}
	e.waitAllUp(t)
}
