package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// nextLines are the commands of every `next:` line in out, in order.
func nextLines(out string) []string {
	var cmds []string
	for _, line := range strings.Split(out, "\n") {
		if _, c, ok := strings.Cut(line, "next: "); ok {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	return cmds
}

// Issue 28: a bad release rolled back under load is marked: status
// --detailed-exitcode says the plan pins a revision that was rolled back
// (exit 4, naming the run, who and why), plan says the same, a plain
// apply (a CI re-run) is refused with exit 2 naming the rollback run, its
// next: lines work when pasted (--retry deploys it again on purpose), and a
// plan saved before the rollback is stale. A mixed fleet is a pending
// change too, its hosts grouped by revision.
func TestRolledBackRevisionIsNotReappliedByAccident(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, 1)
	kh := e.f.KnownHosts
	v1, v2 := e.tags["v1"], e.tags["v2"]
	e.writePlan(v1, "halt", "0s")
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.writePlan(v2, "halt", "0s") // the bad release
	e.rcRun(0, "apply", "--batch", "1", "--yes", "--ui", "plain")
	e.rcRun(0, "plan", "--batch", "1", "--out", "before.json", "--ui", "plain")
	e.waitAllUp(t)

	l := startLoad(e.frontend(), 4)
	r := e.rcRun(0, "rollback", "--batch", "1", "--yes", "--reason", "checkout errors", "--ui", "json")
	l.Stop()
	if n := l.Failed.Load(); n != 0 {
		t.Fatalf("%d client requests failed during the rollback: %v", n, l.Errs())
	}
	var rbRun string
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Event == event.RunStart {
			rbRun = ev.Run
			if ev.RolledBackFrom != v2 || ev.Reason != "checkout errors" || ev.Owner == "" {
				t.Errorf("rollback run_start: rolled_back_from %q reason %q owner %q", ev.RolledBackFrom, ev.Reason, ev.Owner)
			}
		}
	}
	for _, h := range e.f.Hosts {
		st := e.state(t, h)
		m, _ := st["rolled_back_from"].(map[string]any)
		if st["revision"] != v1 || m["revision"] != v2 || m["run_id"] != rbRun || m["reason"] != "checkout errors" || m["by"] == "" {
			t.Errorf("%s current.json after the rollback: %v", h.Name, st)
		}
	}

	// status: the pin was rolled back from; pending (4)
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "plain")
	for _, want := range []string{"pins " + plan.ShortRev(v2) + ", rolled back on ", "(run " + rbRun + "): checkout errors", "hosts are at " + plan.ShortRev(v1)} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, next := range nextLines(r.stdout) {
		if strings.Contains(next, "--retry") {
			continue // pasted below, from apply's refusal
		}
		if p := e.pasteNext(t, next); p.code != 0 {
			dump(t, p)
			t.Errorf("pasting status's %q: exit %d", next, p.code)
		}
	}
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "json")
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row struct {
			Host           string
			Pending        string
			RolledBackFrom *struct {
				Revision string `json:"revision"`
				RunID    string `json:"run_id"`
			} `json:"rolled_back_from"`
		}
		if json.Unmarshal([]byte(line), &row) != nil || row.Host == "" {
			continue
		}
		if row.RolledBackFrom == nil || row.RolledBackFrom.Revision != v2 || row.RolledBackFrom.RunID != rbRun || !strings.Contains(row.Pending, "rolled back on") {
			t.Errorf("status json for %s: %s", row.Host, line)
		}
	}
	r = e.rcRun(0, "plan", "--batch", "1", "--ui", "json")
	var pj struct {
		RolledBackFrom struct {
			Revision string   `json:"revision"`
			RunID    string   `json:"run_id"`
			Hosts    []string `json:"hosts"`
		} `json:"rolled_back_from"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(strings.Split(r.stdout, "\n")[0])), &pj); err != nil || pj.RolledBackFrom.Revision != v2 ||
		pj.RolledBackFrom.RunID != rbRun || len(pj.RolledBackFrom.Hosts) != 3 {
		t.Errorf("plan --ui json rolled_back_from: %+v (%v)\n%s", pj, err, r.stdout)
	}
	r = e.rcRun(0, "plan", "--batch", "1", "--ui", "plain")
	if !strings.Contains(r.stdout, "ROLLED BACK: "+plan.ShortRev(v2)+" was rolled back on ") || !strings.Contains(r.stdout, rbRun) {
		t.Errorf("plan does not say the pin was rolled back:\n%s", r.stdout)
	}

	// a plain apply (the CI re-run) is refused, naming the rollback run
	r = e.rcRun(2, "apply", "--batch", "1", "--yes", "--ui", "plain")
	if !strings.Contains(r.stderr, "run "+rbRun) || !strings.Contains(r.stderr, "nothing was touched") {
		t.Errorf("refusal does not name the rollback run %s:\n%s", rbRun, r.stderr)
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=1" {
			t.Errorf("%s answers %q after the refused apply", h.Name, v)
		}
	}
	nexts := nextLines(r.stderr)
	want := []string{
		"rollout apply rollout.hcl --batch 1 --yes --retry --known-hosts " + kh,
		"rollout plan rollout.hcl --known-hosts " + kh,
	}
	if len(nexts) != 2 || !strings.HasPrefix(nexts[0], want[0]) || !strings.HasPrefix(nexts[1], want[1]) {
		t.Fatalf("refusal's next: lines\n got %q\nwant prefixes %q", nexts, want)
	}
	if p := e.pasteNext(t, nexts[1]); p.code != 0 {
		dump(t, p)
		t.Errorf("pasting %q: exit %d", nexts[1], p.code)
	}
	// the saved plan made before the rollback is stale
	r = e.rcRun(2, "apply", "before.json", "--ui", "plain")
	if !strings.Contains(r.stderr, "stale plan") || len(nextLines(r.stderr)) == 0 {
		t.Errorf("saved plan from before the rollback:\n%s", r.stderr)
	}
	// --retry, pasted as printed, deploys it on purpose
	l = startLoad(e.frontend(), 4)
	p := e.pasteNext(t, nexts[0])
	l.Stop()
	if p.code != 0 {
		dump(t, p)
		t.Fatalf("pasting %q: exit %d", nexts[0], p.code)
	}
	if n := l.Failed.Load(); n != 0 {
		t.Fatalf("%d client requests failed during apply --retry: %v", n, l.Errs())
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("%s answers %q after apply --retry", h.Name, v)
		}
		if st := e.state(t, h); st["rolled_back_from"] != nil {
			t.Errorf("%s still marked after apply --retry: %v", h.Name, st)
		}
	}
	e.waitAllUp(t)
	e.rcRun(0, "status", "--detailed-exitcode", "--ui", "plain")

	// a mixed fleet is a pending change, the hosts grouped by revision
	e.rcRun(0, "apply", "--limit", "web1", "--revision", "v1", "--yes", "--ui", "plain")
	e.waitAllUp(t)
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "plain")
	for _, want := range []string{"the fleet is mixed, its hosts are at 2 revisions", "  " + plan.ShortRev(v2) + " (pinned): web2, web3\n", "  " + plan.ShortRev(v1) + ": web1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("mixed status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.rcRun(4, "status", "--detailed-exitcode", "--ui", "json")
	for _, ev := range parseEvents(t, r.stdout) {
		if ev.Host != "" && !strings.Contains(r.stdout, `"pending":"mixed fleet`) {
			t.Errorf("status json has no pending field for %s:\n%s", ev.Host, r.stdout)
		}
	}
	for _, next := range nextLines(e.rcRun(4, "status", "--detailed-exitcode", "--ui", "plain").stdout) {
		if p := e.pasteNext(t, next); p.code != 0 {
			dump(t, p)
			t.Errorf("pasting status's %q: exit %d", next, p.code)
		}
	}
}
