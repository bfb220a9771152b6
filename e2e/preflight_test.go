package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Issue 12 item 5: a config its validator rejects on every host is one
// problem. The failure is printed once (not per host, not again on
// stderr), names the file as source@commit rather than the staging path,
// lists the hosts it hit, and the run ends with a `next:` command that,
// pasted once the cause is fixed, does the rollout.
func TestPreflightFailureGroupedWithNext(t *testing.T) {
	t.Parallel()
	e := setup(t, 4, 1)
	broken := e.tags["broken-config"]
	e.writePlan(broken, "halt", "0s")
	r := e.rollout("apply", "--batch", "1", "--yes", "--ui", "plain")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("exit %d, want 1", r.code)
	}
	out := r.stdout
	if n := strings.Count(out, `unknown key "colour"`); n != 1 {
		t.Errorf("the validator's verdict is printed %d times, want once for the 4 hosts:\n%s", n, out)
	}
	if n := strings.Count(out, "validator `"); n != 1 {
		t.Errorf("the validator command is printed %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "preflight failed on 4 host(s) (") {
		t.Errorf("the failure is not grouped over the 4 hosts:\n%s", out)
	}
	for _, h := range e.f.Hosts {
		if !strings.Contains(out, h.Name) {
			t.Errorf("the group does not name %s:\n%s", h.Name, out)
		}
	}
	origin := "conf/app.conf.tmpl@" + broken[:7]
	if !strings.Contains(out, origin+`:6: unknown key "colour"`) {
		t.Errorf("the failure does not name the file as %s:\n%s", origin, out)
	}
	if strings.Contains(out, ".rollout-preflight") || strings.Contains(out, e.f.Hosts[0].Root) {
		t.Errorf("the failure names the temporary staging path:\n%s", out)
	}
	if strings.Contains(r.stderr, "colour") || strings.Contains(r.stderr, "preflight") {
		t.Errorf("the failure is printed on stderr too:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	next, ok := strings.CutPrefix(last, "next: ")
	if !ok || !strings.HasPrefix(next, "rollout apply ") {
		t.Fatalf("the run does not end with a next: command; last line %q", last)
	}
	for _, want := range []string{"--batch 1", "--yes", "--known-hosts " + e.f.KnownHosts} {
		if !strings.Contains(next, want) {
			t.Errorf("next %q lacks %q (the flags of the run it follows)", next, want)
		}
	}

	// JSON: one identical message per host, and run_done.next is the command
	j := e.rollout("apply", "--batch", "1", "--yes", "--ui", "json")
	msgs := map[string]bool{}
	var done event.Event
	for _, ev := range parseEvents(t, j.stdout) {
		if ev.Event == event.PreflightHost && ev.Status == event.StatusFailed {
			msgs[ev.Message] = true
		}
		if ev.Event == event.RunDone {
			done = ev
		}
	}
	if len(msgs) != 1 {
		t.Errorf("the same bad file gives %d different messages, want 1: %v", len(msgs), msgs)
	}
	if done.Next != next {
		t.Errorf("run_done.next %q, want the plain view's %q", done.Next, next)
	}

	// fix the cause (pin a good commit), then paste the command as printed
	e.writePlan(e.tags["v2"], "halt", "0s")
	if p := e.pasteNext(t, next); p.code != 0 {
		dump(t, p)
		t.Fatalf("pasting %q: exit %d", next, p.code)
	}
	for _, h := range e.f.Hosts {
		if v := e.appVersion(t, h); v != "version=2" {
			t.Errorf("after pasting next, %s answers %q", h.Name, v)
		}
	}
}

// Issue 28 item 4: online `plan` runs apply's preflight — every file
// staged beside its destination and validated there, nothing drained,
// nothing live changed — and says what apply would refuse; --no-preflight
// leaves it out.
func TestOnlinePlanRunsThePreflight(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	broken := e.tags["broken-config"]
	e.writePlan(broken, "halt", "0s")
	before := map[string]string{}
	for _, h := range e.f.Hosts {
		before[h.Name] = e.liveConfig(h)
	}
	r := e.rollout("plan", "--batch", "1", "--ui", "plain")
	if r.code != 1 {
		dump(t, r)
		t.Fatalf("plan of a revision its validator rejects: exit %d, want 1", r.code)
	}
	origin := "conf/app.conf.tmpl@" + broken[:7]
	if n := strings.Count(r.stdout, "PREFLIGHT: file app.conf ("+origin+") rejected by its validator"); n != len(e.f.Hosts) {
		t.Errorf("%d hosts say apply's preflight would refuse them, want %d:\n%s", n, len(e.f.Hosts), r.stdout)
	}
	if !strings.Contains(r.stdout, `unknown key "colour"`) || !strings.Contains(r.stdout, "apply would refuse 2 of the hosts that change") {
		t.Errorf("plan does not show the validator's verdict and the summary:\n%s", r.stdout)
	}
	e.checkNoneDrained(t, nil)
	for _, h := range e.f.Hosts {
		if got := e.liveConfig(h); got != before[h.Name] {
			t.Errorf("%s: plan changed the live config:\n%s", h.Name, got)
		}
		leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(h.ConfigPath()), ".*rollout*"))
		if len(leftovers) > 0 {
			t.Errorf("%s: plan left staged copies: %v", h.Name, leftovers)
		}
	}

	j := e.rollout("plan", "--batch", "1", "--ui", "json")
	var out struct {
		Hosts []struct {
			Host      string `json:"host"`
			Preflight *struct {
				What    string `json:"what"`
				Message string `json:"message"`
			} `json:"preflight"`
		} `json:"hosts"`
	}
	first, _, _ := strings.Cut(j.stdout, "\n")
	if err := json.Unmarshal([]byte(first), &out); err != nil {
		t.Fatalf("plan --ui json: %v\n%s", err, j.stdout)
	}
	for _, h := range out.Hosts {
		if h.Preflight == nil || !strings.Contains(h.Preflight.Message, `unknown key "colour"`) {
			t.Errorf("JSON host %s: preflight %+v, want the validator's refusal", h.Host, h.Preflight)
		}
	}

	if r := e.rollout("plan", "--batch", "1", "--ui", "plain", "--no-preflight"); r.code != 0 || strings.Contains(r.stdout, "PREFLIGHT") {
		dump(t, r)
		t.Errorf("plan --no-preflight: exit %d, want 0 and no preflight", r.code)
	}
	e.writePlan(e.tags["v2"], "halt", "0s")
	if r := e.rollout("plan", "--batch", "1", "--ui", "plain"); r.code != 0 || !strings.Contains(r.stdout, "preflight: every file staged and validated") {
		dump(t, r)
		t.Errorf("plan of a good revision: exit %d, want 0 and a passed preflight", r.code)
	}
}
