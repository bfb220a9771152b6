package rollout

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rollout-sh/rollout/internal/localrun"
	"github.com/rollout-sh/rollout/journal"
	"github.com/rollout-sh/rollout/rollout/event"
)

func TestResolveOperator(t *testing.T) {
	github := map[string]string{"GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com/",
		"GITHUB_REPOSITORY": "acme/web", "GITHUB_RUN_ID": "42"}
	gitlab := map[string]string{"GITLAB_USER_LOGIN": "tanuki", "CI_JOB_URL": "https://gitlab.com/acme/web/-/jobs/7"}
	both := map[string]string{}
	for k, v := range github {
		both[k] = v
	}
	for k, v := range gitlab {
		both[k] = v
	}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		flag string
		env  map[string]string
		want Operator
	}{
		{"nothing: user@host", "", nil, Operator{Name: "alice@laptop"}},
		{"flag first", "bob", with(both, "ROLLOUT_OPERATOR", "carol"), Operator{Name: "bob"}},
		{"ROLLOUT_OPERATOR over CI", "", with(both, "ROLLOUT_OPERATOR", "carol"), Operator{Name: "carol"}},
		{"GitHub Actions with its run URL", "", github, Operator{Name: "octocat", URL: "https://github.com/acme/web/actions/runs/42"}},
		{"GitHub over GitLab", "", both, Operator{Name: "octocat", URL: "https://github.com/acme/web/actions/runs/42"}},
		{"GitHub without a run id: no URL", "", map[string]string{"GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/web"}, Operator{Name: "octocat"}},
		{"GitLab with its job URL", "", gitlab, Operator{Name: "tanuki", URL: "https://gitlab.com/acme/web/-/jobs/7"}},
		{"GitLab without a job URL", "", map[string]string{"GITLAB_USER_LOGIN": "tanuki"}, Operator{Name: "tanuki"}},
		{"blank values are not set", "  ", map[string]string{"ROLLOUT_OPERATOR": " ", "GITHUB_ACTOR": ""}, Operator{Name: "alice@laptop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResolveOperator(tt.flag, func(k string) string { return tt.env[k] }, "alice@laptop")
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The operator is recorded on run_start, approved (--auto-approve: the
// operator who passed it) and run_done, in each host's marker as
// deployed_by, and hooks see it as ROLLOUT_OPERATOR (and its URL).
func TestEngineRecordsTheOperator(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]
  approve_after = [1]
  hook "who" {
    at      = "after_run"
    command = "echo who:$ROLLOUT_OPERATOR:$ROLLOUT_OPERATOR_URL >> hooks.log"
  }`)
	op := Operator{Name: "octocat", URL: "https://github.com/acme/web/actions/runs/42"}
	if _, err := f.apply(Request{}, Options{Operator: op, AutoApprove: true, Unattended: true}); err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	seen := map[event.Kind]event.Event{}
	for _, e := range f.rec.events {
		seen[e.Event] = e
	}
	f.rec.mu.Unlock()
	for _, k := range []event.Kind{event.RunStart, event.Approved, event.RunDone} {
		e, ok := seen[k]
		if !ok || e.Operator != op.Name || e.OperatorURL != op.URL {
			t.Errorf("%s = %+v (seen %v), want operator %+v", k, e, ok, op)
		}
	}
	if e := seen[event.RunStart]; e.Owner != "test@here" {
		t.Errorf("run_start owner = %q, want the lock owner kept", e.Owner)
	}
	if e := seen[event.Approved]; e.Message != "approved by --auto-approve" {
		t.Errorf("approved message = %q", e.Message)
	}
	for _, h := range []string{"web1", "web2"} {
		st, err := journal.ReadState(context.Background(), localrun.Runner{}, filepath.Join(f.dir, "hosts", h, "state"), "web")
		if err != nil || st == nil || st.DeployedBy != op.Name {
			t.Errorf("%s current.json = %+v, %v; want deployed_by %s", h, st, err, op.Name)
		}
	}
	if got := hookLog(t, f); len(got) != 1 || got[0] != "who:"+op.Name+":"+op.URL {
		t.Errorf("hook saw %v, want the operator and its URL", got)
	}
}

// A caller that resolves no operator records the lock owner instead.
func TestEngineOperatorDefaultsToOwner(t *testing.T) {
	f := newFleet(t, 2, `batch = [1]`)
	if _, err := f.apply(Request{}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	for _, e := range f.rec.events {
		if (e.Event == event.RunStart || e.Event == event.RunDone) && e.Operator != "test@here" {
			t.Errorf("%s operator = %q, want the owner", e.Event, e.Operator)
		}
	}
}
