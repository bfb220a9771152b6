package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

// ciVars are the variables rollout reads the operator from: the test's
// own environment (a CI runner's) must not decide whom it sees.
var ciVars = []string{"ROLLOUT_OPERATOR", "GITHUB_ACTOR", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID",
	"GITLAB_USER_LOGIN", "CI_JOB_URL"}

// rolloutAs is rollout with the operator's variables of vars only (every
// one of ciVars inherited is dropped).
func (e *env) rolloutAs(vars []string, args ...string) result {
	e.t.Helper()
	var environ []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, c := range ciVars {
			drop = drop || k == c
		}
		if !drop {
			environ = append(environ, kv)
		}
	}
	return e.rolloutIn(append(environ, vars...), e.f.KnownHosts, args...)
}

// jsonLines decodes out's JSON lines into maps (status, history).
func jsonObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		objs = append(objs, m)
	}
	return objs
}

// Issue 27 item 3: who ran a run, and who approved its gate, is recorded
// in the events (--ui json), the journal, each host's current.json
// (deployed_by), shown by status and history, and given to hooks — from
// GitHub Actions' variables, from GitLab's, and from --operator, which
// wins over both and over ROLLOUT_OPERATOR.
func TestOperatorRecordedFromCIAndFlag(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, 1)
	e.waitAllUp(t)
	e.extra = `  batch         = [1]
  approve_after = [1]
  hook "who" {
    at      = "after_run"
    command = "echo \"$ROLLOUT_RUN $ROLLOUT_OPERATOR $ROLLOUT_OPERATOR_URL\" >> who.log"
  }`
	github := []string{"GITHUB_ACTOR=octocat", "GITHUB_SERVER_URL=https://github.example", "GITHUB_REPOSITORY=acme/web", "GITHUB_RUN_ID=4242"}
	githubURL := "https://github.example/acme/web/actions/runs/4242"
	gitlab := []string{"GITLAB_USER_LOGIN=tanuki", "CI_JOB_URL=https://gitlab.example/acme/web/-/jobs/77"}
	gitlabURL := "https://gitlab.example/acme/web/-/jobs/77"

	type want struct{ name, url string }
	var runs []string
	var wants []want
	apply := func(rev string, vars []string, w want, extra ...string) {
		t.Helper()
		e.writePlan(rev, "halt", "0s")
		r := e.rolloutAs(vars, append([]string{"apply", "--yes", "--auto-approve", "--ui", "json"}, extra...)...)
		if r.code != 0 {
			dump(t, r)
			t.Fatalf("apply %s as %s: exit %d", rev, w.name, r.code)
		}
		evs := parseEvents(t, r.stdout)
		seen := map[event.Kind]bool{}
		for _, ev := range evs {
			switch ev.Event {
			case event.RunStart, event.Approved, event.RunDone:
				seen[ev.Event] = true
				if ev.Operator != w.name || ev.OperatorURL != w.url {
					t.Errorf("%s: operator %q (%q), want %q (%q)", ev.Event, ev.Operator, ev.OperatorURL, w.name, w.url)
				}
			}
			if ev.Event == event.RunStart && !strings.Contains(ev.Owner, "@") {
				t.Errorf("run_start owner %q: want the lock owner user@host kept", ev.Owner)
			}
			if ev.Event == event.Approved && ev.Message != "approved by --auto-approve" {
				t.Errorf("approved message %q", ev.Message)
			}
		}
		if !seen[event.RunStart] || !seen[event.Approved] || !seen[event.RunDone] {
			t.Fatalf("saw %v, want run_start, approved and run_done", seen)
		}
		runs = append(runs, evs[0].Run)
		wants = append(wants, w)
		for _, h := range e.f.Hosts {
			if st := e.state(t, h); st == nil || st["revision"] != rev || st["deployed_by"] != w.name {
				t.Errorf("%s current.json = %v, want %s deployed_by %s", h.Name, st, rev, w.name)
			}
		}
	}

	apply(e.tags["v2"], github, want{"octocat", githubURL})
	e.checkAtRevision(t, e.tags["v2"], "version=2")
	apply(e.tags["v1"], gitlab, want{"tanuki", gitlabURL})
	// --operator over ROLLOUT_OPERATOR over the CI's variables
	apply(e.tags["v2"], append(append([]string{"ROLLOUT_OPERATOR=release-bot"}, github...), gitlab...), want{"alice", ""}, "--operator", "alice")
	e.checkAtRevision(t, e.tags["v2"], "version=2")

	// the journal
	jevs, err := journal.Read(filepath.Join(e.dir, ".rollout", "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, run := range runs {
		n := 0
		for _, ev := range jevs {
			if ev.Run == run && (ev.Event == event.RunStart || ev.Event == event.Approved || ev.Event == event.RunDone) {
				n++
				if ev.Operator != wants[i].name || ev.OperatorURL != wants[i].url {
					t.Errorf("journal %s %s: operator %q (%q), want %+v", run, ev.Event, ev.Operator, ev.OperatorURL, wants[i])
				}
			}
		}
		if n != 3 {
			t.Errorf("journal has %d run_start/approved/run_done events of %s, want 3", n, run)
		}
	}

	// the hook saw each run's operator
	b, _ := os.ReadFile(filepath.Join(e.dir, "who.log"))
	var who []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		who = append(who, strings.TrimSpace(l))
	}
	for i, run := range runs {
		line := strings.TrimSpace(run + " " + wants[i].name + " " + wants[i].url)
		if i >= len(who) || who[i] != line {
			t.Errorf("who.log line %d: want %q:\n%s", i+1, line, b)
		}
	}

	// status: deployed_by and the BY column
	r := e.rollout("status", "--ui", "json")
	if r.code != 0 {
		dump(t, r)
		t.Fatalf("status: exit %d", r.code)
	}
	hosts := 0
	for _, m := range jsonObjects(t, r.stdout) {
		if m["event"] == "host_status" {
			hosts++
			if m["deployed_by"] != "alice" {
				t.Errorf("status %v: want deployed_by alice", m)
			}
		}
	}
	if hosts != len(e.f.Hosts) {
		t.Errorf("status listed %d hosts", hosts)
	}
	r = e.rollout("status")
	if !strings.Contains(r.stdout, " BY ") {
		dump(t, r)
		t.Errorf("status has no BY column")
	}
	for _, h := range e.f.Hosts {
		if !lineWith(r.stdout, h.Name+" ", " alice ") {
			t.Errorf("status: %s's row does not name alice:\n%s", h.Name, r.stdout)
		}
	}

	// history: the BY column and operator, operator_url
	r = e.rollout("history")
	if r.code != 0 || !strings.Contains(r.stdout, " BY ") {
		dump(t, r)
		t.Fatalf("history: exit %d, want a BY column", r.code)
	}
	for i, run := range runs {
		if !lineWith(r.stdout, run, " "+wants[i].name+" ") {
			t.Errorf("history: %s's row does not name %s:\n%s", run, wants[i].name, r.stdout)
		}
	}
	r = e.rollout("history", "--ui", "json")
	got := map[string]want{}
	for _, m := range jsonObjects(t, r.stdout) {
		if m["event"] == "run" {
			name, _ := m["operator"].(string)
			url, _ := m["operator_url"].(string)
			got[fmt.Sprint(m["run"])] = want{name, url}
		}
	}
	for i, run := range runs {
		if got[run] != wants[i] {
			t.Errorf("history --ui json %s: %+v, want %+v", run, got[run], wants[i])
		}
	}
}

// lineWith reports whether one line of out contains all of parts.
func lineWith(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l+" ", p)
		}
		if all {
			return true
		}
	}
	return false
}
