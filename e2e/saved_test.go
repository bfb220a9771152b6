package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plan --out saves exactly what apply will do; apply FILE does it without a
// prompt, or refuses when a host changed since; plan --diff shows the change.
func TestSavedPlanAndDiff(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	e.writePlan(e.tags["v1"], "halt", "0s")
	if r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain"); r.code != 0 {
		dump(t, r)
		t.Fatal("apply v1 failed")
	}
	e.writePlan(e.tags["v2"], "halt", "0s")

	// --diff: the live v1 file against the v2 rendering
	r := e.rollout("plan", "--batch", "1", "--diff", "--limit", "web1")
	if r.code != 0 || !strings.Contains(r.stdout, "-version = 1") || !strings.Contains(r.stdout, "+version = 2") {
		dump(t, r)
		t.Fatal("plan --diff does not show the version change")
	}

	saved := filepath.Join(e.dir, "web.plan.json")
	if r := e.rollout("plan", "--batch", "1", "--out", saved); r.code != 0 {
		dump(t, r)
		t.Fatal("plan --out failed")
	}
	// someone rolls web2 forward in between: the saved plan is stale
	if r := e.rollout("apply", "--limit", "web2", "--yes", "--ui", "plain"); r.code != 0 {
		dump(t, r)
		t.Fatal("apply --limit web2 failed")
	}
	r = e.rollout("apply", saved, "--ui", "plain")
	if r.code != 2 || !strings.Contains(r.stderr, "stale plan: web2 is now at "+e.tags["v2"][:7]) || !strings.Contains(r.stderr, "planned from "+e.tags["v1"][:7]) {
		dump(t, r)
		t.Fatalf("stale saved plan: exit %d, want 2 naming web2's revisions", r.code)
	}
	if v := e.appVersion(t, e.f.Hosts[0]); v != "version=1" {
		t.Fatalf("web1 changed by a refused stale plan: %s", v)
	}

	// a fresh saved plan applies, without a prompt (stdin is not a terminal)
	if r := e.rollout("plan", "--batch", "1", "--out", saved); r.code != 0 {
		dump(t, r)
		t.Fatal("plan --out failed")
	}
	if r := e.rollout("apply", saved, "--ui", "plain"); r.code != 0 {
		dump(t, r)
		t.Fatalf("apply SAVED: exit %d", r.code)
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %s after apply SAVED", h.Name, v)
		}
	}
	// a saved plan cannot be re-scoped
	if r := e.rollout("apply", saved, "--limit", "web1"); r.code != 2 {
		dump(t, r)
		t.Fatal("apply SAVED --limit was not refused")
	}
	// the plan file changed: stale
	b, _ := os.ReadFile(e.plan)
	if err := os.WriteFile(e.plan, append(b, []byte("\n# edited\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.rollout("apply", saved); r.code != 2 || !strings.Contains(r.stderr, "plan file") {
		dump(t, r)
		t.Fatal("a changed plan file did not make the saved plan stale")
	}
}
